"""Cell view for spoken answers: a live player while the audio streams, then the audio kept.

:class:`VoiceOutput` shows an :class:`~rt_notebook.widgets.player.AudioPlayer` in the cell,
feeds it each ``response.output_audio.delta`` of one response as the Session's I/O thread
decodes it, and, once the answer has played (or at once when no browser is listening),
replaces the player with an ``<audio controls>`` element holding the answer as a WAV data
URL (the form :class:`IPython.display.Audio` writes), so a saved notebook keeps what the
model said. Audio longer than the cap is not embedded: a note says so instead. The
transcript is the :class:`~rt_notebook.render.cell.CellView` shown next to it.

The user talking over the answer (a microphone press, or speech the server hears) stops it
like its Stop button (:mod:`rt_notebook.render.playing`); either way it is truncated where heard.

A ``--background`` cell returns at once: :func:`voice_in_background` finishes
it when the response does, from a thread (the player was displayed while the cell ran, so
the thread only updates that display).
"""

from __future__ import annotations

import base64
import contextvars
import logging
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from IPython.display import DisplayHandle, display

from ..client.audio import pcm_seconds, wav_bytes

if TYPE_CHECKING:
    from ..client.responses import ResponseHandle, ResponseResult
    from ..client.session import Session
    from ..widgets.player import AudioPlayer

__all__ = [
    "VoiceOutput",
    "audio_bundle",
    "audio_html",
    "recent_players",
    "recent_voices",
    "truncate_played",
    "voice_in_background",
    "wants_audio",
]

log = logging.getLogger(__name__)

# Players stay referenced after their cell returns: the browser is still playing, and an
# ipywidgets widget that is garbage-collected closes its comm.
_RECENT: deque[AudioPlayer] = deque(maxlen=16)
_VOICES: deque[VoiceOutput] = deque(maxlen=16)


def recent_players() -> list[AudioPlayer]:
    """The players of the last answers, oldest first."""
    return list(_RECENT)


def recent_voices() -> list[VoiceOutput]:
    """The cell views of the last spoken answers, oldest first (``kept`` says when each
    one's audio is in the notebook)."""
    return list(_VOICES)


def wants_audio(handle: ResponseHandle, session: Session) -> bool:
    """Whether ``handle``'s response asked for audio output (or the session's default does)."""
    params = handle.params or {}
    modalities = params.get("output_modalities") or params.get("modalities")
    if modalities is None:
        modalities = session.settings.get("modalities") or ()
    return "audio" in modalities


def voice_in_background(
    session: Session, handle: ResponseHandle, *, cap_seconds: float
) -> VoiceOutput | None:
    """For a ``--background`` cell: the player of ``handle``'s audio (shown now, above the
    transcript), finished when the response is; ``None`` if it asked for no audio."""
    if not wants_audio(handle, session):
        return None
    voice = VoiceOutput(session, handle, cap_seconds=cap_seconds)
    voice.finish_in_background()
    return voice


def audio_html(wav: bytes) -> str:
    """``<audio controls>`` with ``wav`` as a data URL, as :class:`IPython.display.Audio`
    writes it (built here: the only text in it is base64, nothing the model wrote)."""
    source = "data:audio/wav;base64," + base64.b64encode(wav).decode("ascii")
    return (
        '<audio controls="controls">\n'
        f'    <source src="{source}" type="audio/wav" />\n'
        "    Your browser does not support the audio element.\n"
        "</audio>"
    )


def audio_bundle(pcm: bytes, cap_seconds: float, note: str = "") -> dict[str, Any]:
    """The display bundle that keeps ``pcm`` in the notebook, or a note past the cap."""
    seconds = pcm_seconds(pcm)
    if not pcm:
        text = "(no audio)"
        return {"text/plain": text, "text/markdown": f"*{text}*"}
    if seconds > cap_seconds:
        text = (
            f"(audio not kept in the notebook: {seconds:.1f} s is over the {cap_seconds:g} s "
            "cap, see %config RealtimeMagics.audio_cap_seconds; the transcript is below)"
        )
        return {"text/plain": text, "text/markdown": f"*{text}*"}
    return {
        "text/html": audio_html(wav_bytes(pcm)),
        "text/plain": f"<audio: {seconds:.1f} s{note}>",
    }


def truncate_played(session: Session, handle: ResponseHandle, played: int) -> bool:
    """Make the model forget what the user did not hear: cancel the rest of ``handle``'s
    answer and truncate its audio item at ``played`` samples (``audio_end_ms``); say if
    an item was truncated. Blocks for the server's acknowledgement: not on the I/O thread."""
    if not handle.done():
        handle.cancel()
    response_id = handle.response_id
    if response_id is None:
        return False
    position = played * 2  # bytes of PCM16
    for item in session.response_items(response_id):
        size = session.item_audio_bytes(item.id)
        if item.type != "message" or not size:
            continue
        if position <= size:
            end_ms = position * 1000 // (2 * 24_000)
            try:
                session.truncate_item(item.id, audio_end_ms=end_ms)
            except Exception:  # a refused truncate must not break the cell
                log.warning("rt_notebook: could not truncate %s", item.id, exc_info=True)
                return False
            return True
        position -= size
    return False


class VoiceOutput:
    """Plays one response's audio in the cell as it streams; keeps it when played."""

    def __init__(self, session: Session, handle: ResponseHandle, *, cap_seconds: float) -> None:
        from ..widgets.player import AudioPlayer

        self.session = session
        self.handle = handle
        self.cap_seconds = cap_seconds
        self.player = AudioPlayer()
        _RECENT.append(self.player)
        _VOICES.append(self)
        self._context = contextvars.copy_context()  # the cell's parent header lives here
        self._lock = threading.Lock()
        self._audio: bytes | None = None  # the answer's audio, once done
        self._note = ""
        self._played: int | None = None  # samples heard, if the user stopped playback
        self._kept = False
        self.kept_audio: bytes | None = None  # what the notebook keeps, once kept
        self.kept = threading.Event()  # set once the kept audio (or note) is displayed
        self.truncated: threading.Event = threading.Event()  # set once the server cut it
        # None outside IPython (plain Python shows nothing to update).
        self._display: DisplayHandle | None = display(self.player, display_id=True)
        self.player.on_status(self._on_status)
        self.player.on_stop(self._on_stop)
        self._unsubscribe = session.subscribe_audio(handle, self.player.feed)
        from .playing import register

        register(session, handle, self.player)  # talking over it (a microphone) stops it

    def finish(self, result: ResponseResult) -> None:
        """The response is done: keep its audio in the notebook once the browser has
        played it (at once without a browser, or if it already has)."""
        self._unsubscribe()
        self.player.end()
        with self._lock:
            self._audio = result.audio
            if result.audio_dropped:
                self._note = " (more audio than the session keeps per item)"
        # Without word from a browser yet (none, or its messages wait for this cell to
        # end) the audio is kept now; the browser's player still plays it all.
        if not self.player.browser_ready or self.player.status in ("ended", "stopped"):
            self._keep()

    def finish_in_background(self) -> None:
        """For a ``--background`` cell: :meth:`finish` when the response does (or
        :meth:`close` if it failed), on a thread of its own, not the Session's I/O thread
        that reports the end (keeping the audio encodes a WAV and sends it)."""

        def finish(handle: ResponseHandle) -> None:
            try:
                result = handle.wait(0)
            except Exception:  # the cell's transcript view shows the error
                self.close()
                return
            self.finish(result)

        self.handle.add_done_callback(
            lambda handle: threading.Thread(
                target=finish, args=(handle,), name="rt_notebook-voice", daemon=True
            ).start()
        )

    def close(self) -> None:
        """Stop following the response (no audio is kept): it was given up."""
        self._unsubscribe()
        self.player.end()

    # Internals ---------------------------------------------------------------------------

    def _on_status(self, status: str) -> None:
        if status in ("ended", "stopped"):
            self._keep()

    def _on_stop(self, played: int) -> None:
        # On the kernel thread that delivers comm messages: the requests go from a thread.
        with self._lock:
            self._played = played
        threading.Thread(
            target=self._truncate, args=(played,), name="rt_notebook-truncate", daemon=True
        ).start()

    def _truncate(self, played: int) -> None:
        if truncate_played(self.session, self.handle, played):
            self.truncated.set()

    def _keep(self) -> None:
        with self._lock:
            if self._audio is None or self._kept:
                return
            self._kept = True
            audio = self._audio if self._played is None else self._audio[: self._played * 2]
            note = self._note if self._played is None else f"{self._note}, stopped"
            bundle = audio_bundle(audio, self.cap_seconds, note)
            self.kept_audio = audio
        if self._display is not None:
            self._context.run(self._display.update, bundle, raw=True)
        self.kept.set()
