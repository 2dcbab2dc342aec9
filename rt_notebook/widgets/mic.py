"""Widget: the microphone, capturing PCM16 24 kHz mono in the browser (a small anywidget).

The browser opens the microphone with ``getUserMedia``, resamples it to 24 kHz PCM16 mono
in an AudioWorklet and sends ~100 ms chunks as binary comm buffers (never base64 inside
JSON). A hundred-millisecond chunk is the batching: ten messages a second, each answered
by the kernel with two status messages, stays far below Jupyter's message rate limits in
both directions (the kernel writes back only the rare ``note``).

Two ways to talk: *push-to-talk* (hold the button: ``start`` on press, the chunks, then
``end`` on release) and *hands-free* (a toggle: chunks flow until it is switched off; the
server decides where turns end). What is said reaches the handlers registered here; a
:class:`~rt_notebook.frontends.voice_control.VoiceController` forwards it to a Session.

Messages from the browser arrive on the thread that delivers comm messages: in
JupyterLab 4.6 a kernel subshell, so the microphone keeps flowing while a cell runs.
Where the frontend or kernel has no subshells (older JupyterLab, Notebook < 7.5,
ipykernel < 7) they queue behind the running cell and are handled, in order, when it ends.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

from ..protocol.numbers import seconds_of
from ._esm import with_icons
from .subshells import keep_frontend_subshell

__all__ = ["Microphone"]


class Microphone(anywidget.AnyWidget):
    """Hold-to-talk and hands-free buttons; reports what the user says as PCM chunks.

    Register handlers with :meth:`on_start`, :meth:`on_audio`, :meth:`on_end` (each
    returns a function that removes it); they run on the kernel thread that delivers comm
    messages and must be quick. Thread-safe.
    """

    _esm = with_icons("mic.js")  # icons.js, then mic.js
    _css = """
    .rt-notebook-mic { display: flex; gap: 0.5em; align-items: center; font-size: 90%;
      flex-wrap: wrap; }
    .rt-notebook-mic button { font-size: inherit; user-select: none; touch-action: none; }
    .rt-notebook-mic button[aria-pressed="true"] { background: var(--jp-brand-color3, #cde); }
    .rt-notebook-mic .rt-notebook-icon { vertical-align: -0.125em; fill: currentColor; }
    .rt-notebook-mic-error { color: var(--jp-error-color1, #c00); }
    .rt-notebook-mic-note { color: var(--jp-ui-font-color2, #666); }
    .rt-notebook-voice-turn { margin: 0.4em 0; gap: 0.2em; }
    .rt-notebook-voice-turn .rt-chat-bubble { padding: 0.2em 0.6em; border-radius: 6px;
      background: var(--jp-layout-color2, #f3f3f3); }
    .rt-notebook-voice-turn .rt-chat-meta { font-size: 85%; color: var(--jp-ui-font-color2, #666); }
    .rt-notebook-voice-turn .rt-chat-body p { margin: 0.2em 0; }
    """

    # anywidget gives initialize() and render() different model proxies: the views find
    # the capture state of their model by this id.
    _mic_id = traitlets.Unicode().tag(sync=True)
    status = traitlets.Unicode(
        "idle", help="What the browser reports: idle, opening, recording or error."
    ).tag(sync=True)
    error = traitlets.Unicode("", help="Why the microphone cannot be used (from the browser).").tag(
        sync=True
    )
    note = traitlets.Unicode("", help="A line the kernel shows next to the buttons.").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(_mic_id=uuid.uuid4().hex, **kwargs)
        self._lock = threading.Lock()
        self._start_handlers: list[Callable[[str], None]] = []
        self._audio_handlers: list[Callable[[bytes], None]] = []
        self._end_handlers: list[Callable[[float], None]] = []
        self._next = 0  # the sequence number of the next chunk expected
        self.received = 0  # PCM bytes received since the page loaded
        self.gaps = 0  # chunks that never came (a reloaded page restarts the numbering)
        self.on_msg(self._handle_message)
        keep_frontend_subshell(self.comm)

    def on_start(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(mode)`` when capture starts (``"push"`` or ``"handsfree"``)."""
        return _add(self._start_handlers, callback)

    def on_audio(self, callback: Callable[[bytes], None]) -> Callable[[], None]:
        """Call ``callback(pcm)`` with each chunk (PCM16 24 kHz mono), in order."""
        return _add(self._audio_handlers, callback)

    def on_end(self, callback: Callable[[float], None]) -> Callable[[], None]:
        """Call ``callback(seconds)`` when capture stops (after its last chunk), with the
        duration the browser captured."""
        return _add(self._end_handlers, callback)

    def stop(self) -> None:
        """Ask the browser to stop capturing (hands-free off, push-to-talk released)."""
        self.send({"event": "stop"})

    def _handle_message(self, _: Any, content: Any, buffers: Any) -> None:
        # On the kernel thread that delivers comm messages: keep it quick.
        if not isinstance(content, dict):
            return
        event = content.get("event")
        seq = content.get("seq")
        if event == "audio" and type(seq) is int and buffers:
            pcm = bytes(buffers[0])
            if len(pcm) % 2:
                return  # not whole PCM16 samples: not from our front end
            with self._lock:
                if seq < self._next and seq != 0:
                    return  # a duplicate
                if seq > self._next:
                    self.gaps += seq - self._next
                self._next = seq + 1
                self.received += len(pcm)
            for handler in tuple(self._audio_handlers):
                handler(pcm)
        elif event == "start" and content.get("mode") in ("push", "handsfree"):
            for start in tuple(self._start_handlers):
                start(str(content["mode"]))
        elif event == "end":
            # From the page: checked here (10**400 samples, NaN rates: 0 seconds).
            seconds = seconds_of(content.get("captured"), content.get("rate"))
            for end in tuple(self._end_handlers):
                end(seconds)


def _add(handlers: list[Any], callback: Any) -> Callable[[], None]:
    # The comm thread iterates over a copy (tuple) while another thread may change it.
    handlers.append(callback)

    def remove() -> None:
        if callback in handlers:
            handlers.remove(callback)

    return remove
