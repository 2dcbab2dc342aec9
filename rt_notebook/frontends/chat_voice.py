"""Front end: the chat panel's voice mode (microphone, answer player, spoken bubbles).

The panel shows a :class:`~rt_notebook.widgets.mic.Microphone` under its text box and,
next to it, the player of the latest spoken answer; the conversation's items stay the
panel's bubbles (an answer's transcript is its assistant item's text). A
:class:`~rt_notebook.frontends.voice_control.VoiceController` does the talking, the same one
``%realtime voice`` uses; it is replaced when the panel follows a new Session.

Once the microphone is first used, the panel's Session answers in audio until the panel
closes (a line next to the microphone says so): see :mod:`rt_notebook.client.voice_switch`.

A spoken user item has no text until (unless) the server transcribes it: its bubble reads
"(voice message, 2.4 s)" meanwhile. The answers' audio, as the model remembers it (cut
where the user interrupted), is kept for the panel's notebook export.
"""

from __future__ import annotations

import dataclasses
import html
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import ipywidgets as widgets

from .voice_control import VoiceController

if TYPE_CHECKING:
    from ..client.responses import ItemSnapshot
    from ..client.session import Session
    from .voice_control import Answer

__all__ = ["PanelVoice"]


class PanelVoice:
    """The voice row of one chat panel. ``wake`` asks the panel's writer to run
    :meth:`sync`; every widget write after construction happens there."""

    def __init__(self, wake: Callable[[], None]) -> None:
        from ..widgets.mic import Microphone

        self._wake = wake
        self._lock = threading.Lock()
        self.microphone = Microphone()
        self.controller: VoiceController | None = None
        self._answers: list[Answer] = []  # of every controller this panel had
        self._labels: dict[str, str] = {}  # spoken user item id -> its label
        self._shown_player: object = None
        # Made at the first switch to audio: a panel never used for voice keeps its fixed
        # number of widget models.
        self._note: widgets.HTML | None = None
        self._note_shown = False
        self.widget = widgets.HBox([self.microphone], _dom_classes=("rt-chat-voice",))

    def attach(self, session: Session) -> None:
        """Talk to ``session`` from now on (any thread)."""
        with self._lock:
            old, self.controller = self.controller, None
        if old is None:
            # The text box comes first: the output switches to audio at the first press.
            controller = VoiceController(session, self.microphone, speak_now=False)
        else:
            controller = old.replace(session)
        controller.on_change(self._changed)
        with self._lock:
            self.controller = controller

    def interrupt(self) -> None:
        """Stop the spoken answers that play (the panel's Stop)."""
        controller = self.controller
        if controller is not None:
            controller.interrupt()

    def close(self) -> None:
        with self._lock:
            controller, self.controller = self.controller, None
        if controller is not None:
            controller.close()
        self.microphone.close()
        note = self._note
        if note is not None:  # its Layout and style are models of their own
            for model in (note, note.layout, note.style):
                model.close()

    def shown(self, item: ItemSnapshot) -> ItemSnapshot:
        """``item`` as its bubble shows it: a spoken message without text reads as its
        label; an answer cut off before any of it was kept reads "(interrupted)"."""
        if item.text:
            return item
        if item.role == "assistant" and item.status == "incomplete":
            # A truncation drops the unheard transcript (as the service does): without a
            # word, the bubble would show nothing at all.
            return dataclasses.replace(item, text="*(interrupted)*")
        if item.role != "user":
            return item
        with self._lock:
            label = self._labels.get(item.id)
        return item if label is None else dataclasses.replace(item, text=label)

    def audio(self) -> dict[str, bytes]:
        """Response id -> the answer's audio as the model remembers it, for the finished
        spoken answers."""
        with self._lock:
            answers = list(self._answers)
        kept: dict[str, bytes] = {}
        for answer in answers:
            pcm = answer.audio()
            if pcm and answer.handle.response_id is not None:
                kept[answer.handle.response_id] = pcm
        return kept

    def sync(self) -> None:
        """Writer thread: show the latest answer's player next to the microphone."""
        from ..client.voice_switch import NOTE

        with self._lock:
            latest = self._answers[-1].player if self._answers else None
            controller = self.controller
        speaking = controller is not None and controller.speaking
        if latest is not None and latest is not self._shown_player:
            self._shown_player = latest
        if speaking and self._note is None:
            self._note = widgets.HTML("", _dom_classes=("rt-chat-voice-note",))
        if speaking != self._note_shown and self._note is not None:
            self._note_shown = speaking
            self._note.value = (
                f'<span class="rt-notebook-mic-note">{html.escape(NOTE)}</span>' if speaking else ""
            )
        children = (self.microphone, *((self._note,) if speaking and self._note else ()))
        if latest is not None:
            children += (latest,)
        if self.widget.children != children:
            self.widget.children = children

    def _changed(self) -> None:
        controller = self.controller
        if controller is None:
            return
        with self._lock:
            for turn in controller.turns:
                if turn.item_id is not None:
                    self._labels[turn.item_id] = turn.label
            for answer in controller.answers:
                if answer not in self._answers:
                    self._answers.append(answer)
        self._wake()
