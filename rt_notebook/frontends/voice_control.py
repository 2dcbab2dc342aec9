"""Front end for talking by voice: the microphone's audio into a Session, answers out.

:class:`VoiceTurns` is the sans-I/O part: it counts the audio sent, reads the server's
input-audio events (commits, voice activity, transcriptions) and keeps the user's turns,
each shown as its input transcription when the server provides one, otherwise as
"(voice message, 2.4 s)". :class:`VoiceController` is the thin I/O around it:

* The :class:`~rt_notebook.widgets.mic.Microphone`'s handlers run on the kernel thread
  that delivers comm messages (a JupyterLab subshell while a cell runs). They only hand
  the work to one worker thread per controller, which calls the Session in the order
  the browser spoke: ``append_audio``, ``commit_audio``, ``clear_audio``,
  ``set_turn_detection``.
* Push-to-talk: a press clears the input buffer (and interrupts an answer that plays); a
  release commits it and asks for the answer. Hands-free: server voice activity detection
  is switched on; the server commits and answers by itself
  (``Session.on_server_response``).
* Answers speak: while the controller is on it holds its Session's
  :class:`~rt_notebook.client.voice_switch.AudioSwitch` (the Session's output is audio, so the
  server's hands-free answers speak), and a push-to-talk turn asks for audio itself.
* Each answer plays with an :class:`~rt_notebook.widgets.player.AudioPlayer`. Barge-in:
  when the server hears speech start (``input_audio_buffer.speech_started``), the user
  presses to talk, or presses Stop, every answer of the Session that plays stops at once
  (:func:`~rt_notebook.render.playing.interrupt`: a cell's too), the browser reports what it
  played, and ``conversation.item.truncate`` is sent with that ``audio_end_ms``
  (:func:`~rt_notebook.render.voice.truncate_played`), so the model remembers what the
  user heard.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..client.voice_switch import AUDIO
from ..protocol.numbers import count

if TYPE_CHECKING:
    from ..client.responses import ResponseHandle
    from ..client.session import Session
    from ..widgets.mic import Microphone
    from ..widgets.player import AudioPlayer

__all__ = ["Answer", "UserTurn", "VoiceController", "VoiceTurns", "voice_label"]

log = logging.getLogger("rt_notebook")

# The API refuses to commit less than 100 ms of audio ("buffer too small").
MIN_COMMIT_BYTES = 4_800


def voice_label(seconds: float, transcript: str | None = None) -> str:
    """How a spoken turn reads: its transcription, or ``(voice message, 2.4 s)``."""
    if transcript is not None and transcript.strip():
        return transcript.strip()
    return f"(voice message, {seconds:.1f} s)"


@dataclass(eq=False)
class Answer:
    """One spoken answer: its response, its player, and what the user heard of it."""

    handle: ResponseHandle
    player: AudioPlayer
    played: int | None = None  # samples heard, once playback was stopped early
    truncated: threading.Event = field(default_factory=threading.Event)

    def audio(self) -> bytes | None:
        """The answer's PCM as the model remembers it (cut where the user stopped it);
        ``None`` while it runs or if it failed."""
        if not self.handle.done() or self.handle.error is not None:
            return None
        pcm = self.handle.wait().audio
        return pcm if self.played is None else pcm[: self.played * 2]


@dataclass(eq=False)
class UserTurn:
    """One thing the user said, and the answer it got."""

    mode: str  # "push" or "handsfree"
    seconds: float = 0.0
    item_id: str | None = None
    transcript: str | None = None
    note: str = ""  # e.g. "too short: not sent"
    answer: Answer | None = None

    @property
    def label(self) -> str:
        return self.note or voice_label(self.seconds, self.transcript)


class VoiceTurns:
    """Sans-I/O: the user's turns from what was sent and what the server said.

    Not thread-safe by itself: the controller calls it under its lock.
    """

    def __init__(self) -> None:
        self.turns: list[UserTurn] = []
        self.mode: str | None = None  # while capturing: "push" or "handsfree"
        self.pending = 0  # PCM bytes appended since the last commit or clear
        self.sent = 0  # PCM bytes appended in all
        self._awaiting: list[UserTurn] = []  # our commits the server has not confirmed
        self._speech_start_ms: int | None = None
        self._speech_end_ms: int | None = None

    def start(self, mode: str) -> None:
        self.mode = mode
        if mode == "push":
            self.pending = 0  # the controller clears the server's buffer too

    def appended(self, size: int) -> None:
        self.pending += size
        self.sent += size

    def release(self) -> UserTurn:
        """Push-to-talk released: the turn to commit (or one noted as too short)."""
        self.mode = None
        turn = UserTurn("push", seconds=self.pending / 48_000)
        if self.pending < MIN_COMMIT_BYTES:
            turn.note = f"(too short to send: {turn.seconds:.1f} s; hold while you speak)"
        else:
            self._awaiting.append(turn)
        self.pending = 0
        self.turns.append(turn)
        return turn

    def handsfree_off(self) -> None:
        self.mode = None
        self.pending = 0

    def event(self, event: dict[str, Any]) -> str | None:
        """Read one server event; return what it means to the controller:
        ``"speech_started"`` (interrupt what plays), ``"turn"`` (a turn was added or
        changed), or ``None``."""
        kind = event.get("type")
        if kind == "input_audio_buffer.speech_started":
            start = event.get("audio_start_ms")
            self._speech_start_ms = count(start)  # from the server: checked
            self._speech_end_ms = None
            return "speech_started"
        if kind == "input_audio_buffer.speech_stopped":
            end = event.get("audio_end_ms")
            self._speech_end_ms = count(end)
            return None
        if kind == "input_audio_buffer.timeout_triggered":  # the silence is the turn
            start, end = event.get("audio_start_ms"), event.get("audio_end_ms")
            self._speech_start_ms = count(start)  # from the server: checked
            self._speech_end_ms = count(end)
            return None
        if kind == "input_audio_buffer.committed":
            item_id = event.get("item_id")
            if self._awaiting:
                turn = self._awaiting.pop(0)
            else:  # the server's voice activity detection ended a turn
                turn = UserTurn("handsfree", seconds=self._spoken_seconds())
                self.turns.append(turn)
            turn.item_id = item_id if isinstance(item_id, str) else None
            self.pending = 0
            return "turn"
        if kind == "input_audio_buffer.cleared":
            self.pending = 0
            return None
        if kind == "conversation.item.input_audio_transcription.completed":
            for turn in reversed(self.turns):
                if turn.item_id is not None and turn.item_id == event.get("item_id"):
                    transcript = event.get("transcript")
                    turn.transcript = transcript if isinstance(transcript, str) else None
                    return "turn"
        return None

    def answer(self, answer: Answer, turn: UserTurn | None = None) -> UserTurn:
        """Attach ``answer`` to ``turn``, or to the latest turn still without one."""
        if turn is None:
            waiting = [t for t in self.turns if t.answer is None and not t.note]
            turn = waiting[-1] if waiting else UserTurn("handsfree")
            if not waiting:
                self.turns.append(turn)
        turn.answer = answer
        return turn

    def _spoken_seconds(self) -> float:
        start, end = self._speech_start_ms, self._speech_end_ms
        if start is not None and end is not None and end >= start:
            return (end - start) / 1000
        return self.pending / 48_000


class VoiceController:
    """Connects a :class:`~rt_notebook.widgets.mic.Microphone` to a Session.

    ``on_change(callback)`` calls ``callback()`` (from any thread, quick) when a turn is
    added or changes, for the views; :meth:`close` stops following the Session.

    ``speak_now``: switch the Session's output to audio at once (``%realtime voice``), or
    only when the microphone is first used (the chat panel, whose text box comes first);
    either way it is switched back by :meth:`close`.
    """

    def __init__(self, session: Session, mic: Microphone, *, speak_now: bool = True) -> None:
        from ..client.voice_switch import audio_switch

        self.session = session
        self.mic = mic
        self.core = VoiceTurns()
        self.answers: list[Answer] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._change_handlers: list[Callable[[], None]] = []
        self._worker = concurrent.futures.ThreadPoolExecutor(1, "rt_notebook-voice")
        self._detection: str | None = "unknown"
        self._closed = False
        self._switch = audio_switch(session)
        self._switching: concurrent.futures.Future[None] | None = None  # the last switch
        self._holding = False  # the Session's output switched to audio for this controller
        if speak_now:
            self._speak()
        self._unhook = [mic.on_start(self._on_start), mic.on_audio(self._on_audio)]
        self._unhook.append(mic.on_end(self._on_end))
        self._unlisten = session.listen(self._on_event)
        self._unfollow = session.on_server_response(self._on_server_response)

    # Public --------------------------------------------------------------------------

    @property
    def turns(self) -> list[UserTurn]:
        with self._lock:
            return list(self.core.turns)

    @property
    def speaking(self) -> bool:
        """Whether this controller holds its Session's output at audio (until closed)."""
        with self._lock:
            return self._holding

    def wait_switched(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until the Session's output is as this
        controller last asked (audio when it started, as before when it closed); say if
        it is (a failure is shown next to the microphone)."""
        switching = self._switching
        if switching is None:
            return True
        try:
            switching.result(timeout)
        except concurrent.futures.TimeoutError:
            return False
        return True

    def on_change(self, callback: Callable[[], None]) -> None:
        self._change_handlers.append(callback)

    def replace(self, session: Session) -> VoiceController:
        """A controller of this microphone for ``session`` (the Session that replaced
        this one's, e.g. after ``%realtime reset``); this one stops following. A capture
        in progress goes on in the new conversation: hands-free switches the new
        Session's voice activity detection on."""
        with self._lock:
            mode, speaking = self.core.mode, self._holding
        self.close(stop_microphone=False)
        controller = VoiceController(session, self.mic, speak_now=speaking)
        if mode is not None:
            controller._on_start(mode)
        return controller

    def interrupt(self) -> None:
        """Stop every answer of the Session that is playing, this controller's or not (a
        cell's, a panel's): each is then truncated where it stopped."""
        from ..render.playing import interrupt

        interrupt(self.session)

    def close(self, *, stop_microphone: bool = True) -> None:
        """Stop following the Session (and, unless told not to, the microphone); give
        the Session's output back (as it was before voice switched it to audio)."""
        with self._lock:
            self._closed = True
            holding, self._holding = self._holding, False
        if holding:
            self._switch.let_go()
            self._switching = self._submit(self._switch_output)  # after the turns' calls
        for unhook in self._unhook:
            unhook()
        self._unlisten()
        self._unfollow()
        if stop_microphone:
            self.mic.stop()
        self._worker.shutdown(wait=False)

    # Microphone (the comm thread: hand over, return) -----------------------------------

    def _speak(self) -> None:
        """Hold the Session's output at audio (once); the switch is sent before the
        calls the microphone makes after this."""
        with self._lock:
            if self._holding or self._closed:
                return
            self._holding = True
        self._switch.hold()
        self._switching = self._submit(self._switch_output)
        self._changed()

    def _on_start(self, mode: str) -> None:
        with self._lock:
            self.core.start(mode)
        self.interrupt()  # the user talks over the answer
        self._speak()
        self._submit(self._start, mode)

    def _on_audio(self, pcm: bytes) -> None:
        with self._lock:
            if self._closed or self.core.mode is None:
                return  # stray chunk after a stop: not part of a turn
            self.core.appended(len(pcm))
        self._submit(self.session.append_audio, pcm)

    def _on_end(self, seconds: float) -> None:
        with self._lock:
            mode = self.core.mode
            if mode == "push":
                turn = self.core.release()
            else:
                self.core.handsfree_off()
        if mode == "push":
            self._changed()
            self._submit(self._commit, turn)
        elif mode == "handsfree":
            self._submit(self._handsfree_off)

    # Worker thread: the Session calls, in order ------------------------------------------

    def _submit(
        self, function: Callable[..., Any], *args: Any
    ) -> concurrent.futures.Future[None] | None:
        with contextlib.suppress(RuntimeError):  # closed
            return self._worker.submit(self._guarded, function, *args)
        return None

    def _guarded(self, function: Callable[..., Any], *args: Any) -> None:
        try:
            function(*args)
        except Exception as exc:  # shown next to the microphone, never lost
            log.warning("rt_notebook voice: %s failed", function.__name__, exc_info=True)
            self._error(f"{function.__name__.strip('_')}: {exc}")

    def _start(self, mode: str) -> None:
        wanted = "server_vad" if mode == "handsfree" else None
        if self._detection != wanted:
            self.session.set_turn_detection(wanted)
            self._detection = wanted
        if mode == "push":
            self.session.clear_audio()
        self.mic.note = "listening (hands-free)…" if mode == "handsfree" else ""

    def _commit(self, turn: UserTurn) -> None:
        if turn.note:  # too short: the server would refuse it
            self.session.clear_audio()
            return
        # Asked for audio by the turn itself: whatever the Session's output is meanwhile.
        handle = self.session.commit_audio(respond=True, modalities=AUDIO)
        if handle is not None:
            self._follow(handle, turn)

    def _switch_output(self) -> None:
        # (its name is what an error next to the microphone starts with)
        self._switch.apply()

    def _handsfree_off(self) -> None:
        self.session.set_turn_detection(None)
        self._detection = None
        self.session.clear_audio()
        self.mic.note = ""

    # The I/O thread: quick -------------------------------------------------------------

    def _on_event(self, event: dict[str, Any]) -> None:
        with self._lock:
            meaning = self.core.event(event)
        if meaning == "speech_started":
            self.interrupt()
        elif meaning == "turn":
            self._changed()

    def _on_server_response(self, handle: ResponseHandle) -> None:
        # Only answers to what the microphone said (voice activity detection switched on
        # here); the player is made on the worker thread, and subscribe_audio catches up.
        if self._detection == "server_vad":
            self._submit(self._follow, handle, None)

    def _follow(self, handle: ResponseHandle, turn: UserTurn | None) -> None:
        """Play ``handle``'s answer and keep it with its turn."""
        from ..render.playing import register
        from ..widgets.player import AudioPlayer

        answer = Answer(handle, AudioPlayer())
        with self._lock:
            self.answers.append(answer)
            self.core.answer(answer, turn)
        register(self.session, handle, answer.player)  # talking over it stops it
        unsubscribe = self.session.subscribe_audio(handle, answer.player.feed)

        def done(_: ResponseHandle) -> None:
            unsubscribe()
            answer.player.end()
            self._changed()

        handle.add_done_callback(done)
        answer.player.on_stop(lambda played: self._stopped(answer, played))
        self._changed()

    def _stopped(self, answer: Answer, played: int) -> None:
        # On the comm thread: the truncate waits for the server, so it goes to a thread.
        from ..render.voice import truncate_played

        answer.played = played

        def truncate() -> None:
            if truncate_played(self.session, answer.handle, played):
                answer.truncated.set()
            self._changed()

        threading.Thread(target=truncate, name="rt_notebook-truncate", daemon=True).start()

    def _error(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)
        self.mic.note = f"⚠ {message}"
        self._changed()

    def _changed(self) -> None:
        for handler in self._change_handlers:
            try:
                handler()
            except Exception:  # a view's bug must not stop the microphone
                log.warning("rt_notebook voice: a view failed", exc_info=True)
