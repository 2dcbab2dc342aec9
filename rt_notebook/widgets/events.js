// The "events" links of rt_notebook's answers: a page-level click delegate.
//
// Answers end with a plain Markdown link, `[events](#rt-events-TOKEN-KEY)`, rendered by
// Jupyter's sanitizing Markdown renderer. This module has no view: `initialize` runs once
// per model, when the kernel creates the hub and again when a reloaded page restores the
// kernel's widgets, so nothing of it is ever an output in the notebook. It catches clicks
// on links carrying its own kernel's TOKEN (links of another kernel, or of a saved
// notebook reopened later, are left alone) and sends the KEY to the kernel, which opens
// the inspector. Where the kernel says the front end has no side area it answers with a
// note, shown here as text (never HTML) next to the link.

function frontendApp() {
  const config = document.getElementById("jupyter-config-data");
  if (!config) {
    return "";
  }
  try {
    return String(JSON.parse(config.textContent).appName || "");
  } catch {
    return "";
  }
}

const KEY = /^[A-Za-z0-9_-]{1,80}$/;

function showNote(anchor, text) {
  const host = anchor.closest(".jp-OutputArea-output, .rt-chat, .jp-Cell") || document.body;
  let note = host.querySelector(":scope > .rt-events-note");
  if (!note) {
    note = document.createElement("div");
    note.className = "rt-events-note";
    note.style.cssText =
      "margin:4px 0;padding:4px 8px;border-left:3px solid var(--jp-warn-color1,#f0ad4e);" +
      "font-size:var(--jp-ui-font-size1,12px);white-space:pre-wrap";
    host.appendChild(note);
  }
  note.textContent = text;
}

function initialize({ model }) {
  const prefix = `#rt-events-${model.get("token")}-`;
  let lastAnchor = null;
  const onClick = (event) => {
    const target = event.target;
    const anchor = target instanceof Element ? target.closest("a[href]") : null;
    if (!anchor) {
      return;
    }
    const href = anchor.getAttribute("href") || "";
    if (!href.startsWith(prefix)) {
      return; // another kernel's link, a saved notebook's, or any other link
    }
    const key = href.slice(prefix.length);
    if (!KEY.test(key)) {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
    lastAnchor = anchor;
    model.send({ event: "open", key, app: frontendApp() });
  };
  const onMessage = (message) => {
    if (message && message.event === "note" && lastAnchor && lastAnchor.isConnected) {
      showNote(lastAnchor, String(message.text || ""));
    }
  };
  document.addEventListener("click", onClick, true);
  model.on("msg:custom", onMessage);
  document.documentElement.dataset.rtEvents = model.get("token"); // for tests: installed
  model.send({ event: "ready", app: frontendApp() });
  return () => {
    document.removeEventListener("click", onClick, true);
    model.off("msg:custom", onMessage);
  };
}

export default { initialize };
