// Video hits: the keyframe card plus the moment and a player that starts there.
vectorfair.renderHit("video_analysis", (hit, {el, hitCard}) => {
  const card = hitCard(hit);
  const stamp = Number(hit.fields.timestamp || 0);
  const clock = `${Math.floor(stamp / 60)}:${(stamp % 60).toFixed(1).padStart(4, "0")}`;
  // A clip search's hit is where the clip starts (fields.matched_frames: how many of its frames line up there).
  const moment = "matched_frames" in hit.fields
    ? `the clip starts at ${clock} in ${hit.fields.video} (${hit.fields.matched_frames} of ${hit.fields.clip_frames} frames aligned)`
    : `${hit.fields.kind === "face" ? "face" : "scene"} at ${clock} in ${hit.fields.video}`;
  card.append(el("p", {class: "video-moment", text: moment}));
  if (hit.media_url) {
    card.append(el("a", {href: hit.media_url, target: "_blank", rel: "noopener", text: `play from ${clock}`}));
    const player = el("video", {controls: "", preload: "none", src: hit.media_url, width: "100%"});
    player.setAttribute("aria-label", `play ${hit.fields.video} from ${clock}`);
    card.append(player);
  }
  return card;
});
