"""Client layer, audio helpers (pure, no I/O beyond the file asked for): PCM16 24 kHz mono
as WAV.

Realtime output audio is raw PCM16, 24 kHz, mono, little-endian. These helpers wrap it in
a RIFF/WAV container with the standard library's :mod:`wave` module, so answers can be
saved, replayed or embedded (``IPython.display.Audio`` reads the same bytes).
"""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import IO

__all__ = ["SAMPLE_RATE", "pcm_seconds", "wav_bytes", "wav_pcm", "write_wav"]

SAMPLE_RATE = 24_000
_SAMPLE_WIDTH = 2  # bytes: PCM16


def pcm_seconds(pcm: bytes) -> float:
    """How long ``pcm`` (PCM16 24 kHz mono) plays, in seconds."""
    return len(pcm) / (_SAMPLE_WIDTH * SAMPLE_RATE)


def wav_bytes(pcm: bytes, sample_rate: int = SAMPLE_RATE) -> bytes:
    """``pcm`` (PCM16 mono) as the bytes of a WAV file."""
    buffer = io.BytesIO()
    _write(buffer, pcm, sample_rate)
    return buffer.getvalue()


def write_wav(path: str | Path, pcm: bytes, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write ``pcm`` (PCM16 mono) to ``path`` as a WAV file; return the path."""
    path = Path(path)
    with path.open("wb") as file:
        _write(file, pcm, sample_rate)
    return path


def wav_pcm(data: bytes) -> tuple[bytes, int]:
    """The PCM frames and sample rate of a mono PCM16 WAV file's bytes."""
    with wave.open(io.BytesIO(data), "rb") as reader:
        if reader.getnchannels() != 1 or reader.getsampwidth() != _SAMPLE_WIDTH:
            raise ValueError("not a mono PCM16 WAV file")
        return reader.readframes(reader.getnframes()), reader.getframerate()


def _write(file: IO[bytes], pcm: bytes, sample_rate: int) -> None:
    with wave.open(file, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(_SAMPLE_WIDTH)
        writer.setframerate(sample_rate)
        writer.writeframes(pcm)
