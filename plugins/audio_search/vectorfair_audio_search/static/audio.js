// Audio hits: the default card plus a player that starts at the matched moment.
vectorfair.renderHit("audio_search", (hit, {el, hitCard}) => {
  const card = hitCard(hit);
  const offset = Number(hit.fields.offset || 0);
  const minutes = Math.floor(offset / 60), seconds = (offset % 60).toFixed(1).padStart(4, "0");
  card.append(el("p", {class: "audio-moment", text: `at ${minutes}:${seconds} of ${Number(hit.fields.duration || 0).toFixed(1)} s`}));
  if (hit.media_url) {
    const player = el("audio", {controls: "", preload: "none", src: hit.media_url});
    player.setAttribute("aria-label", `play ${hit.title} from ${minutes}:${seconds}`);
    card.append(player);
  }
  return card;
});
