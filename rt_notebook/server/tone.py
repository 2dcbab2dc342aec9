"""Sans-I/O synthetic speech stand-in of the embedded server: short PCM16 tones, one per
spoken word.

The offline server cannot speak, but audio clients need audio to play and to truncate.
Each word of a reply becomes one soft sine beep of :data:`BEEP_MS` milliseconds (24 kHz,
mono, signed 16-bit little-endian, base64 like ``response.output_audio.delta``). The pitch
walks a pentatonic scale with the word's position, so replies sound like a little tune and
are deterministic. Beeps are computed once per pitch and cached.
"""

from __future__ import annotations

import base64
import functools
import math
import struct

__all__ = ["BEEP_MS", "BYTES_PER_MS", "SAMPLE_RATE", "beep", "beep_bytes"]

SAMPLE_RATE = 24_000
BYTES_PER_MS = SAMPLE_RATE * 2 // 1000  # PCM16 mono
BEEP_MS = 50
_PITCHES_HZ = (523.25, 587.33, 659.25, 783.99, 880.00)  # C5 D5 E5 G5 A5
_AMPLITUDE = 0.2 * 32767


def beep(word_index: int) -> str:
    """Base64 PCM16 audio of the beep for the ``word_index``-th word of a reply."""
    return _encoded(word_index % len(_PITCHES_HZ))


def beep_bytes() -> int:
    """Size in bytes of one decoded beep."""
    return BEEP_MS * BYTES_PER_MS


@functools.cache
def _encoded(pitch_index: int) -> str:
    frequency = _PITCHES_HZ[pitch_index]
    count = SAMPLE_RATE * BEEP_MS // 1000
    samples = []
    for n in range(count):
        # A Hann window fades each beep in and out, so consecutive beeps do not click.
        window = 0.5 - 0.5 * math.cos(2 * math.pi * n / (count - 1))
        samples.append(
            round(_AMPLITUDE * window * math.sin(2 * math.pi * frequency * n / SAMPLE_RATE))
        )
    return base64.b64encode(struct.pack(f"<{count}h", *samples)).decode("ascii")
