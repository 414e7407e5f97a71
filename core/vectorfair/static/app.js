// vectorfair portal: plain JavaScript on the JSON API; no framework, no CDN.
"use strict";
const vectorfair = (() => {
  const $ = (selector, root = document) => root.querySelector(selector);
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = value; else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  };

  async function api(url, options = {}) {
    let response;
    try {
      response = await fetch(url, options);
    } catch (error) {
      throw new Error("The server cannot be reached. Check your connection and try again.");
    }
    let body = null;
    try { body = await response.json(); } catch (error) { /* not JSON */ }
    if (!response.ok) {
      const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail))
        : `the server answered ${response.status}`;
      const wait = response.headers.get("Retry-After");
      throw new Error(detail + (wait ? ` (try again in ${wait} s)` : ""));
    }
    return body;
  }

  function showError(message) {
    const box = $("#error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  // Plugins that draw their own hits register here (Demo.result_script);
  // one that draws the whole result (a chat) registers with renderResult.
  const renderers = {};
  const renderHit = (demo, render) => { renderers[demo] = render; };
  const resultRenderers = {};
  const renderResult = (demo, render) => { resultRenderers[demo] = render; };
  let currentDemo = null;

  // "69 recordings · 915 windows": items, and rows where an item has several.
  function counted(items, rows, itemNoun, rowNoun) {
    if (items === null || items === undefined) return `? ${itemNoun}`;
    const text = `${items} ${itemNoun}`;
    return rowNoun && rows !== null && rows !== items ? `${text} · ${rows} ${rowNoun}` : text;
  }

  // -- home -----------------------------------------------------------------
  async function home() {
    const refresh = async () => {
      let demos = [];
      try { demos = await api("/api/demos"); } catch (error) { return; }
      for (const demo of demos) {
        const card = document.querySelector(`.card[data-demo="${demo.name}"]`);
        if (!card) continue;
        $("[data-count]", card).textContent = counted(demo.count, demo.rows, demo.item_noun, demo.row_noun);
        $("[data-loading]", card).hidden = !demo.loading;
        const failed = $("[data-sample-error]", card);
        failed.hidden = !demo.sample_error || demo.loading;
        failed.textContent = demo.sample_error ? `Sample data did not load: ${demo.sample_error}` : "";
      }
      if (demos.some(d => d.loading)) setTimeout(refresh, 2000);
    };
    refresh();
  }

  // The media kinds a demo searches by ("image or video"), not its text ones.
  const fileKinds = page => page.inputs.filter(k => k !== "text" && k !== "smiles").join(" or ");

  // -- demo page ------------------------------------------------------------
  function demoPage(page) {
    currentDemo = page.name;
    const form = $("#search");
    const area = $("#query-area");
    const params = new URLSearchParams(location.search);
    if (page.text_input) {
      const kind = page.inputs.filter(k => k === "text" || k === "smiles").join(" or ");
      const input = el(page.inputs.includes("smiles") ? "input" : "textarea", {
        type: page.inputs.includes("smiles") ? "text" : undefined, name: "query", id: "query", rows: 2, placeholder: page.sample_query || "", "aria-label": `Query (${kind})`,
        autocomplete: "off", spellcheck: page.inputs.includes("smiles") ? "false" : "true",
      });
      input.value = params.get("q") || "";
      area.append(el("label", {for: "query", text: page.query_label || (kind === "smiles" ? "SMILES" : "Your question")}), input);
      if (page.query_preview) {
        const preview = el("img", {id: "preview", alt: "structure preview", class: "preview", hidden: true});
        area.append(preview);
        let timer;
        const update = () => {
          clearTimeout(timer);
          timer = setTimeout(() => {
            const value = input.value.trim();
            preview.hidden = !value;
            if (value) preview.src = page.query_preview.replace("{query}", encodeURIComponent(value));
          }, 250);
        };
        preview.addEventListener("error", () => { preview.hidden = true; });
        input.addEventListener("input", update);
        update();
      }
      if (input.tagName === "TEXTAREA") {
        input.addEventListener("keydown", e => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); } });
      }
    }
    if (page.file_input) {
      const file = el("input", {type: "file", name: "file", id: "file", accept: page.accept || undefined});
      area.append(el("label", {for: "file", text: `Choose ${fileKinds(page)} to search with`}), file);
      file.addEventListener("change", () => { if (file.files.length) form.requestSubmit(); });
    }
    buildFilters(page.filters);
    form.addEventListener("submit", e => { e.preventDefault(); search(page); });
    $("#upload").addEventListener("submit", e => { e.preventDefault(); upload(page); });
    refreshCount(page);
    if (page.text_input && params.get("q")) search(page);
  }

  function buildFilters(schema) {
    const box = $("#filters");
    if (!schema || !schema.properties) return;
    const group = el("fieldset", {class: "filters"}, el("legend", {text: "Filters (optional)"}));
    for (const [name, prop] of Object.entries(schema.properties)) {
      if (prop.enum) {
        // A choice (the video demo's scene/face mode): a select, its default first.
        const select = el("select", {name: `filter.${name}`, id: `filter-${name}`},
          ...prop.enum.map(value => el("option", {value, text: value, selected: value === prop.default || undefined})));
        group.append(el("label", {for: `filter-${name}`, text: (prop.title || name) + (prop.description ? ` — ${prop.description}` : "")}), select);
        continue;
      }
      const types = (prop.anyOf || [prop]).map(p => p.type);
      const numeric = types.includes("number") || types.includes("integer");
      const list = types.includes("array");
      const input = el("input", {name: `filter.${name}`, id: `filter-${name}`, type: numeric ? "number" : "text",
        step: numeric ? "any" : undefined, "data-list": list || undefined, class: numeric ? "short" : undefined,
        placeholder: list ? "one, or several separated by commas" : ""});
      group.append(el("label", {for: `filter-${name}`, text: (prop.title || name) + (prop.description ? ` — ${prop.description}` : "")}), input);
    }
    box.append(group);
  }

  function readFilters() {
    const filter = {};
    for (const input of document.querySelectorAll("[name^='filter.']")) {
      const value = input.value.trim();
      if (!value) continue;
      const key = input.name.slice(7);
      if (input.type === "number") filter[key] = Number(value);
      else if (input.dataset.list !== undefined && value.includes(",")) filter[key] = value.split(",").map(v => v.trim()).filter(Boolean);
      else filter[key] = value;
    }
    return filter;
  }

  async function refreshCount(page) {
    try {
      const stats = await api(`/api/demos/${page.name}/stats`);
      $("#count").textContent = `${counted(stats.count, stats.rows, page.item_noun, page.row_noun)} stored.`;
    } catch (error) { $("#count").textContent = ""; }
  }

  async function search(page) {
    showError("");
    const form = $("#search");
    const topK = Number(form.top_k.value) || 10;
    const filter = readFilters();
    const url = `/api/demos/${page.name}/search`;
    let options, query = null;
    const file = $("#file");
    if (page.file_input && file && file.files.length) {
      query = file.files[0].name;
      const data = new FormData();
      data.append("file", file.files[0]);
      data.append("top_k", String(topK));
      if (Object.keys(filter).length) data.append("filter", JSON.stringify(filter));
      options = {method: "POST", body: data};
    } else if (page.text_input) {
      query = $("#query").value.trim();
      if (!query) { showError("Type a query first."); return; }
      options = {method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({query, top_k: topK, ...(Object.keys(filter).length ? {filter} : {})})};
    } else {
      showError(`Choose a ${fileKinds(page)} file first.`);
      return;
    }
    const results = $("#results");
    results.setAttribute("aria-busy", "true");
    try {
      const body = await api(url, options);
      render(body, query);
    } catch (error) {
      showError(error.message);
    } finally {
      results.removeAttribute("aria-busy");
    }
  }

  // Search for `text` as if it were typed and sent (a suggestion clicked).
  const ask = text => {
    const input = $("#query");
    if (input) { input.value = text; $("#search").requestSubmit(); }
  };

  function render(body, query) {
    const results = $("#results");
    const summary = $("#summary");
    summary.hidden = true;
    const own = resultRenderers[currentDemo];
    if (own) {
      // The plugin's node is the whole result; the node already shown is kept.
      const node = own(body, query, {el, hitCard, ask});
      if (node && node.parentNode !== results) results.replaceChildren(node);
      return;
    }
    results.replaceChildren();
    if (body.summary && "known" in body.summary) {
      summary.hidden = false;
      summary.replaceChildren(body.summary.known
        ? el("div", {}, el("h2", {text: "Answer"}), el("p", {class: "answer", text: body.summary.answer}),
             el("p", {class: "meta", text: `matched “${body.summary.question}” · score ${body.summary.score.toFixed(3)}`}))
        : el("div", {}, el("h2", {text: "Not sure"}), el("p", {text: body.summary.message})));
    }
    if (!body.hits.length) {
      results.append(el("p", {class: "empty", text: "No results. Try another query, or remove filters."}));
      return;
    }
    const draw = renderers[currentDemo] || hitCard;
    for (const hit of body.hits) results.append(draw(hit, {el, hitCard}));
    results.append(el("p", {class: "meta", text: `${body.hits.length} results in ${body.took_ms} ms`}));
  }

  function hitCard(hit) {
    const f = hit.fields || {};
    const card = el("article", {class: "hit", "data-id": hit.id});
    if (hit.thumbnail_url) {
      const image = el("img", {src: hit.thumbnail_url, alt: `${hit.title}${f.labels ? ": " + f.labels.slice(0, 3).join(", ") : ""}`, loading: "lazy"});
      card.append(hit.media_url ? el("a", {href: hit.media_url, target: "_blank", rel: "noopener"}, image) : image);
    }
    if (f.structure_url) {
      // Drawn by its own request, so the search never waits for drawings.
      card.append(el("img", {class: "structure", alt: `structure of ${f.smiles || hit.title}`, loading: "lazy",
        src: f.structure_url}));
    }
    card.append(el("h3", {text: hit.title}));
    card.append(el("p", {class: "score", text: `score ${hit.score.toFixed(3)}`}));
    if (f.answer) card.append(el("p", {class: "answer", text: f.answer}));
    if (f.labels && f.labels.length) card.append(el("ul", {class: "chips", "aria-label": "labels"}, ...f.labels.map(l => el("li", {text: l}))));
    const shown = ["mw", "logp", "formula", "name", "category", "timestamp", "offset"];
    const facts = shown.filter(k => f[k] !== undefined && f[k] !== null && f[k] !== "")
      .map(k => `${k}: ${typeof f[k] === "number" ? Number(f[k].toFixed(3)) : f[k]}`);
    if (facts.length) card.append(el("p", {class: "meta", text: facts.join(" · ")}));
    if (hit.media_url && !hit.thumbnail_url && (f.timestamp !== undefined || f.offset !== undefined)) {
      const at = f.timestamp !== undefined ? f.timestamp : f.offset;
      card.append(el("a", {href: `${hit.media_url}#t=${at}`, target: "_blank", rel: "noopener", text: `play from ${at} s`}));
    }
    return card;
  }

  async function upload(page) {
    showError("");
    const file = $("#archive");
    const status = $("#job-status");
    const progress = $("#progress");
    const errors = $("#job-errors");
    errors.replaceChildren();
    if (!file.files.length) { showError("Choose an archive (zip or tar) to upload first."); return; }
    const data = new FormData();
    data.append("archive", file.files[0]);
    status.textContent = "Uploading…";
    let job;
    try {
      job = await api(`/api/demos/${page.name}/jobs`, {method: "POST", body: data});
    } catch (error) {
      status.textContent = "";
      showError(`The upload was refused: ${error.message}`);
      return;
    }
    progress.hidden = false;
    progress.value = 0;
    const events = new EventSource(job.events_url);
    const update = event => {
      const state = JSON.parse(event.data);
      if (state.total) { progress.max = state.total; progress.value = state.done + state.failed; }
      status.textContent = `${state.state}: ${state.done} done, ${state.failed} failed${state.total ? ` of ${state.total}` : ""}. ${state.message || ""}`;
      errors.replaceChildren(...state.errors.slice(0, 50).map(e => el("li", {text: `${e.name}: ${e.error}`})));
    };
    events.addEventListener("progress", update);
    events.addEventListener("end", event => { update(event); events.close(); progress.dataset.finished = "true"; refreshCount(page); });
    events.onerror = () => { if (progress.dataset.finished !== "true") status.textContent += " (connection lost; reload to see the job)"; events.close(); };
  }

  return {home, demoPage, renderHit, renderResult};
})();

// Pages name what to start in data, not in inline scripts, so the
// Content-Security-Policy can forbid inline scripts altogether.
document.addEventListener("DOMContentLoaded", () => {
  const page = document.getElementById("vf-page");
  if (page) vectorfair.demoPage(JSON.parse(page.textContent));
  else if (document.getElementById("vf-home")) vectorfair.home();
});
