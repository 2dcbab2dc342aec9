"""Widget: the chat panel's header, status line and transcript, as ONE anywidget.

The page code (``chat_view.js``) holds the message list; the kernel sends ops
(:mod:`rt_notebook.render.panel_doc`) as custom messages, so a turn costs the bytes of
what changed, never the whole list, and the panel is a fixed number of widget models
however long the conversation grows. A page that joins late (a reload, a second view)
asks for a replay and gets the list once. The widget's synced state is only the header and
the status line: a saved notebook holds no transcript in its widget state.

Every op is written by one thread, the panel's writer (:meth:`publish`), so the page sees
them in order. Messages from the page (``replay``, ``decide``) arrive on the comm's thread
and go to the handlers the panel registered; they must be quick.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

from ._esm import with_thumbs

__all__ = ["ChatView"]


class ChatView(anywidget.AnyWidget):
    """The transcript widget. ``publish(op)`` sends one op; ``on_replay`` and
    ``on_decide`` register what the page asks for."""

    _esm = with_thumbs("chat_view.js")  # thumbnails of pasted images
    # anywidget gives initialize() and render() different model proxies: the views find
    # the list of their model by this id.
    _view_id = traitlets.Unicode().tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    notebook = traitlets.Unicode("").tag(sync=True)
    session = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Dict({"state": "", "line": ""}).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(_view_id=uuid.uuid4().hex, **kwargs)
        self._replay: Callable[[], None] = lambda: None
        self._decide: Callable[[str, bool], None] = lambda call, allow: None
        self.ops_sent = 0  # for tests and benchmarks: custom messages written
        self.bytes_sent = 0  # their JSON content, in bytes
        self.on_msg(self._handle_message)

    def on_replay(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when a page asks for the whole list."""
        self._replay = callback

    def on_decide(self, callback: Callable[[str, bool], None]) -> None:
        """Call ``callback(call, allow)`` when the page's Approve or Deny is clicked."""
        self._decide = callback

    def publish(self, op: dict[str, Any]) -> None:
        """Send one op to every view (the panel's writer thread only)."""
        self.ops_sent += 1
        self.bytes_sent += len(json.dumps(op, ensure_ascii=False).encode())
        self.send(op)

    def _handle_message(self, _: Any, content: Any, buffers: Any) -> None:
        # On the comm's thread: hand over, return.
        if not isinstance(content, dict):
            return
        event = content.get("event")
        if event == "replay":
            self._replay()
        elif event == "decide" and isinstance(content.get("call"), str):
            self._decide(content["call"], content.get("allow") is True)
