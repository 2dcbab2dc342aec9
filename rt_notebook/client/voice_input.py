"""Client layer, a Session's input-audio side: microphone audio appended, committed, cleared;
turn detection and input transcription; the responses the server starts by itself.

One of the parts a :class:`~rt_notebook.client.session.Session` is composed of; the decisions live
in the client core's
:mod:`~rt_notebook.protocol.voice`. Every method is thread-safe: a microphone widget calls
:meth:`VoiceInput.append_audio` from a comm (or kernel subshell) thread while a cell runs.

Audio is PCM16, 24 kHz, mono (48,000 bytes a second), the service's default input format.
While the Session is not ready (connecting, or reconnecting after a drop) appended audio is
**dropped**, not buffered, and counted in :attr:`VoiceInput.input_audio_dropped`: the
service's input buffer belongs to one connection, so what was appended before the drop is
gone with it, and sending the rest of an utterance to the new connection would commit a
fragment. A commit made while not ready fails with
:class:`~rt_notebook.errors.RealtimeConnectionError`.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..protocol import payloads
from ..protocol.events import Dialect
from ..protocol.options import ResponseOptions, Unpack, check_response_options
from ..protocol.turns import Request
from .responses import ResponseHandle

if TYPE_CHECKING:
    from .driver import Driver
    from .link import Link
    from .responding import Responder

__all__ = ["TURN_DETECTION_MODES", "VoiceInput"]

TURN_DETECTION_MODES = ("server_vad", "semantic_vad", None)


class VoiceInput:
    """Appends, commits and clears input audio and sets turn detection and input
    transcription through ``link``; ``responder`` makes the turn a commit answers."""

    def __init__(self, link: Link, driver: Driver, responder: Responder) -> None:
        self._link = link
        self._driver = driver
        self._responder = responder
        # Keeps each append's chunks together and guards the odd byte between calls.
        self._audio_lock = threading.Lock()
        self._audio_carry = b""  # half a sample left from the last append

    @property
    def dialect(self) -> Dialect:
        return self._link.endpoint.dialect

    # Appending, committing, clearing ------------------------------------------------

    def append_audio(self, pcm: bytes) -> None:
        """Send ``pcm`` (PCM16, 24 kHz, mono) as ``input_audio_buffer.append``; returns at
        once (fire-and-forget), from any thread, also while a cell runs.

        Large buffers are split so each event stays under the service's 15 MiB limit; the
        chunks of one call are sent together, in order, even when other threads append at
        the same time. An odd byte count keeps the last byte (half a sample) for the next
        call. While the Session is not ready the audio is dropped and counted in
        :attr:`input_audio_dropped` (see the module docstring).
        """
        if not isinstance(pcm, bytes | bytearray | memoryview):
            raise TypeError(f"append_audio takes PCM16 bytes, not {type(pcm).__name__}")
        with self._audio_lock:
            data = self._audio_carry + bytes(pcm)
            self._audio_carry = b""
            if len(data) % 2:
                self._audio_carry, data = data[-1:], data[:-1]
            if not data:
                return
            events = payloads.append_events(data)
            # Handed to the I/O thread under the lock: calls keep the order they took it in.
            self._driver.append_audio(events, len(data))

    @property
    def input_audio_dropped(self) -> int:
        """PCM bytes given to :meth:`append_audio` while not ready, never sent."""
        return self._driver.audio_dropped()

    def clear_audio(self) -> None:
        """Send ``input_audio_buffer.clear`` (and forget a pending half sample)."""
        with self._audio_lock:
            self._audio_carry = b""
            self._driver.clear_audio()

    def commit_audio(
        self, *, respond: bool = True, timeout: float = 30.0, **options: Unpack[ResponseOptions]
    ) -> ResponseHandle | None:
        """Commit the audio appended so far; with ``respond``, ask for the answer as a
        turn and return its handle (see ``Session.commit_audio``)."""
        self._link.refuse_on_io_thread("commit_audio")
        if "items" in options:
            raise ConfigurationError("commit_audio's turn has the committed item only")
        check_response_options(options, "commit_audio")
        if not respond and options:
            raise ConfigurationError(
                f"commit_audio(respond=False) takes no response settings: {sorted(options)}"
            )
        self._link.ensure_connected()
        request = Request("commit", {"type": "input_audio_buffer.commit"})
        handle: ResponseHandle | None = None
        if respond:
            handle = self._responder.new_turn(options, committing=request)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        request.owner = future
        with self._audio_lock:  # after every append that came before this call
            self._driver.commit_audio(request, handle).result()
        try:
            future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(
                f"no acknowledgement of input_audio_buffer.commit within {timeout} s"
            ) from None
        return handle

    # Session settings -----------------------------------------------------------------

    def set_turn_detection(
        self, mode: str | None, *, timeout: float = 30.0, **params: Any
    ) -> dict[str, Any]:
        """:meth:`Session.set_turn_detection` (documented there)."""
        if mode not in TURN_DETECTION_MODES:
            raise ConfigurationError(
                f"turn detection must be 'server_vad', 'semantic_vad' or None, not {mode!r}"
            )
        try:
            body = payloads.turn_detection_settings(self.dialect, mode, params)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        return self._update(body, timeout)

    def set_input_transcription(
        self, model: str | None, *, timeout: float = 30.0
    ) -> dict[str, Any]:
        """Transcribe the user's audio with ``model`` (e.g. ``"whisper-1"``,
        ``"gpt-4o-transcribe"``; ``None``: off). The transcript arrives as
        ``conversation.item.input_audio_transcription.completed`` and becomes the user
        item's text. Kept for reconnects; returns the session the server confirms."""
        try:
            body = payloads.transcription_settings(self.dialect, model)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        return self._update(body, timeout)

    def _update(self, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        from ..protocol.setting_checks import SettingsCheckError, check_session

        try:  # values too, against the SDK's types (eagerness, threshold, ...)
            check_session(body, self.dialect)
        except SettingsCheckError as exc:
            raise ConfigurationError(str(exc)) from None
        request = Request("update", {"type": "session.update", "session": body})
        result = self._link.wait(request, timeout)
        return dict(result)

    # Responses the server starts --------------------------------------------------------

    def on_server_response(self, callback: Callable[[ResponseHandle], None]) -> Callable[[], None]:
        """Call ``callback(handle)`` for each response the server starts by itself (server
        VAD with ``create_response``), on the I/O thread, before any of its deltas: stream
        it (``for delta in handle``, :meth:`subscribe_audio`), ``handle.cancel()`` it or
        ``handle.truncate(ms)`` it like a turn of your own. Such responses never take a
        queued turn's place. Returns a function that unsubscribes."""
        driver = self._driver
        with driver.lock:
            driver.server_response_callbacks = [*driver.server_response_callbacks, callback]

        def unsubscribe() -> None:
            with driver.lock:
                driver.server_response_callbacks = [
                    c for c in driver.server_response_callbacks if c is not callback
                ]

        return unsubscribe
