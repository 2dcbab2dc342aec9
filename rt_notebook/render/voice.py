"""Cell view for spoken answers: a live player while the audio streams, then the audio kept.

:class:`VoiceOutput` shows an :class:`~rt_notebook.widgets.player.AudioPlayer` in the cell,
feeds it each ``response.output_audio.delta`` of one response as the Session's I/O thread
decodes it, and, once the answer has played (or at once when no browser is listening),
replaces the player with an ``<audio controls>`` element holding the answer as a WAV data
URL (the form :class:`IPython.display.Audio` writes), so a saved notebook keeps what the
model said. Audio longer than the cap is not embedded: a note says so instead. The
transcript is the :class:`~rt_notebook.render.cell.CellView` shown next to it.
"""

from __future__ import annotations

import contextvars
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from IPython.display import Audio, DisplayHandle, display

from ..audio import pcm_seconds, wav_bytes

if TYPE_CHECKING:
    from ..responses import ResponseHandle, ResponseResult
    from ..session import Session
    from ..widgets.player import AudioPlayer

__all__ = ["VoiceOutput", "audio_bundle", "recent_players", "wants_audio"]

# Players stay referenced after their cell returns: the browser is still playing, and an
# ipywidgets widget that is garbage-collected closes its comm.
_RECENT: deque[AudioPlayer] = deque(maxlen=16)


def recent_players() -> list[AudioPlayer]:
    """The players of the last answers, oldest first."""
    return list(_RECENT)


def wants_audio(handle: ResponseHandle, session: Session) -> bool:
    """Whether ``handle``'s response asked for audio output (or the session's default does)."""
    params = handle.params or {}
    modalities = params.get("output_modalities") or params.get("modalities")
    if modalities is None:
        modalities = session.settings.get("modalities") or ()
    return "audio" in modalities


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
    html = Audio(data=wav_bytes(pcm))._repr_html_()
    return {"text/html": html, "text/plain": f"<audio: {seconds:.1f} s{note}>"}


class VoiceOutput:
    """Plays one response's audio in the cell as it streams; keeps it when played."""

    def __init__(self, session: Session, handle: ResponseHandle, *, cap_seconds: float) -> None:
        from ..widgets.player import AudioPlayer

        self.session = session
        self.handle = handle
        self.cap_seconds = cap_seconds
        self.player = AudioPlayer()
        _RECENT.append(self.player)
        self._context = contextvars.copy_context()  # the cell's parent header lives here
        self._lock = threading.Lock()
        self._final: dict[str, Any] | None = None  # the bundle to show once played
        self._kept = False
        self._display: DisplayHandle = display(self.player, display_id=True)
        self.player.on_status(self._on_status)
        self._unsubscribe = session.subscribe_audio(handle, self.player.feed)

    def finish(self, result: ResponseResult) -> None:
        """The response is done: keep its audio in the notebook once the browser has
        played it (at once without a browser, or if it already has)."""
        self._unsubscribe()
        self.player.end()
        note = " (more audio than the session keeps per item)" if result.audio_dropped else ""
        with self._lock:
            self._final = audio_bundle(result.audio, self.cap_seconds, note)
        # Without word from a browser yet (none, or its messages wait for this cell to
        # end) the audio is kept now; the browser's player still plays it all.
        if not self.player.browser_ready or self.player.status in ("ended", "stopped"):
            self._keep()

    def close(self) -> None:
        """Stop following the response (no audio is kept): it was given up."""
        self._unsubscribe()
        self.player.end()

    # Internals ---------------------------------------------------------------------------

    def _on_status(self, status: str) -> None:
        if status in ("ended", "stopped"):
            self._keep()

    def _keep(self) -> None:
        with self._lock:
            if self._final is None or self._kept:
                return
            self._kept = True
            bundle = self._final
        self._context.run(self._display.update, bundle, raw=True)
