// The chat panel's input row: a textarea (Enter sends, Shift+Enter adds a line), Send, Stop.
// Sends custom messages {event: "submit", text} and {event: "stop"}; Python does the rest.

function button(label, className) {
  const element = document.createElement("button");
  element.type = "button";
  element.textContent = label;
  element.className = `jupyter-button widget-button rt-chat-button ${className}`;
  return element;
}

function render({ model, el }) {
  const row = document.createElement("div");
  row.className = "rt-chat-composer";
  const box = document.createElement("textarea");
  box.className = "rt-chat-input";
  box.rows = 2;
  box.setAttribute("aria-label", "Message");
  const send = button("Send", "rt-chat-send mod-primary");
  const stop = button("Stop", "rt-chat-stop mod-warning");
  row.append(box, send, stop);
  el.appendChild(row);

  function submit() {
    const text = box.value;
    if (!text.trim() || model.get("disabled")) {
      return;
    }
    model.send({ event: "submit", text });
    box.value = "";
  }

  function onKeydown(event) {
    // Keep JupyterLab's notebook shortcuts (Shift+Enter runs a cell) out of the textarea.
    event.stopPropagation();
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  }

  // The draft stays in the browser (no message per keystroke); Python can set one.
  function setDraft() {
    box.value = model.get("value");
  }

  function sync() {
    box.placeholder = model.get("placeholder");
    box.disabled = model.get("disabled");
    send.disabled = model.get("disabled");
    stop.disabled = !model.get("responding");
  }

  box.addEventListener("keydown", onKeydown);
  box.addEventListener("keypress", (event) => event.stopPropagation());
  send.addEventListener("click", submit);
  stop.addEventListener("click", () => model.send({ event: "stop" }));
  model.on("change", sync);
  model.on("change:value", setDraft);
  setDraft();
  sync();
  return () => {
    model.off("change", sync);
    model.off("change:value", setDraft);
  };
}

export default { render };
