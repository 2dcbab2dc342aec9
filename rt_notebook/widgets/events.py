"""Widget: the "events" control of every answer, and the inspector pane it opens.

A cell's answer ends with a plain Markdown link, ``[events](#rt-events-TOKEN-KEY)``
(:func:`events_link`): KEY is the turn's request tag, TOKEN is this kernel's. The link is
inert text in a saved notebook (a fragment naming no element: a click does nothing), so
the saved output stays one Markdown output, with no widget view that could show "model not
found" once the kernel is gone. While the kernel lives, :class:`EventsHub` makes it work:
an anywidget with no view at all, whose ES module runs once per page (when the hub is
created, and when a reloaded page restores the kernel's widgets) and installs a
page-level click delegate for links carrying its TOKEN; a click sends KEY over the hub's
comm. The hub is made once per kernel, from a cell's thread, and never displayed, so it
adds no output and no saved widget state.

Clicks arrive on rt_notebook's kernel subshell (ipykernel 7), so they are handled while a
blocking cell streams. The hub hands each click to its :attr:`EventsHub.opener`, which the
views set (:func:`rt_notebook.render.inspector_pane.events_hub`: the turn's live timeline
in JupyterLab's side area) and sends back the note it returns; a hub with no opener yet
answers with the command that always works, ``%realtime inspect KEY --live``.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from .subshells import route_to_subshell

__all__ = ["EventsHub", "Opener", "hub"]

# What a click opens: ``opener(key, side)`` shows turn ``key``'s events (in a side area
# if ``side``: the page is JupyterLab's) and returns a note for the user ("" for none).
Opener = Callable[[str, bool], str]

log = logging.getLogger("rt_notebook")

_HERE = Path(__file__).parent
KEY = re.compile(r"[A-Za-z0-9_-]{1,80}\Z")  # request tags, response and item ids
# A turn asked to open again within this many seconds of the last ask opens nothing.
REOPEN_AFTER_S = 2.0


class EventsHub(anywidget.AnyWidget):
    """The kernel's end of the events links (one per kernel, never displayed)."""

    _esm = _HERE / "events.js"

    token = traitlets.Unicode("").tag(sync=True)  # which links are this kernel's

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(token=secrets.token_hex(6), **kwargs)
        self.ready = threading.Event()  # set when a page installed the click delegate
        self.app = ""  # the front end that reported last (e.g. "JupyterLab")
        self.opened: list[str] = []  # keys opened by clicks, for tests
        self.opener: Opener | None = None  # set by the views that draw the inspector
        # The last key asked to open and when (monotonic): "open" is idempotent per turn.
        self._last_open: tuple[str, str, float] | None = None
        self.on_msg(self._handle_message)

    def href(self, key: str) -> str:
        """``#rt-events-TOKEN-KEY`` (empty for a key that is not an id)."""
        return f"#rt-events-{self.token}-{key}" if KEY.match(key) else ""

    def link(self, key: str) -> str:
        """``[events](#rt-events-TOKEN-KEY)`` (empty for a key that is not an id)."""
        href = self.href(key)
        return f"[events]({href})" if href else ""

    def _repeated(self, key: str, app: str) -> bool:
        """Whether the same front end asked to open ``key`` less than
        :data:`REOPEN_AFTER_S` ago (each ask counts: a flood opens once). Later it opens
        again (the user may have closed the pane, which the front end does not report),
        and another front end (a page in JupyterLab after one in Notebook 7) at once."""
        now = time.monotonic()
        last, self._last_open = self._last_open, (key, app, now)
        return last is not None and last[:2] == (key, app) and now - last[2] < REOPEN_AFTER_S

    def _handle_message(self, _: Any, content: Any, buffers: Any) -> None:
        # Runs on the comm's thread (rt_notebook's subshell when there is one).
        if not isinstance(content, dict):
            return
        app = str(content.get("app") or "")[:60]
        if content.get("event") == "ready":
            self.app = app
            self.ready.set()
            return
        key = content.get("key")
        if content.get("event") != "open" or not isinstance(key, str) or not KEY.match(key):
            return
        self.app = app or self.app
        if self._repeated(key, app):
            return  # the turn's inspector was just opened: a double click, or a flood
        self.opened.append(key)
        try:
            note = self._open(key, side=app == "JupyterLab")
        except Exception:  # a click must never raise into the kernel's comm handling
            log.exception("rt_notebook: could not open the inspector for %s", key)
            note = f"Could not open the inspector: run %realtime inspect {key} in a cell."
        if note:
            self.send({"event": "note", "text": note})

    def _open(self, key: str, *, side: bool) -> str:
        opener = self.opener
        if opener is None:  # no view has drawn a link of this kernel's yet
            return f"Run %realtime inspect {key} --live in a cell to see its events."
        return opener(key, side)


_lock = threading.Lock()
_hub: list[EventsHub] = []


def hub() -> EventsHub | None:
    """This kernel's hub, created on first use (``None`` outside a Jupyter kernel)."""
    with _lock:
        if _hub:
            return _hub[0]
        try:
            from IPython import get_ipython

            shell = get_ipython()
            if shell is None or getattr(shell, "kernel", None) is None:
                return None
            made = EventsHub()
            route_to_subshell([made])  # clicks are handled while a cell blocks
        except Exception as exc:  # no comms here: answers simply have no link
            log.debug("rt_notebook: no events hub: %s", exc)
            return None
        _hub.append(made)
        return made
