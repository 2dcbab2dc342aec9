"""Widget: plays streamed PCM16 24 kHz mono audio in the browser (a small anywidget).

Audio goes to the browser as binary comm buffers (``send(msg, buffers)``), never base64
inside JSON. The browser plays it gap-free through an AudioWorklet on one AudioContext
per page and reports back, as synced traits, how many samples it scheduled and played.

Chunks go out at once, numbered: one sent before the browser had registered its listener
is lost, so when the browser says ``ready`` every chunk is sent again and the browser
drops those it has. (While a cell runs, ``ready`` may only be handled once it ends.)
Where the browser blocks sound until a user gesture, the
player says so and offers one click to enable it, for every player on the page.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

from ._esm import with_icons
from .subshells import keep_frontend_subshell

__all__ = ["AudioPlayer"]


class AudioPlayer(anywidget.AnyWidget):
    """Plays PCM16 24 kHz mono chunks as they come: :meth:`feed`, then :meth:`end`.

    Thread-safe: ``feed``/``end``/``stop`` may be called from any thread (the Session's
    I/O thread feeds it). The browser reports through the traits below.
    """

    _esm = with_icons("player.js")  # icons.js, then player.js
    _css = """
    .rt-notebook-player { display: flex; gap: 0.5em; align-items: center; font-size: 90%; }
    .rt-notebook-player button { font-size: inherit; }
    .rt-notebook-player .rt-notebook-icon { vertical-align: -0.125em; fill: currentColor; }
    """

    # anywidget gives initialize() and render() different model proxies: the browser finds
    # the playback state of this player's views by this id.
    _player_id = traitlets.Unicode().tag(sync=True)

    scheduled = traitlets.Int(0, help="Samples the browser handed to its audio worklet.").tag(
        sync=True
    )
    played = traitlets.Int(0, help="Samples the browser has played.").tag(sync=True)
    status = traitlets.Unicode(
        "waiting",
        help="waiting, blocked (no sound until a click), playing, ended, stopped, or dropped "
        "(blocked with no view left when sound was enabled: never played).",
    ).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(_player_id=uuid.uuid4().hex, **kwargs)
        self._lock = threading.Lock()
        self._chunks: list[bytes] = []  # every chunk fed, for a browser that (re)connects
        self._sent = 0  # chunks sent to the browser
        self._ready = False
        self._ready_event = threading.Event()
        self._ended = False
        self._end_sent = False
        self._stop_handlers: list[Callable[[int], None]] = []
        self._status_handlers: list[Callable[[str], None]] = []
        self.on_msg(self._handle_message)
        self.observe(self._report_status, names="status")
        # Messages from the browser must arrive while the cell that streams is running.
        keep_frontend_subshell(self.comm)

    # Public methods -----------------------------------------------------------------------

    @property
    def received(self) -> int:
        """Samples fed so far."""
        with self._lock:
            return sum(len(chunk) for chunk in self._chunks) // 2

    @property
    def browser_ready(self) -> bool:
        """Whether a browser has this player's front end running."""
        return self._ready

    def wait_ready(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a browser to run this player; say if one does."""
        return self._ready_event.wait(timeout)

    def feed(self, pcm: bytes) -> None:
        """Queue ``pcm`` (PCM16 24 kHz mono, whole samples) for playback."""
        if not pcm:
            return
        with self._lock:
            self._chunks.append(bytes(pcm))
            self._flush()

    def end(self) -> None:
        """No more audio will come: the browser reports ``ended`` once it has played all."""
        with self._lock:
            self._ended = True
            self._flush()

    def stop(self) -> None:
        """Ask the browser to stop playing now (it then reports the played position)."""
        self.send({"event": "stop"})

    def on_stop(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(samples_played)`` when playback is stopped before the end."""
        self._stop_handlers.append(callback)

    def on_status(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(status)`` whenever the browser reports a new status."""
        self._status_handlers.append(callback)

    # Internals ---------------------------------------------------------------------------

    def _flush(self) -> None:
        # Under the lock: chunk order on the wire is feed order; ``seq`` lets the browser
        # put a resent chunk in place and drop one it already has.
        while self._sent < len(self._chunks):
            self.send({"event": "pcm", "seq": self._sent}, [self._chunks[self._sent]])
            self._sent += 1
        if self._ended and not self._end_sent:
            self.send({"event": "end", "count": len(self._chunks)})
            self._end_sent = True

    def _handle_message(self, _: Any, content: Any, buffers: Any) -> None:
        # Runs on the kernel thread that delivers comm messages: keep it quick.
        if not isinstance(content, dict):
            return
        event = content.get("event")
        if event == "ready":
            with self._lock:
                # Once per page (views share the model): a second ``ready`` is a reloaded
                # page whose model starts empty, so it gets everything again.
                self._ready = True
                self._ready_event.set()
                self._sent = 0
                self._end_sent = False
                self._flush()
        elif event == "stopped":
            played = content.get("played")
            if type(played) is int and played >= 0:
                for handler in self._stop_handlers:
                    handler(played)

    def _report_status(self, change: dict[str, Any]) -> None:
        for handler in self._status_handlers:
            handler(str(change["new"]))
