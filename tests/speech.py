"""Test helper: real speech as PCM16 24 kHz mono, made with espeak-ng and resampled by sox."""

from __future__ import annotations

import shutil
import subprocess
from array import array
from pathlib import Path

import pytest

__all__ = ["make_speech", "silence"]


def make_speech(folder: Path, text: str = "hello there") -> tuple[bytes, int, int]:
    """PCM of ``text`` spoken, and where its sound starts and ends (ms, above 1% of full
    scale). Skips the test when espeak-ng or sox is missing."""
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("espeak-ng and sox are needed to make speech")
    wav, raw = folder / "speech.wav", folder / "speech.pcm"
    subprocess.run(["espeak-ng", "-w", str(wav), text], check=True)
    resample = ["-r", "24000", "-c", "1", "-b", "16", "-e", "signed-integer", "-t", "raw"]
    subprocess.run(["sox", str(wav), *resample, str(raw)], check=True)
    pcm = raw.read_bytes()
    loud = [i for i, s in enumerate(array("h", pcm)) if abs(s) > 328]
    return pcm, loud[0] // 24, loud[-1] // 24


def silence(ms: int) -> bytes:
    """``ms`` milliseconds of digital silence."""
    return b"\x00\x00" * (ms * 24)
