// The fake demo draws its own hits: the default card plus a marker.
vectorfair.renderHit("fake", (hit, {el, hitCard}) => {
  const card = hitCard(hit);
  card.classList.add("fake-result");
  card.append(el("p", {class: "fake-marker", text: `fake renderer: ${hit.fields.tag}`}));
  return card;
});
