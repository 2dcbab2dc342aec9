// The chat panel's transcript: one widget whose page code holds the message list.
//
// The kernel sends what changed as custom messages (ops), never widget trees:
//   {op: "reset", entries: [...]}          the whole list (answer to a view's "replay")
//   {op: "put", entry, after}              add or replace one entry, placed after `after`
//   {op: "grow", key, append, seal, cut}   streaming: text appended to an entry's tail;
//                                          `seal` (rendered blocks) appended to its body
//                                          and the first `cut` characters of the tail
//                                          dropped (now shown in those blocks); then
//                                          `keep` / `plain`: the entry's plain rest cut
//                                          to `keep` characters, `plain` appended
// Bounded rendering: past the kernel's Markdown limit (~100 KB) the rest of an answer is
// its entry's `plain` text, folded behind a "show all" button of the panel's own and
// shown as one text node when opened (never parsed): the page stays responsive however
// long an answer grows.
//   {op: "meta", key, meta}                its label, flags and data attributes
//   {op: "move", key, after} / {op: "remove", key}
// The list lives in the model (initialize), so every view of the panel (inline, side
// area) shows the same and a reloaded page asks for a replay once.
//
// Safety: no innerHTML anywhere. Markdown arrives already parsed by the kernel (with the
// project's policy: no raw HTML, no images, no script links) as a tree of plain data,
// [tag, {attributes}?, ...children]; elements are made with createElement from a fixed
// list of tags, text with text nodes, and the only attributes copied are checked here
// again (href: http(s), mailto or an in-page fragment; start: digits; align: a fixed set).
// After each code block comes its own "copy code" control (a button, not part of the
// tree): it copies, as plain text with navigator.clipboard.writeText, the strings of the
// block's tree, i.e. the code as the kernel sent it, never HTML. Shown on answers only.
// A user's bubble may end with its images (setImages): labels as text, and thumbnails only
// of images this page pasted (thumbs.js: a canvas drawn from the page's own bytes).

const TAGS = new Set([
  "p", "br", "hr", "em", "strong", "s", "code", "pre", "a", "ul", "ol", "li", "blockquote",
  "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td",
]);
const KINDS = new Set([
  "user", "assistant", "system", "function-call", "function-output", "error", "other",
]);
const DATA_KEYS = ["item-id", "type", "role", "status", "response-status"];
const SAFE_HREF = /^(https?:|mailto:|#)/i;
const EVENTS_HREF = /^#rt-events-[0-9a-f]{1,40}-[A-Za-z0-9_-]{1,80}$/;

function node(tree) {
  if (typeof tree === "string") {
    return document.createTextNode(tree);
  }
  if (!Array.isArray(tree) || !TAGS.has(tree[0])) {
    return document.createTextNode("");
  }
  const element = document.createElement(tree[0]);
  let children = tree.slice(1);
  const attributes = children[0];
  if (attributes && typeof attributes === "object" && !Array.isArray(attributes)) {
    children = children.slice(1);
    if (tree[0] === "a" && typeof attributes.href === "string" && SAFE_HREF.test(attributes.href)) {
      element.setAttribute("href", attributes.href);
      element.setAttribute("target", "_blank");
      element.setAttribute("rel", "noopener noreferrer nofollow");
    }
    if (tree[0] === "ol" && /^\d{1,9}$/.test(String(attributes.start || ""))) {
      element.setAttribute("start", String(attributes.start));
    }
    if (["left", "right", "center"].includes(attributes.align)) {
      element.setAttribute("align", attributes.align);
    }
  }
  for (const child of children) {
    element.appendChild(node(child));
  }
  if (tree[0] === "pre") {
    const block = document.createDocumentFragment();
    block.append(element, copyControl(treeText(tree).replace(/\n$/, "")));
    return block;
  }
  return element;
}

// The text a tree shows: its strings in order (attributes are not text).
function treeText(tree) {
  if (typeof tree === "string") {
    return tree;
  }
  return Array.isArray(tree) ? tree.slice(1).map(treeText).join("") : "";
}

function copyControl(text) {
  // No text of its own (the label is CSS), so a bubble's text stays the answer's text.
  const control = button("", "rt-chat-copy");
  control.title = "Copy code";
  control.setAttribute("aria-label", "Copy code");
  control.addEventListener("click", () => {
    navigator.clipboard.writeText(text).then(
      () => { control.dataset.copied = "yes"; },
      () => { control.dataset.copied = "failed"; },
    );
  });
  return control;
}

function appendBlocks(body, tail, blocks) {
  for (const block of blocks || []) {
    body.insertBefore(node(block), tail);
  }
}

function setFold(parts, plain) {
  // The plain rest of an answer past the Markdown limit, folded (see the header).
  if (!plain && !parts.fold) {
    return;
  }
  if (!parts.fold) {
    const fold = document.createElement("div");
    fold.className = "rt-chat-fold";
    const note = document.createElement("div");
    note.className = "rt-chat-fold-note";
    const toggle = button("show all", "rt-chat-show-all");
    const text = document.createElement("div");
    text.className = "rt-chat-plain";
    text.style.cssText = "white-space:pre-wrap;font-family:var(--jp-code-font-family)";
    text.hidden = true;
    fold.append(note, toggle, text);
    parts.body.appendChild(fold);
    parts.fold = { root: fold, note, toggle, text, open: false, plain: "" };
    toggle.addEventListener("click", () => {
      const state = parts.fold;
      state.open = !state.open;
      state.text.textContent = state.open ? state.plain : "";
      state.text.hidden = !state.open;
      state.toggle.textContent = state.open ? "hide" : "show all";
    });
  }
  const state = parts.fold;
  state.plain = plain;
  state.root.hidden = !plain;
  state.note.textContent =
    `Rendered as Markdown up to its size limit; the remaining ` +
    `${plain.length.toLocaleString()} characters are plain text.`;
  if (state.open) {
    state.text.textContent = plain;
  }
}

function button(label, className) {
  const element = document.createElement("button");
  element.type = "button";
  element.textContent = label;
  element.className = `jupyter-button widget-button ${className}`;
  return element;
}

// One entry's DOM ---------------------------------------------------------------------

function setMeta(parts, entry) {
  const meta = entry.meta || {};
  const kind = KINDS.has(meta.kind) ? meta.kind : "other";
  parts.bubble.className = `rt-chat-bubble rt-chat-${kind}`;
  for (const key of DATA_KEYS) {
    const value = meta.data && meta.data[key];
    parts.bubble.setAttribute(`data-${key}`, value == null ? "" : String(value));
  }
  const label = parts.label;
  label.replaceChildren(document.createTextNode(String(meta.label || "")));
  if (meta.code) {
    label.append(" ", Object.assign(document.createElement("code"), { textContent: meta.code }));
  }
  if (meta.streaming) {
    const span = Object.assign(document.createElement("span"), { textContent: "streaming…" });
    span.className = "rt-chat-streaming";
    label.append(" ", span);
  } else if (meta.flag) {
    const span = Object.assign(document.createElement("span"), { textContent: meta.flag });
    span.className = "rt-chat-flag";
    label.append(" ", span);
  }
  setImages(parts, meta);
  const footer = String(meta.footer || "");
  if (footer && !parts.footer) {
    parts.footer = document.createElement("div");
    parts.footer.className = "rt-chat-footer";
    parts.bubble.appendChild(parts.footer);
  }
  if (parts.footer) {
    parts.footer.textContent = footer;
    parts.footer.hidden = !footer;
  }
  const href = typeof meta.events === "string" && EVENTS_HREF.test(meta.events) ? meta.events : "";
  if (href && !parts.events) {
    parts.events = document.createElement("div");
    parts.events.className = "rt-chat-events";
    const link = Object.assign(document.createElement("a"), { textContent: "events" });
    parts.events.appendChild(link);
    parts.root.appendChild(parts.events);
  }
  if (parts.events) {
    if (href) {
      parts.events.firstChild.setAttribute("href", href);
    } else {
      parts.events.remove();
      parts.events = null;
    }
  }
}

function setImages(parts, meta) {
  const thumbs = meta.kind === "user" ? meta.thumbs : null;
  const labels = meta.kind === "user" ? meta.images : null;
  const key = JSON.stringify([thumbs || [], labels || []]);
  if (key === parts.imagesKey) {
    return;
  }
  parts.imagesKey = key;
  if (parts.images) {
    parts.images.remove();
  }
  parts.images = imagesRow(thumbs, labels);
  if (parts.images) {
    parts.body.after(parts.images);
  }
}

function makeBubble(entry) {
  const root = document.createElement("div");
  root.className = "rt-chat-item";
  const bubble = document.createElement("div");
  const label = document.createElement("div");
  label.className = "rt-chat-meta";
  const body = document.createElement("div");
  body.className = "rt-chat-body";
  const tail = document.createElement("span");
  tail.className = "rt-chat-tail";
  body.appendChild(tail);
  bubble.append(label, body);
  root.appendChild(bubble);
  const parts = { root, bubble, label, body, tail, events: null, footer: null, fold: null };
  setMeta(parts, entry);
  appendBlocks(body, tail, entry.blocks);
  tail.textContent = entry.tail || "";
  setFold(parts, String(entry.plain || ""));
  return parts;
}

function makeApproval(entry, send) {
  const root = document.createElement("div");
  root.className = "rt-chat-item rt-approval";
  const label = document.createElement("span");
  label.className = "rt-approval-label";
  const approve = button("Approve", "mod-success rt-approval-approve");
  const deny = button("Deny", "mod-danger rt-approval-deny");
  root.append(label, approve, deny);
  const parts = { root, label, approve, deny };
  approve.addEventListener("click", () => decide(true));
  deny.addEventListener("click", () => decide(false));
  function decide(allow) {
    approve.disabled = true;
    deny.disabled = true;
    send({ event: "decide", call: parts.call, allow });
  }
  setApproval(parts, entry);
  return parts;
}

function setApproval(parts, entry) {
  const meta = entry.meta || {};
  parts.call = String(meta.call || "");
  parts.label.textContent = String(meta.label || "");
  const open = !meta.decided;
  parts.approve.disabled = !open;
  parts.deny.disabled = !open;
  parts.approve.hidden = !open;
  parts.deny.hidden = !open;
  parts.root.dataset.decided = open ? "" : String(meta.decided);
}

function makeParts(entry, send) {
  return entry.kind === "approval" ? makeApproval(entry, send) : makeBubble(entry);
}

// The model's list, shared by its views --------------------------------------------------

function initialize({ model }) {
  const lists = (globalThis.__rtNotebookChats = globalThis.__rtNotebookChats || new Map());
  const state = { entries: new Map(), order: [], ready: false, views: new Set() };
  lists.set(model.get("_view_id"), state);

  function placeAfter(key, after) {
    const order = state.order;
    const old = order.indexOf(key);
    if (old >= 0) {
      order.splice(old, 1);
    }
    const index = after == null ? 0 : order.indexOf(after) + 1;
    order.splice(index, 0, key);
  }

  function apply(op) {
    if (op.op === "reset") {
      state.entries = new Map(op.entries.map((entry) => [entry.key, entry]));
      state.order = op.entries.map((entry) => entry.key);
      state.ready = true;
    } else if (!state.ready) {
      return; // before the replay: the reset will hold it
    } else if (op.op === "put") {
      state.entries.set(op.entry.key, op.entry);
      placeAfter(op.entry.key, op.after);
    } else if (op.op === "grow" || op.op === "meta") {
      const entry = state.entries.get(op.key);
      if (!entry) {
        return;
      }
      if (op.op === "meta") {
        entry.meta = op.meta;
      } else {
        entry.tail = (entry.tail || "") + (op.append || "");
        if (op.seal) {
          entry.blocks = (entry.blocks || []).concat(op.seal);
          entry.tail = entry.tail.slice(op.cut || 0);
        }
        if ("plain" in op) {
          const kept = typeof op.keep === "number" ? String(entry.plain || "").slice(0, op.keep) : String(entry.plain || "");
          entry.plain = kept + String(op.plain || "");
        }
      }
    } else if (op.op === "move") {
      if (state.entries.has(op.key)) {
        placeAfter(op.key, op.after);
      }
    } else if (op.op === "remove") {
      state.entries.delete(op.key);
      const index = state.order.indexOf(op.key);
      if (index >= 0) {
        state.order.splice(index, 1);
      }
    }
    for (const view of state.views) {
      view(op);
    }
  }

  const onMessage = (message) => {
    if (message && typeof message.op === "string") {
      apply(message);
    }
  };
  model.on("msg:custom", onMessage);
  model.send({ event: "replay" }); // a new page (or a reload) gets the whole list once
  return () => {
    model.off("msg:custom", onMessage);
    lists.delete(model.get("_view_id"));
  };
}

// A view ----------------------------------------------------------------------------

function render({ model, el }) {
  const state = globalThis.__rtNotebookChats.get(model.get("_view_id"));
  const send = (message) => model.send(message);
  const root = document.createElement("div");
  root.className = "rt-chat-view";
  const header = document.createElement("div");
  header.className = "rt-chat-header";
  const statusLine = document.createElement("div");
  statusLine.className = "rt-chat-status-line";
  const status = document.createElement("div");
  status.className = "rt-chat-status";
  statusLine.appendChild(status);
  const scroll = document.createElement("div");
  scroll.className = "rt-chat-scroll";
  const list = document.createElement("div");
  list.className = "rt-chat-transcript";
  scroll.appendChild(list);
  root.append(header, statusLine, scroll);
  el.appendChild(root);

  function showHeader() {
    const title = Object.assign(document.createElement("span"), { textContent: model.get("title") });
    title.className = "rt-chat-title";
    header.replaceChildren(title);
    if (model.get("notebook")) {
      header.append(" · ", Object.assign(document.createElement("b"), { textContent: model.get("notebook") }));
    }
    header.append(" · session ", Object.assign(document.createElement("code"), { textContent: model.get("session") }));
  }

  function showStatus() {
    const value = model.get("status") || {};
    status.dataset.state = String(value.state || "");
    status.textContent = `● ${String(value.line || "")}`;
  }

  const shown = new Map(); // key -> parts

  function place(key) {
    // Right after the entry before it (views hold every entry of the list).
    const index = state.order.indexOf(key);
    const previous = index > 0 ? shown.get(state.order[index - 1]) : null;
    if (previous) {
      previous.root.after(shown.get(key).root);
    } else {
      list.prepend(shown.get(key).root);
    }
  }

  function rebuild() {
    shown.clear();
    list.replaceChildren();
    for (const key of state.order) {
      const parts = makeParts(state.entries.get(key), send);
      shown.set(key, parts);
      list.appendChild(parts.root);
    }
  }

  function onOp(op) {
    if (op.op === "reset") {
      rebuild();
    } else if (op.op === "put") {
      const old = shown.get(op.entry.key);
      const parts = makeParts(op.entry, send);
      if (old) {
        old.root.replaceWith(parts.root);
      }
      shown.set(op.entry.key, parts);
      place(op.entry.key);
    } else if (op.op === "grow") {
      const parts = shown.get(op.key);
      if (parts && parts.tail) {
        if (op.append) {
          parts.tail.appendChild(document.createTextNode(op.append));
        }
        if (op.seal) {
          appendBlocks(parts.body, parts.tail, op.seal);
          parts.tail.textContent = state.entries.get(op.key).tail || "";
        }
        if ("plain" in op) {
          setFold(parts, String(state.entries.get(op.key).plain || ""));
        }
      }
    } else if (op.op === "meta") {
      const parts = shown.get(op.key);
      const entry = state.entries.get(op.key);
      if (parts && entry) {
        if (entry.kind === "approval") {
          setApproval(parts, entry);
        } else {
          setMeta(parts, entry);
        }
      }
    } else if (op.op === "move") {
      if (shown.has(op.key)) {
        place(op.key);
      }
    } else if (op.op === "remove") {
      const parts = shown.get(op.key);
      if (parts) {
        parts.root.remove();
        shown.delete(op.key);
      }
    }
  }

  showHeader();
  showStatus();
  if (state && state.ready) {
    rebuild();
  }
  if (state) {
    state.views.add(onOp);
  }
  model.on("change:status", showStatus);
  return () => {
    model.off("change:status", showStatus);
    if (state) {
      state.views.delete(onOp);
    }
  };
}

export default { initialize, render };
