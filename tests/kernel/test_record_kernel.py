"""``%realtime record FILE`` as a fresh kernel's first rt_notebook command: it connects the
default Session (as ``%%realtime`` would) and records from then on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.timing import PROCESS_WAIT

from .harness import Kernel

pytestmark = pytest.mark.kernel


def test_record_before_any_session_records_the_next_turn(tmp_path: Path) -> None:
    recording = tmp_path / "first.jsonl"
    kernel = Kernel()
    try:
        loaded = kernel.execute("%load_ext rt_notebook\nimport rt_notebook")
        assert loaded.status == "ok", loaded.error_text()
        start = kernel.execute(f"%realtime record {recording}")
        assert start.status == "ok", start.shown_error()
        assert start.of_type("error") == []
        answer = kernel.execute("%%realtime\nRecorded from the start")
        assert answer.status == "ok", answer.shown_error()
        stop = kernel.execute("%realtime record --stop")
        assert stop.status == "ok", stop.shown_error()
    finally:
        kernel.shutdown()
    records = [json.loads(line) for line in recording.read_text().splitlines()]
    sent = [r["data"]["type"] for r in records if r["direction"] == "sent"]
    assert "response.create" in sent
    transcript = subprocess.run(
        [sys.executable, "-m", "rt_notebook", "transcript", str(recording)],
        capture_output=True,
        check=True,
        text=True,
        timeout=PROCESS_WAIT,
    ).stdout
    assert "Recorded from the start" in transcript
