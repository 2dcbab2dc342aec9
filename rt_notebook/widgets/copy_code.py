"""Widget: a "Copy code" button holding the code of a ``--background --to-cell`` answer.

A blocking cell puts the code of its answer into a new cell below (its execute reply
carries it); a ``--background`` cell has returned by the time its answer ends, and no reply
is left to carry anything. So its output gets this button instead: it copies the code as
plain text (``navigator.clipboard.writeText`` of the ``code`` trait, the text the kernel
sent, keys already scrubbed), never HTML, and shows nothing of the code itself.
"""

from __future__ import annotations

import anywidget
import traitlets

__all__ = ["CopyCode"]

_ESM = """
function render({ model, el }) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "jupyter-button widget-button rt-copy-code";
  const label = (text) => { button.textContent = text; };
  const lines = String(model.get("code")).split("\\n").length;
  label(`Copy code (${lines} line${lines === 1 ? "" : "s"})`);
  button.addEventListener("click", () => {
    navigator.clipboard.writeText(String(model.get("code"))).then(
      () => { button.dataset.copied = "yes"; label("Copied"); },
      () => { button.dataset.copied = "failed"; label("Copy failed"); },
    );
  });
  el.appendChild(button);
}
export default { render };
"""


class CopyCode(anywidget.AnyWidget):
    """A button that copies ``code`` to the clipboard."""

    _esm = _ESM
    code = traitlets.Unicode("").tag(sync=True)
