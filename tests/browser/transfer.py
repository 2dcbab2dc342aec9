"""Browser test support: a file pasted or dropped on a page element, as a person would.

Imported by the browser tests, not collected. Playwright has no clipboard or file drag
for a headless page, so the events are made in the page: a ``DataTransfer`` holding one
``File`` with the given bytes, in a ``ClipboardEvent`` (paste) or the ``DragEvent`` sequence
of a drop (dragenter, dragover, drop).
"""

from __future__ import annotations

import base64
from typing import Any

__all__ = ["transfer_file"]

# Dispatches a paste or a drop of one file (base64 of its bytes) on the first element
# matching the selector; returns whether the event's default action still runs.
TRANSFER = """([selector, data, type, name, kind]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type }));
  const target = document.querySelector(selector);
  const options = { bubbles: true, cancelable: true, composed: true };
  if (kind === 'paste') {
    const paste = new ClipboardEvent('paste', { ...options, clipboardData: transfer });
    return target.dispatchEvent(paste);
  }
  const drag = (type) => new DragEvent(type, { ...options, dataTransfer: transfer });
  target.dispatchEvent(drag('dragenter'));
  const over = target.dispatchEvent(drag('dragover'));
  const drop = target.dispatchEvent(drag('drop'));
  return over || drop;
}"""


def transfer_file(page: Any, selector: str, data: bytes, mime: str, name: str, kind: str) -> bool:
    """Paste (``kind="paste"``) or drop (``"drop"``) a file of ``data`` on the first element
    matching ``selector``; return whether the page let the browser's default action run."""
    payload = base64.b64encode(data).decode()
    return bool(page.evaluate(TRANSFER, [selector, payload, mime, name, kind]))
