"""Views layer: the inspector pane an answer's "events" link opens, live until its turn ends.

A click on a link reaches the kernel's :class:`~rt_notebook.widgets.events.EventsHub`
(on rt_notebook's kernel subshell, so it is handled while a blocking cell streams);
:func:`events_hub` makes the hub's clicks call :func:`open_inspector`. That shows the
turn's timeline, rendered by :func:`~rt_notebook.render.inspector.timeline_markdown`
(sanitized Markdown, no HTML from events) in an ``ipywidgets.Output``, updated live until
the turn is done: in JupyterLab's side area (the ``sidecar`` package), or in an Output the
caller gives (the chat panel's). A front end without a side area for widgets (Notebook 7,
VS Code) gets a one-line note naming the command that always works,
``%realtime inspect KEY --live``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ..client.registry import sessions
from ..widgets.events import KEY, EventsHub, hub
from .inspector import LiveInspector

if TYPE_CHECKING:
    from ..client.session import Session
    from ..protocol.timeline import Timeline

__all__ = ["InspectorPane", "events_hub", "events_link", "open_inspector"]


def events_hub() -> EventsHub | None:
    """The kernel's events hub, its clicks opening the inspector pane (``None`` outside a
    kernel: ``%realtime inspect`` still works)."""
    made = hub()
    if made is not None:
        made.opener = _open_clicked
    return made


def events_link(key: str) -> str:
    """The Markdown link that opens ``key``'s inspector (empty when there is no hub)."""
    made = events_hub()
    return made.link(key) if made is not None else ""


def _open_clicked(key: str, side: bool) -> str:
    return open_inspector(key, side=side)


def _find(key: str) -> tuple[Session, Timeline] | None:
    """The Session that has a turn ``key`` names, and a copy of its timeline."""
    for session in sessions():
        timeline = session.timeline(key)
        if timeline is not None:
            return session, timeline
    return None


def _output_bundle(bundle: dict[str, str]) -> tuple[dict[str, Any], ...]:
    return ({"output_type": "display_data", "data": dict(bundle), "metadata": {}},)


class InspectorPane:
    """One turn's live timeline in an ``ipywidgets.Output`` (set by state, from any thread)."""

    def __init__(self, output: Any, key: str) -> None:
        self.output = output
        self.key = key
        self.live: LiveInspector | None = None

    def show(self) -> None:
        found = _find(self.key)
        if found is None:
            text = (
                f"**Events of `{self.key}`**\n\n*(no such turn: forgotten, or of a Session "
                "that was closed)*"
            )
            self._publish({"text/markdown": text, "text/plain": text})
            return
        session, timeline = found
        self.live = LiveInspector(
            session, timeline.key, f"Events of {self.key}", publish=self._publish
        )
        if not timeline.done:
            self.live.start()

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()

    def _publish(self, bundle: dict[str, str]) -> None:
        self.output.outputs = _output_bundle(bundle)


_side_lock = threading.Lock()
_side: list[tuple[Any, InspectorPane]] = []  # the open side pane, at most one


def open_inspector(key: str, *, side: bool, into: Any = None) -> str:
    """Show ``key``'s timeline: in ``into`` (an Output) if given, else in JupyterLab's side
    area if ``side``. Returns a note for the user when neither is possible (else "")."""
    if not KEY.match(key):
        return "Not an id."
    if into is not None:
        pane = InspectorPane(into, key)
        pane.show()
        return ""
    if not side:
        return (
            "This front end has no side area for the inspector: run "
            f"%realtime inspect {key} --live in a cell."
        )
    try:
        from sidecar import Sidecar
    except ImportError:  # an optional dependency (rt-notebook[lab])
        return (
            "No side area here (the sidecar package is not installed): run "
            f"%realtime inspect {key} --live in a cell."
        )
    with _side_lock:
        previous = _side.pop() if _side else None
        panel = Sidecar(title=f"Events · {key}", anchor="split-right")
        panel.add_class("rt-inspector")
        pane = InspectorPane(panel, key)
        _side.append((panel, pane))
    if previous is not None:  # one inspector pane at a time: the new one replaces it
        previous[1].stop()
        previous[0].close()
    pane.show()
    return ""
