// The QA chatbot's page as a chat. Every question and the bot's reply stay,
// in order, in a log above the question box while the page is open; an
// answer, or "I don't know" with the closest questions as buttons that ask
// them. Enter sends; focus goes back to the box after each reply.
"use strict";
(() => {
  const NAME = "qa_chatbot";
  const stylesheet = document.createElement("link");
  stylesheet.rel = "stylesheet";
  stylesheet.href = "/static/plugins/qa_chatbot/chat.css";
  document.head.append(stylesheet);

  let log = null;

  // The log, in the results area, with the question box moved below it.
  // After app.js has built the page (its DOMContentLoaded listener runs first).
  document.addEventListener("DOMContentLoaded", () => {
    const results = document.getElementById("results");
    const form = document.getElementById("search");
    const input = document.getElementById("query");
    if (!results || !form || !input) return;
    // The log announces each new turn itself: no second live region around it.
    results.removeAttribute("aria-live");
    results.removeAttribute("aria-label");
    log = make("div", {id: "chat-log", class: "chat-log", role: "log", "aria-live": "polite", "aria-label": "Conversation"});
    const ask = text => { input.value = text; form.requestSubmit(); };
    log.append(botTurn([
      make("p", {text: "Ask me about vectorfair and vector search in your own words. I answer from my FAQ, "
        + "or say that I don't know and suggest the closest questions I know."}),
      ...(input.placeholder ? [suggestionList("For example:", [input.placeholder], ask)] : []),
    ], "greeting"));
    results.replaceChildren(log);
    results.after(form);
    form.classList.add("chat-form");
    const send = form.querySelector("button[type=submit]");
    if (send) send.textContent = "Ask";
  });

  vectorfair.renderResult(NAME, (body, query, {el, ask}) => {
    const summary = body.summary || {};
    const you = el("div", {class: "turn you"}, el("p", {class: "who", text: "You"}), el("p", {class: "said", text: query}));
    const reply = [];
    if (summary.known) {
      reply.push(el("p", {class: "answer", text: summary.answer}));
      const how = summary.matched === "answer" ? "its answer" : "the question";
      reply.push(el("p", {class: "meta", text: `from the FAQ entry “${summary.question}” (matched ${how}, score ${summary.score.toFixed(3)})`
        + (summary.source ? ` · source: ${summary.source}` : "")}));
    } else {
      reply.push(el("p", {class: "answer", text: summary.message || "I don't know the answer to that yet."}));
    }
    // The matches first, the suggestions last: right above the question box.
    if (body.hits.length) {
      reply.push(el("details", {class: "matches"},
        el("summary", {text: `The ${body.hits.length} closest FAQ entries (${body.took_ms} ms)`}),
        el("ol", {}, ...body.hits.map(hit => el("li", {},
          el("span", {text: hit.fields.question}),
          el("span", {class: "meta", text: ` — score ${hit.score.toFixed(3)}, matched ${hit.fields.row === "answer" ? "the answer" : "the question"}`}))))));
    }
    const suggested = (summary.suggestions || []).map(s => s.question);
    if (suggested.length) {
      reply.push(summary.known ? suggestionList("Related questions:", suggested, ask) : suggestionList("", suggested, ask, "Closest questions I know"));
    }
    const bot = botTurn(reply, summary.known ? "known" : "unknown");
    const target = log || el("div", {class: "chat-log", role: "log", "aria-live": "polite", "aria-label": "Conversation"});
    log = target;
    target.append(you, bot);
    bot.scrollIntoView({block: "nearest"});
    const input = document.getElementById("query");
    if (input) {
      input.value = "";
      input.focus();
    }
    return target;
  });

  function make(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "text") node.textContent = value; else node.setAttribute(key, value);
    }
    node.append(...children);
    return node;
  }

  function botTurn(children, kind) {
    return make("div", {class: `turn bot ${kind}`}, make("p", {class: "who", text: "Bot"}), ...children);
  }

  // Buttons that each ask one question; `label` names the list for screen readers.
  function suggestionList(heading, questions, ask, label) {
    const list = make("ul", {class: "suggestions", "aria-label": label || heading.replace(/:$/, "")},
      ...questions.map(question => {
        const button = make("button", {type: "button", class: "suggestion", text: question});
        button.addEventListener("click", () => ask(question));
        return make("li", {}, button);
      }));
    return heading ? make("div", {}, make("p", {class: "meta", text: heading}), list) : list;
  }
})();
