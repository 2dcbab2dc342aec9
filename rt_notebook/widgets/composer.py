"""Widget: the chat panel's input row (a tiny anywidget: textarea, Send, Stop).

ipywidgets has no multi-line input with an Enter event: ``Textarea`` never reports Enter,
and ``Text.on_submit`` is single-line, so Shift+Enter could not add a line. anywidget
(maintained, shipped as a prebuilt JupyterLab extension, no build step) lets a 60-line ES
module own the keys: Enter sends, Shift+Enter adds a line, and the key events stop at the
textarea so JupyterLab's notebook shortcuts do not fire while typing. The browser clears
the box itself on submit, so Python never writes the widget from a comm thread.
Images pasted or dropped into the row come with the submit as comm buffers
(:mod:`rt_notebook.widgets.pasted`), never in widget state.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ._esm import with_thumbs
from .pasted import PastedImage, pasted_images
from .subshells import keep_frontend_subshell

__all__ = ["Composer"]

_HERE = Path(__file__).parent


class Composer(anywidget.AnyWidget):
    """Textarea + Send + Stop; reports ``submit`` (with the text and any pasted images)
    and ``stop``."""

    _esm = with_thumbs("composer.js")
    # The whole panel's stylesheet rides on this widget: anywidget injects it once.
    _css = _HERE / "chat.css"

    value = traitlets.Unicode("", help="A draft to put in the text box (typing stays local).").tag(
        sync=True
    )
    placeholder = traitlets.Unicode("").tag(sync=True)
    responding = traitlets.Bool(False, help="Whether Stop is enabled.").tag(sync=True)
    disabled = traitlets.Bool(False).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._submit_handlers: list[Callable[[str, list[PastedImage]], None]] = []
        self._stop_handlers: list[Callable[[], None]] = []
        self.on_msg(self._handle_message)
        keep_frontend_subshell(self.comm)

    def on_submit(self, callback: Callable[[str, list[PastedImage]], None]) -> None:
        """Call ``callback(text, images)`` when the user presses Enter or Send (``images``:
        those pasted or dropped since the last submit, often none)."""
        self._submit_handlers.append(callback)

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the user presses Stop."""
        self._stop_handlers.append(callback)

    def _handle_message(self, _: Any, content: dict[str, Any], buffers: Any) -> None:
        # Runs on the kernel thread that delivers comm messages: handlers must be quick.
        event = content.get("event") if isinstance(content, dict) else None
        if event == "submit" and isinstance(content.get("text"), str):
            images = pasted_images(content.get("images"), buffers)
            for submit in self._submit_handlers:
                submit(content["text"], images)
        elif event == "stop":
            for stop in self._stop_handlers:
                stop()
