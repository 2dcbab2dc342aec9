"""Front end, ``%realtime voice``'s cell output: the microphone, then each spoken turn and its
answer.

``%realtime voice`` shows a :class:`VoiceTurnsView`: the
:class:`~rt_notebook.widgets.mic.Microphone` on top, a line saying that the Session
answers in audio while the control is on, and, below it, one row per turn: the user's
bubble ("(voice message, 2.4 s)" or its input transcription), the answer's
:class:`~rt_notebook.widgets.player.AudioPlayer` and its transcript growing beside it.
``%realtime voice --off`` (:func:`hide_voice`) turns it off.

One writer thread per view does every widget write after construction (the controller
and the Session's I/O thread only wake it), at most about ten times a second. Model text
becomes HTML through :func:`~rt_notebook.render.markdown.markdown_html` only.
"""

from __future__ import annotations

import html
import logging
import threading
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from IPython.display import display

from ..render.markdown import markdown_html
from ..render.view_loop import ViewLoop

if TYPE_CHECKING:
    from ..client.session import Session
    from .voice_control import UserTurn, VoiceController

__all__ = [
    "VoiceTurnsView",
    "answer_html",
    "hide_voice",
    "show_voice",
    "shown_voices",
    "turn_html",
]

log = logging.getLogger("rt_notebook")

# Views stay referenced after their cell returns: the user goes on talking, and an
# ipywidgets widget that is garbage-collected closes its comm. A newer view on the same
# Session replaces an older one (one microphone per Session talks at a time).
_SHOWN: dict[str, VoiceTurnsView] = {}

# The writer's pace: transcript deltas arrive far more often than anyone reads.
FRAME = 0.1
# Longest a %realtime voice line waits for the Session's output to be switched.
SWITCH_WAIT = 10.0
# How often an idle writer looks whether its Session was replaced in the registry
# (``%realtime reset``), which no event announces.
IDLE_POLL = 1.0


def turn_html(turn: UserTurn) -> str:
    """The user's side of a turn as a bubble (escaped: a transcription is untrusted)."""
    return (
        f'<div class="rt-chat-bubble rt-chat-user" data-role="user"'
        f' data-item-id="{html.escape(turn.item_id or "")}">'
        '<div class="rt-chat-meta">You (spoken)</div>'
        f'<div class="rt-chat-body">{markdown_html(turn.label)}</div></div>'
    )


def answer_html(text: str, status: str) -> str:
    """The answer's transcript as a bubble."""
    flag = "" if status in ("completed", "in_progress") else f" ({html.escape(status)})"
    return (
        f'<div class="rt-chat-bubble rt-chat-assistant" data-role="assistant"'
        f' data-status="{html.escape(status)}">'
        f'<div class="rt-chat-meta">Assistant{flag}</div>'
        f'<div class="rt-chat-body">{markdown_html(text)}</div></div>'
    )


class _Row:
    def __init__(self, turn: UserTurn) -> None:
        self.turn = turn
        self.user = widgets.HTML()
        self.answer = widgets.HTML()
        self.box = widgets.VBox([self.user], _dom_classes=("rt-notebook-voice-turn",))
        self.player: Any = None


class VoiceTurnsView:
    """The voice control and its turns, for one controller.

    A view of the registry's Session for its name follows the Session that replaces it
    (``%realtime reset``), as the chat panel does: the microphone then talks to the new
    conversation, whose turns replace the old ones.
    """

    def __init__(self, session: Session, controller: VoiceController) -> None:
        from ..client.registry import get_session

        self.session = session
        self.controller = controller
        self._follow = get_session(session.name) is session
        self._lock = threading.Lock()
        self._rows: dict[int, _Row] = {}
        self._list = widgets.VBox([], _dom_classes=("rt-notebook-voice-turns",))
        self._note = widgets.HTML(
            _note_html(session.name), _dom_classes=("rt-notebook-voice-note",)
        )
        self.widget = widgets.VBox(
            [controller.mic, self._note, self._list], _dom_classes=("rt-notebook-voice",)
        )
        # The writer (the view loop every view uses): at most one redraw per FRAME,
        # and one every IDLE_POLL to follow a Session that replaced ours.
        self._loop = ViewLoop(self._publish, interval=FRAME, idle=IDLE_POLL)
        self._closed = False
        controller.on_change(self._loop.wake)
        self._unsubscribe = session.subscribe(self._loop.wake)
        self._thread = threading.Thread(
            target=self._loop.serve, name="rt_notebook-voice-view", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop the microphone and following the Session; the Session's output goes back
        to what it was before voice switched it to audio."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._unsubscribe()
            self.controller.close()
        self._loop.stop()
        self._note.value = _note_html(self.session.name, off=True)
        self.widget.children = (self._note, self._list)  # the microphone is gone

    def _ipython_display_(self) -> None:
        display(self.widget)  # type: ignore[no-untyped-call]

    def _publish(self) -> bool:
        """The view loop's step: follow the registry, redraw what changed."""
        if self._closed:
            return False
        try:
            self._follow_registry()
            self._render()
        except Exception:  # keep the view alive; the next change redraws
            log.warning("rt_notebook: the voice view failed", exc_info=True)
        return True  # paced: deltas that arrive within a FRAME are drawn together

    def _follow_registry(self) -> None:
        """Writer thread: move to the Session that replaced ours in the registry."""
        from ..client.registry import get_session

        if not self._follow:
            return
        current = get_session(self.session.name)
        if current is None or current is self.session:
            return
        with self._lock:
            if self._closed:
                return
            self._unsubscribe()
            self.controller = self.controller.replace(current)
            self.controller.on_change(self._loop.wake)
            self.session = current
            self._unsubscribe = current.subscribe(self._loop.wake)
        self._rows.clear()
        self._list.children = ()  # a fresh conversation

    def _render(self) -> None:
        turns = self.controller.turns
        added = False
        for turn in turns:
            row = self._rows.get(id(turn))
            if row is None:
                row = self._rows[id(turn)] = _Row(turn)
                added = True
            user = turn_html(turn)
            if row.user.value != user:
                row.user.value = user
            answer = turn.answer
            if answer is not None:
                if row.player is None:
                    row.player = answer.player
                    row.box.children = (row.user, answer.player, row.answer)
                text = answer.handle.text
                html_ = answer_html(text, answer.handle.status)
                if row.answer.value != html_:
                    row.answer.value = html_
        if added:
            self._list.children = tuple(self._rows[id(turn)].box for turn in turns)


def _note_html(name: str, *, off: bool = False) -> str:
    """The line under the microphone: the Session answers in audio while voice is on."""
    from ..client.voice_switch import NOTE

    which = "" if name == "default" else f" --session {name}"
    if off:
        command = html.escape(f"%realtime voice{which}")
        words = "Voice is off; the Session answers as it did before."
        return (
            f'<span class="rt-notebook-mic-note">{words} <code>{command}</code> turns it on.</span>'
        )
    command = html.escape(f"%realtime voice --off{which}")
    return (
        f'<span class="rt-notebook-mic-note">{html.escape(NOTE)} '
        f"<code>{command}</code> turns it off.</span>"
    )


def show_voice(session: Session) -> VoiceTurnsView:
    """Display the voice control for ``session`` (``%realtime voice``)."""
    from ..widgets.mic import Microphone
    from .voice_control import VoiceController

    old = _SHOWN.pop(session.name, None)
    view = VoiceTurnsView(session, VoiceController(session, Microphone()))
    if old is not None:
        old.close()  # after the new one holds the output: it stays audio throughout
    _SHOWN[session.name] = view
    display(view.widget)  # type: ignore[no-untyped-call]
    # The next cell (and `%realtime status`) finds the Session switched to audio.
    view.controller.wait_switched(SWITCH_WAIT)
    return view


def hide_voice(name: str) -> bool:
    """Turn off the voice control shown for the Session called ``name``
    (``%realtime voice --off``); say whether there was one."""
    view = _SHOWN.pop(name, None)
    if view is None:
        return False
    view.close()
    view.controller.wait_switched(SWITCH_WAIT)  # the next cell finds the output as before
    return True


def shown_voices() -> dict[str, VoiceTurnsView]:
    """The voice views shown, by Session name (the newest for each)."""
    return dict(_SHOWN)
