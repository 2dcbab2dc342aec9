"""Client layer, voice: a Session's output switched to audio while a voice control is on.

In GA a response is text or audio (audio comes with its transcript), never both, and the
server starts hands-free answers with the session's own settings. So a voice control
(``%realtime voice``, the chat panel's microphone) *holds* its Session's
:class:`AudioSwitch` while it is on: the first holder switches the Session's output to
``["audio"]`` with :meth:`~rt_notebook.client.session.Session.update_session`, the last one to let
go puts back what was there before (unless someone changed it meanwhile). The setting is
the Session's own, so a reconnect sends it again.

Turns typed while the output is switched (a ``%%realtime`` cell without ``--modalities``,
the panel's text box) still answer as before: they ask for the earlier output per response
(:func:`typed_modalities`).
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .session import Session

__all__ = ["AUDIO", "AudioSwitch", "audio_switch", "typed_modalities"]

log = logging.getLogger("rt_notebook")

AUDIO = ["audio"]

# The note a voice control shows while it holds the switch.
NOTE = (
    "While voice is on, this Session answers in audio (cells and typed messages still "
    "answer as before)."
)

_switches: weakref.WeakKeyDictionary[Session, AudioSwitch] = weakref.WeakKeyDictionary()
_switches_lock = threading.Lock()


def audio_switch(session: Session) -> AudioSwitch:
    """The switch of ``session`` (one per Session)."""
    with _switches_lock:
        switch = _switches.get(session)
        if switch is None:
            switch = _switches[session] = AudioSwitch(session)
        return switch


def typed_modalities(session: Session) -> list[str] | None:
    """The output a typed turn asks for per response while voice switched ``session`` to
    audio (what it had before); ``None`` when nothing was switched. Blocks (not on the I/O
    thread) to give the output back first if that waited for a closed Session to
    reconnect."""
    with _switches_lock:
        switch = _switches.get(session)
    if switch is None:
        return None
    switch.settle()
    return switch.before


class AudioSwitch:
    """Counts the voice controls that hold one Session's output at audio.

    :meth:`hold` and :meth:`let_go` only count (quick, any thread); :meth:`apply` sends
    what the count means. It blocks for the server's acknowledgement, so controls call it
    from a worker thread; concurrent calls are serialised and each sends the latest wish,
    so the last one leaves the Session as the holders want it.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self._lock = threading.Lock()
        self._apply_lock = threading.Lock()
        self._holders = 0
        self._before: list[str] | None = None  # the output before the first holder
        self._switched = False  # this switch changed the Session's output

    @property
    def holders(self) -> int:
        with self._lock:
            return self._holders

    @property
    def before(self) -> list[str] | None:
        """The output the Session had before it was switched to audio; ``None`` if it is
        not switched (or already answered in audio)."""
        with self._lock:
            if not (self._holders or self._switched) or self._before is None:
                return None
            return None if self._before == AUDIO else list(self._before)

    def hold(self) -> None:
        with self._lock:
            self._holders += 1
            if self._before is None:
                self._before = list(self.session.settings.get("modalities") or ["text"])

    def let_go(self) -> None:
        with self._lock:
            self._holders = max(0, self._holders - 1)

    def settle(self) -> None:
        """Give the output back now if the last holder let go while the Session was
        closed (and it is open again)."""
        with self._lock:
            waiting = not self._holders and self._switched
        if waiting and self.session.status.state != "closed":
            self.apply()

    def apply(self) -> None:
        """Send the output the holders want, if the Session does not have it yet."""
        with self._apply_lock:
            with self._lock:
                holding, before = self._holders > 0, self._before
            current = list(self.session.settings.get("modalities") or [])
            if holding:
                if current != AUDIO:
                    self.session.update_session(modalities=AUDIO)
                    with self._lock:
                        self._switched = True
                return
            if self.session.status.state == "closed":
                # Sending would reconnect a Session someone closed; its typed turns keep
                # asking for the earlier output meanwhile (see ``before``).
                return
            if self._switched and before is not None and current == AUDIO:
                self.session.update_session(modalities=before)
            with self._lock:
                if not self._holders:  # nobody took it again meanwhile
                    self._switched = False
                    self._before = None
