// The inline slot of `%realtime chat --side`: tells Python whether this front end has a
// side area for widgets (JupyterLab does; Notebook 7, VS Code and others do not), then
// shows the one-line note Python sets.

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

function render({ model, el }) {
  const note = document.createElement("div");
  note.className = "rt-chat-side-note";
  el.appendChild(note);
  const show = () => {
    note.textContent = model.get("note");
  };
  model.on("change:note", show);
  show();
  if (!model.get("answered")) {
    const app = frontendApp();
    model.send({ event: "frontend", app, side: app === "JupyterLab" });
  }
  return () => model.off("change:note", show);
}

export default { render };
