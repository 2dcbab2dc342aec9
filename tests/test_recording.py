"""Recordings: every frame one valid JSON line, keys scrubbed unless raw, and a transcript
tool that skips what it cannot read instead of refusing the file."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest

from rt_notebook.client.recording import read_line, record_line
from rt_notebook.frontends.transcript import load_recording, load_timelines
from rt_notebook.redaction import register_secret
from tests.timing import PROCESS_WAIT, WAIT

KEY = "sk-proj-RECORDING0123456789abcdefghij"


def _strict(line: bytes) -> dict:
    """Parse a recorded line as strict JSON (no NaN, valid UTF-8)."""

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    record = json.loads(line.decode("utf-8"), parse_constant=refuse)
    assert isinstance(record, dict)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    return record


HOSTILE_FRAMES = [
    '{"type": "response.output_text.delta", "delta": "cut',  # a cut frame
    "garbage \x00\x01 not json",
    "[" * 20_000 + "]" * 20_000,  # nested past the parser
    '{"n": ' + "9" * 5_000 + "}",  # past Python's int digits limit
    '{"n": NaN}',
    '{"type": "x", "text": "lone \\ud800 escaped"}',
    "lone \ud800 surrogate, raw",
    b"\xff\xfe\x00binary",
    b'{"type": "response.done"',  # cut bytes
    b"",
    "",
    "12",
]


@pytest.mark.parametrize("frame", HOSTILE_FRAMES, ids=range(len(HOSTILE_FRAMES)))
def test_every_frame_is_one_valid_json_line(frame):
    record = _strict(record_line("received", frame, "t1", 3.25))
    assert record["direction"] == "received"
    assert record["turn"] == "t1"
    assert record["at"] == 3.25
    assert read_line(json.dumps(record)) is not None  # a frame or a note, never a raise


def test_an_undecodable_frame_is_kept_as_base64_with_a_flag():
    record = _strict(record_line("received", b"\xff\xfe\x00binary", None, 1.0))
    assert record["binary"] is True
    assert base64.b64decode(record["base64"]) == b"\xff\xfe\x00binary"
    assert "turn" not in record
    assert read_line(json.dumps(record)) == "a binary frame (received)"


def test_a_cut_frame_is_kept_as_text_with_a_flag():
    cut = '{"type": "response.output_text.delta", "delta": "cu'
    record = _strict(record_line("received", cut, "t2", 1.0))
    assert record["not_json"] is True
    assert record["text"] == cut


def test_a_good_frame_is_stored_as_its_event():
    event = {"type": "response.output_text.delta", "delta": "hi"}
    record = _strict(record_line("sent", json.dumps(event), None, 1.0))
    assert record["data"] == event
    frame = read_line(json.dumps(record))
    assert not isinstance(frame, str)
    assert frame.event == event
    assert frame.direction == "sent"


def test_registered_keys_are_scrubbed_unless_raw():
    register_secret(KEY)
    text = json.dumps({"type": "error", "error": {"message": f"bad key {KEY}", "k": KEY}})
    for frame in (text, text.encode(), b"\xff" + KEY.encode(), f"cut {KEY}"):
        assert KEY.encode() not in record_line("received", frame, None, 1.0)
        assert KEY.encode() in record_line("received", frame, None, 1.0, raw=True) or (
            b"base64" in record_line("received", frame, None, 1.0, raw=True)
        )
    raw_binary = _strict(record_line("received", b"\xff" + KEY.encode(), None, 1.0, raw=True))
    assert KEY.encode() in base64.b64decode(raw_binary["base64"])
    scrubbed = _strict(record_line("received", b"\xff" + KEY.encode(), None, 1.0))
    assert base64.b64decode(scrubbed["base64"]) == b"\xff***"


def _recording_with_trouble() -> list[str]:
    good = [
        {"type": "conversation.item.created", "item": _message("m1", "user", "question")},
        {
            "type": "conversation.item.created",
            "previous_item_id": "m1",
            "item": _message("m2", "assistant", "answer"),
        },
    ]
    lines = [record_line("received", json.dumps(event), "t1", 1.0).decode() for event in good]
    lines.insert(1, record_line("received", b"\xff\xfebinary", "t1", 1.1).decode())
    lines.insert(1, record_line("received", '{"type": "conversation.item', "t1", 1.2).decode())
    lines.insert(1, '{"direction": "received", "at": 1.3, "data": {"type": "x"')  # cut line
    lines.insert(1, "garbage\n")
    lines.insert(1, '{"direction": "received", "at": 1e999, "data": {"type": 5}}')
    lines.insert(1, '{"direction": "received", "data": {"type": "conversation.item.created"}}')
    return lines


def _message(item_id: str, role: str, text: str) -> dict:
    kind = "input_text" if role == "user" else "output_text"
    return {
        "id": item_id,
        "type": "message",
        "role": role,
        "status": "completed",
        "content": [{"type": kind, "text": text}],
    }


def test_the_transcript_skips_unreadable_lines_with_a_note():
    notes: list[str] = []
    conversation = load_recording(_recording_with_trouble(), notes)
    assert [item.text for item in conversation.items] == ["question", "answer"]
    assert len(notes) == 5, notes
    assert all(note.startswith("line ") and "skipped" in note for note in notes)
    timelines = load_timelines(_recording_with_trouble(), [])
    assert list(timelines) == ["t1"]


def test_the_command_line_rebuilds_a_file_with_bad_lines(tmp_path):
    path = tmp_path / "troubled.jsonl"
    data = "".join(
        line if line.endswith("\n") else line + "\n" for line in _recording_with_trouble()
    )
    path.write_bytes(data.encode() + b"\xff\xfe not utf-8 at all\n")
    for extra in ([], ["--format", "json"], ["--timeline"]):
        done = subprocess.run(
            [sys.executable, "-m", "rt_notebook", "transcript", str(path), *extra],
            capture_output=True,
            text=True,
            timeout=PROCESS_WAIT,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "answer" in done.stdout or "conversation.item.created" in done.stdout
        assert done.stderr.count("note: line ") == 6, done.stderr


def test_a_session_records_hostile_frames_as_valid_lines_without_its_key(session, tmp_path):
    path = tmp_path / "session.jsonl"
    session.record(path)
    secret = session._driver.transport._client.api_key
    session.ask("before").wait(WAIT)
    session._on_raw(b"\xff\xfe\x00 a binary frame")
    session._on_raw('{"type": "response.output_text.delta", "delta": "cu')
    session._on_raw(json.dumps({"type": "error", "error": {"message": f"bad key {secret}"}}))
    session.ask("after").wait(WAIT)
    session.stop_recording()
    raw = path.read_bytes()
    assert secret.encode() not in raw
    lines = raw.splitlines(keepends=True)
    records = [_strict(line) for line in lines]
    assert any(record.get("binary") for record in records)
    assert any(record.get("not_json") for record in records)
    rebuilt = load_recording(raw.decode().splitlines(), notes := [])
    assert [i.text for i in rebuilt.items][-1] == "Echo: after"
    assert len(notes) == 2


def test_a_raw_recording_keeps_the_frames_and_warns(session, tmp_path, monkeypatch):
    from rt_notebook.client import reading as _reading

    warned: list[str] = []  # (pytest.warns would reset the filters the whole run relies on)
    monkeypatch.setattr(_reading.warnings, "warn", lambda message, *_, **__: warned.append(message))
    path = tmp_path / "raw.jsonl"
    secret = session._driver.transport._client.api_key
    session.record(path, raw=True)
    try:
        session._on_raw(json.dumps({"type": "error", "error": {"message": f"bad key {secret}"}}))
    finally:
        session.stop_recording()
    assert secret in path.read_text()
    assert len(warned) == 1
    assert "raw frames" in warned[0]
    session.record(tmp_path / "scrubbed.jsonl")  # no warning without raw
    session.stop_recording()
    assert len(warned) == 1


def test_a_file_of_garbage_is_read_with_the_notes_counted(tmp_path):
    path = tmp_path / "garbage.jsonl"
    path.write_bytes(b"\x00\xff garbage\n" * 500)
    done = subprocess.run(
        [sys.executable, "-m", "rt_notebook", "transcript", str(path)],
        capture_output=True,
        text=True,
        timeout=PROCESS_WAIT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("note: line ") == 50
    assert "note: 450 more lines skipped" in done.stderr
