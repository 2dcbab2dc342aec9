"""Sans-I/O voice activity detection by energy, the embedded server's stand-in for server VAD.

:class:`EnergyVad` reads the input audio stream (PCM16 24 kHz mono, as appended) in frames
of :data:`FRAME_MS` and says where speech starts and stops, in milliseconds from the start
of all audio appended during the session (the service's ``audio_start_ms`` /
``audio_end_ms``). A frame is speech when its RMS reaches the threshold; ``threshold``
(0-1, the service's setting) maps linearly in decibels of full scale:

    threshold t  ->  RMS >= -70 + 60 * t  dBFS     (0.5 -> -40 dBFS, 0 -> -70, 1 -> -10)

Speech starts at the first speech frame (reported ``prefix_padding_ms`` earlier, never
before 0); it stops once ``silence_duration_ms`` of frames in a row are not speech, and is
reported as ending where the last speech frame ended. ``semantic_vad`` is treated the same
way offline (with the server_vad defaults), since no model judges the words.

``idle_timeout_ms`` (``server_vad`` only, as on the service): once that much audio has
been appended with no speech, counted from where the last answer finished playing (the
server says :meth:`EnergyVad.hold` while a response runs and
:meth:`EnergyVad.idle_since` when it is done), from the last speech, or from the first
audio, an :class:`IdleTimeout` marks the silent stretch; the count then starts again.
Time here is audio time: the microphone streams in real time, so it is the user's pause.
"""

from __future__ import annotations

import math
import operator
import sys
from array import array
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FRAME_BYTES",
    "FRAME_MS",
    "EnergyVad",
    "IdleTimeout",
    "SpeechStarted",
    "SpeechStopped",
    "position_ms",
    "threshold_rms",
]

BYTES_PER_MS = 48  # PCM16, 24 kHz, mono
FRAME_MS = 20
FRAME_BYTES = FRAME_MS * BYTES_PER_MS
_BIG_ENDIAN = sys.byteorder == "big"
DEFAULTS = {"threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}


def position_ms(position: int) -> int:
    """Milliseconds of PCM16 24 kHz mono in ``position`` bytes."""
    return position // BYTES_PER_MS


def threshold_rms(threshold: float) -> float:
    """The RMS (in PCM16 units) a frame needs to count as speech at ``threshold``."""
    t = min(1.0, max(0.0, float(threshold)))
    return float(32768 * 10 ** ((-70 + 60 * t) / 20))


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    audio_start_ms: int  # with the prefix padding
    speech_ms: int  # where the first speech frame began (no padding)


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    audio_end_ms: int  # where the last speech frame ended
    detected_ms: int  # where the silence reached silence_duration_ms


@dataclass(frozen=True, slots=True)
class IdleTimeout:
    audio_start_ms: int  # where the idle time began (the last answer's end, speech's end)
    audio_end_ms: int  # where it reached idle_timeout_ms


class EnergyVad:
    """Frames in, speech starts and stops out (see the module docstring)."""

    def __init__(self, settings: dict[str, Any]) -> None:
        def setting(name: str) -> float:
            value = settings.get(name)
            return float(DEFAULTS[name] if value is None else value)

        self.rms = threshold_rms(setting("threshold"))
        self.prefix_ms = int(setting("prefix_padding_ms"))
        self.silence_ms = int(setting("silence_duration_ms"))
        self.position = 0  # bytes of the stream read, in whole frames
        self.speaking = False
        self._last_speech_end = 0  # ms
        self._pending = bytearray()  # less than a frame, waiting for more
        idle = settings.get("idle_timeout_ms")
        wanted = settings.get("type", "server_vad") == "server_vad"
        self.idle_ms: int | None = None
        if wanted and isinstance(idle, int | float) and not isinstance(idle, bool) and idle > 0:
            self.idle_ms = int(idle)
        self._idle_from: int | None = None  # ms; None: from the first frame read
        self.holding = False  # a response runs: no idle timeout meanwhile

    def hold(self) -> None:
        """A response started: the user is not idle while it runs."""
        self.holding = True

    def idle_since(self, ms: int) -> None:
        """The last response finished playing at ``ms`` (input audio time): count from there."""
        self.holding = False
        self._idle_from = ms

    def feed(self, pcm: bytes) -> list[SpeechStarted | SpeechStopped | IdleTimeout]:
        """Read appended audio; return the starts, stops and idle timeouts it completes."""
        self._pending += pcm
        out: list[SpeechStarted | SpeechStopped | IdleTimeout] = []
        usable = len(self._pending) - len(self._pending) % FRAME_BYTES
        for offset in range(0, usable, FRAME_BYTES):
            frame = array("h", bytes(self._pending[offset : offset + FRAME_BYTES]))
            if _BIG_ENDIAN:
                frame.byteswap()  # the wire is little-endian
            start_ms = self.position // BYTES_PER_MS
            self.position += FRAME_BYTES
            end_ms = start_ms + FRAME_MS
            if self._idle_from is None:
                self._idle_from = start_ms
            loud = math.sqrt(sum(map(operator.mul, frame, frame)) / len(frame)) >= self.rms
            if loud:
                if not self.speaking:
                    self.speaking = True
                    out.append(SpeechStarted(max(0, start_ms - self.prefix_ms), start_ms))
                self._last_speech_end = end_ms
                self._idle_from = end_ms
            elif self.speaking and end_ms - self._last_speech_end >= self.silence_ms:
                self.speaking = False
                out.append(SpeechStopped(self._last_speech_end, end_ms))
            elif (
                self.idle_ms is not None
                and not self.speaking
                and not self.holding
                and end_ms - self._idle_from >= self.idle_ms
            ):
                out.append(IdleTimeout(self._idle_from, end_ms))
                self._idle_from = end_ms
        del self._pending[:usable]
        return out

    def reset(self) -> None:
        """The buffer was committed or cleared by the client: speech in progress is
        forgotten (the part of a frame read so far still counts toward the position)."""
        self.position += len(self._pending)
        self._pending.clear()
        self.speaking = False
