// Append-only streaming of an answer into a cell: the page side, installed once per page.
//
// This is the ES module of the kernel's StreamHub, a widget that is never displayed: its
// `initialize` runs once per page and installs the renderer every answer's tiny widget
// (AnswerStream, whose own module is a few lines) waits for, so this code crosses the wire
// once per kernel, not once per answer.
//
// The kernel sends edits (rt_notebook/render/stream_edits.py says what each key means;
// a bare string is an edit that only appends it):
// sealed blocks, each rendered once into its own element and never touched again; the
// tail, kept as text here and re-rendered (at most once per message, one render at a
// time); and, past the Markdown limit, plain text kept folded behind a "show all" control
// (shown as text, never parsed). The Markdown is already sanitized by the kernel; it is
// rendered by Jupyter's own Markdown renderer as untrusted output, so Jupyter's sanitizer
// applies as well. Without that renderer (a front end without rendermime) the text is
// shown as plain text. When the answer ends, the kernel replaces this view with the final
// Markdown output and sends a reset: the page forgets the text, and the model is kept for
// the kernel's next answer (a new view, with its own link and waiting line). Nothing of
// the text is saved in the notebook.

const EVENTS_HREF = /^#rt-events-[A-Za-z0-9_-]{1,40}-[A-Za-z0-9_-]{1,80}$/;

const answers = new Map(); // key -> what the page holds of that answer, and its views

function applyEdit(answer, edit) {
  if (edit.r) {
    answer.blocks = [];
    answer.tail = "";
    answer.plain = "";
  }
  if (typeof edit.k === "number") {
    answer.tail = answer.tail.slice(0, edit.k);
  }
  answer.tail += edit.a || "";
  const sealed = []; // the tail edit comes first: a sealed block is cut off its front
  for (const block of edit.b || []) {
    if (typeof block === "number") {
      sealed.push(answer.tail.slice(0, block));
      answer.tail = answer.tail.slice(block);
    } else {
      sealed.push(String(block));
    }
  }
  answer.blocks.push(...sealed);
  if (typeof edit.pk === "number") {
    answer.plain = answer.plain.slice(0, edit.pk);
  }
  answer.plain += edit.p || "";
  return sealed;
}

function initialize(model, early) {
  const key = model.get("key");
  const answer = { blocks: [], tail: "", plain: "", views: new Set() };
  answers.set(key, answer);
  const onMessage = (message) => {
    // An edit that only appends arrives as the bare string (its framing is paid often).
    const edit = typeof message === "string" ? { a: message } : message;
    if (!edit || typeof edit !== "object") {
      return;
    }
    const sealed = applyEdit(answer, edit);
    for (const view of answer.views) {
      if (edit.r) {
        view.reset(); // a snapshot: this page missed edits (another page joined late)
      } else {
        view.update(sealed, edit);
      }
    }
  };
  for (const edit of early) {
    onMessage(edit);
  }
  model.on("msg:custom", onMessage);
  model.on("destroy", () => answers.delete(key));
}

class AnswerView {
  constructor(model, el, answer) {
    this.answer = answer;
    this.plainText = Boolean(model.get("plain"));
    const manager = model.widget_manager;
    this.rendermime = (manager && manager.rendermime) || null;
    el.classList.add("rt-stream");
    this.blocks = el.appendChild(document.createElement("div"));
    this.blocks.className = "rt-stream-blocks";
    this.tail = el.appendChild(document.createElement("div"));
    this.tail.className = "rt-stream-tail";
    this.fold = el.appendChild(document.createElement("div"));
    this.fold.className = "rt-stream-fold";
    this.footer = el.appendChild(document.createElement("div"));
    this.footer.className = "rt-stream-footer";
    this.footer.style.cssText = "font-style:italic;opacity:0.75;margin-top:4px";
    this.waiting = this.footer.appendChild(document.createElement("span"));
    this.link = null;
    this.header(model);
    this.rendering = false; // a tail render is in flight
    this.tailDirty = false; // the tail changed while it was
    this.foldOpen = false;
    this.plainNode = null;
    this.update(answer.blocks, { a: "x", p: answer.plain ? "x" : "" });
  }

  // The waiting line, the "events" link and text or Markdown: a kept model's traits
  // change for each new answer (read again on change, should that come after this view
  // was made; nothing is drawn before the first text).
  header(model) {
    if (!this.answer.tail && !this.answer.blocks.length && !this.answer.plain) {
      this.waiting.textContent = String(model.get("waiting") || "");
      this.plainText = Boolean(model.get("plain"));
    }
    const href = String(model.get("link") || "");
    if (!EVENTS_HREF.test(href)) {
      this.link?.remove();
      this.link = null;
      return;
    }
    if (!this.link) {
      this.link = this.footer.appendChild(document.createElement("a"));
      this.link.textContent = "events";
    }
    this.link.setAttribute("href", href);
  }

  reset() {
    this.blocks.replaceChildren();
    this.tail.replaceChildren();
    this.foldOpen = false;
    this.update(this.answer.blocks, { a: "x", p: this.answer.plain ? "x" : "" });
  }

  update(sealed, edit) {
    if (sealed.length || this.answer.tail || this.answer.plain) {
      this.waiting.textContent = "";
    }
    for (const block of sealed) {
      const host = this.blocks.appendChild(document.createElement("div"));
      host.className = "rt-stream-block";
      this.render(block).then((node) => host.appendChild(node));
    }
    if (sealed.length || "k" in edit || edit.a) {
      this.renderTail();
    }
    if ("pk" in edit || edit.p) {
      this.updateFold(edit);
    }
  }

  async render(text) {
    if (this.rendermime && !this.plainText) {
      try {
        const renderer = this.rendermime.createRenderer("text/markdown");
        await renderer.renderModel({
          data: { "text/markdown": text },
          metadata: {},
          trusted: false,
          setData: () => {},
        });
        return renderer.node;
      } catch (error) {
        console.warn("rt_notebook: Markdown renderer failed, showing text", error);
      }
    }
    const node = document.createElement("div");
    node.style.whiteSpace = "pre-wrap";
    node.textContent = text;
    return node;
  }

  async renderTail() {
    if (this.rendering) {
      this.tailDirty = true; // one more render when this one ends, of the newest tail
      return;
    }
    this.rendering = true;
    try {
      do {
        this.tailDirty = false;
        const text = this.answer.tail;
        const node = text ? await this.render(text) : null;
        this.tail.replaceChildren(...(node ? [node] : []));
      } while (this.tailDirty);
    } finally {
      this.rendering = false;
    }
  }

  updateFold(edit) {
    const size = this.answer.plain.length;
    if (!this.note) {
      this.note = this.fold.appendChild(document.createElement("div"));
      this.note.style.cssText = "margin:6px 0;font-style:italic";
      this.button = this.fold.appendChild(document.createElement("button"));
      this.button.className = "rt-stream-show-all jp-Button";
      this.button.addEventListener("click", () => {
        this.foldOpen = !this.foldOpen;
        this.updateFold({ pk: 0 });
      });
    }
    this.note.textContent =
      `The answer is rendered as Markdown up to its size limit; the remaining ` +
      `${size.toLocaleString()} characters are plain text.`;
    this.button.textContent = this.foldOpen ? "hide" : "show all";
    if (!this.foldOpen) {
      if (this.plainNode) {
        this.plainNode.remove();
        this.plainNode = null;
      }
      return;
    }
    if (!this.plainNode || "pk" in edit) {
      if (this.plainNode) {
        this.plainNode.remove();
      }
      this.plainNode = this.fold.appendChild(document.createElement("div"));
      this.plainNode.className = "rt-stream-plain";
      this.plainNode.style.cssText = "white-space:pre-wrap;font-family:var(--jp-code-font-family)";
      this.plainNode.textContent = this.answer.plain;
    } else if (edit.p) {
      this.plainNode.append(edit.p);
    }
  }
}

function render(model, el) {
  let answer = answers.get(model.get("key"));
  if (!answer) {
    answer = { blocks: [], tail: "", plain: "", views: new Set() };
  }
  el.replaceChildren();
  const view = new AnswerView(model, el, answer);
  answer.views.add(view);
  const onHeader = () => view.header(model);
  const traits = ["change:link", "change:waiting", "change:plain"];
  traits.forEach((trait) => model.on(trait, onHeader));
  return () => {
    answer.views.delete(view);
    traits.forEach((trait) => model.off(trait, onHeader));
  };
}

function install({ model }) {
  const shared = (globalThis.__rtStream ??= {});
  shared.ready ??= new Promise((resolve) => {
    shared.resolve = resolve;
  });
  shared.resolve({ initialize, render });
  document.documentElement.dataset.rtStream = "1"; // for tests: installed
  model.send({ event: "ready" }); // answers open widgets from now on
}

export default { initialize: install };
