"""Widget: where ``%realtime chat --side`` puts the panel, decided by the front end.

Only the browser knows whether it has a side area for widgets (the ``sidecar`` package
works in JupyterLab; Notebook 7 logs "Could not create a view" and shows nothing). So the
cell shows this small slot inline; its ES module reports the application's name, and
Python then opens the side panel, or shows the panel inline in the slot's box with a
one-line note. Both happen in a comm handler, by widget state, not as new cell outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

__all__ = ["SideSlot"]

_HERE = Path(__file__).parent


class SideSlot(anywidget.AnyWidget):
    """Reports ``side`` (whether the front end has a side area) once; shows ``note``."""

    _esm = _HERE / "side.js"

    note = traitlets.Unicode("").tag(sync=True)
    answered = traitlets.Bool(False).tag(sync=True)  # later views ask nothing

    def __init__(self, on_frontend: Callable[[bool, str], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_frontend = on_frontend
        self.on_msg(self._handle_message)

    def _handle_message(self, _: Any, content: dict[str, Any], buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("event") != "frontend":
            return
        if self.answered:
            return  # a second view of the same output (or a reload) decides nothing
        self.answered = True
        self._on_frontend(content.get("side") is True, str(content.get("app") or "")[:60])
