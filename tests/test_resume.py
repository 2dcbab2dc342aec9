"""Resume from a recording and from a chat panel's exports (the real SDK against the
embedded server), and the saved turn's bounds and scrubbing (plain data)."""

from __future__ import annotations

import io
import json

import nbformat
import pytest
from PIL import Image

from rt_notebook.client.resume import resume
from rt_notebook.client.saved_turns import MAX_TURN_CHARS, bounded_record
from rt_notebook.client.session import Session
from rt_notebook.errors import ConfigurationError
from rt_notebook.protocol.conversation import Conversation
from rt_notebook.redaction import register_secret
from rt_notebook.render.export import transcript_cells, transcript_data
from rt_notebook.server import EmbeddedServer
from tests.test_reconnect import timing
from tests.timing import WAIT


def png_bytes(width=64, height=32):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server():
    with EmbeddedServer(pace=0.0) as server:
        yield server


def session_on(server, name="resume"):
    return Session(
        name=name,
        base_url=server.base_url,
        websocket_base_url=server.websocket_base_url,
        api_key=server.token,
        timing=timing(),
    ).connect()


def rows(items):
    return [
        (i.type, i.role, i.output if i.type == "function_call_output" else i.text) for i in items
    ]


@pytest.fixture
def talked(server, tmp_path):
    """A Session that asked with an image, ran a tool round and was recorded."""
    session = session_on(server, "talked")

    @session.tool
    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        return f"It is foggy in {city}."

    recording = tmp_path / "talk.jsonl"
    session.record(recording)
    session.ask("what is this?", images=[png_bytes()]).wait(WAIT)
    first = session.ask("What is the weather in Oslo?").wait(WAIT)
    tool_round = session.tools.round_for(str(first.id))
    assert tool_round is not None
    assert tool_round.wait(WAIT)
    assert tool_round.follow_up is not None
    tool_round.follow_up.wait(WAIT)
    session.stop_recording()
    yield session, recording
    session.close()


def server_rows(path):
    """What the server echoed on the last connection of a recording, in order."""
    received = [json.loads(line)["data"] for line in path.read_text().splitlines()]
    received = [e for e in received if isinstance(e, dict)]
    starts = [n for n, e in enumerate(received) if e.get("type") == "session.created"]
    mirror = Conversation()
    for event in received[starts[-1] :]:
        mirror.apply(event)
    return rows(mirror.items)


def test_resume_from_a_recording_keeps_the_images_and_the_server_holds_them(
    server, talked, tmp_path
):
    original, recording = talked
    resumed = session_on(server)
    echo = tmp_path / "resumed.jsonl"
    resumed.record(echo)
    try:
        report = resume(resumed, recording)
        assert report.restored == len(original.items) == 6
        assert report.skipped == ()
        assert rows(resumed.items) == rows(original.items)
        # The image came back with its bytes, from what was sent.
        assert resumed.items[0].images[0].sha256 == original.items[0].images[0].sha256
        resumed.stop_recording()
        assert server_rows(echo) == rows(original.items)
        # The next answer is one in the same conversation.
        assert resumed.ask("and now?").wait(WAIT).text == "Echo: and now?"
        assert rows(resumed.items)[:6] == rows(original.items)
    finally:
        resumed.close()


def test_resume_from_a_panel_json_export_names_the_image_it_cannot_have(server, talked, tmp_path):
    original, _ = talked
    export = tmp_path / "panel.json"
    export.write_text(json.dumps(transcript_data(original.items)))
    resumed = session_on(server)
    try:
        report = resume(resumed, export)
        assert report.restored == 6
        assert "image 64\u00d732 PNG, 1 KB not restored (its source was not saved)" in str(report)
        after = rows(resumed.items)
        missing = "[image 64\u00d732 PNG, 1 KB not restored: its source was not saved]"
        assert after[0][2] == f"what is this?\n{missing}"
        assert after[1:] == rows(original.items)[1:]
        assert [i.response_id is None for i in resumed.items] == [
            i.response_id is None for i in original.items
        ]
    finally:
        resumed.close()


def test_resume_from_a_panel_notebook_export(server, talked, tmp_path):
    original, _ = talked
    path = tmp_path / "panel.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=transcript_cells(original.items, "resume")), path)
    resumed = session_on(server)
    try:
        report = resume(resumed, path)
        assert report.restored == 6, str(report)
        assert rows(resumed.items)[1:] == rows(original.items)[1:]
    finally:
        resumed.close()


def test_refusals_are_one_line_and_change_nothing(server, talked, tmp_path):
    original, recording = talked
    with pytest.raises(ConfigurationError, match="no file"):
        resume(original, tmp_path / "missing.ipynb", mode="append")
    garbage = tmp_path / "garbage.json"
    garbage.write_text("[1, 2]")
    with pytest.raises(ConfigurationError, match="neither a notebook"):
        resume(original, garbage, mode="append")
    with pytest.raises(ConfigurationError, match="already holds 6 items"):
        resume(original, recording)
    with pytest.raises(ConfigurationError, match="mode must be"):
        resume(original, recording, mode="merge")
    with pytest.raises(ConfigurationError, match="did not say which notebook"):
        resume(original, None, mode="append", namespace={})
    assert len(original.items) == 6


def test_a_recording_with_garbage_lines_still_resumes(server, talked, tmp_path):
    _, recording = talked
    broken = tmp_path / "broken.jsonl"
    broken.write_text("not json\n" + recording.read_text() + '{"direction": "received"\n')
    resumed = session_on(server)
    try:
        report = resume(resumed, broken)
        assert report.restored == 6
        assert any("line 1" in note for note in report.notes)
    finally:
        resumed.close()


def test_a_saved_turn_is_scrubbed_and_bounded():
    secret = "sk-resume-test-secret-0123456789"
    register_secret(secret)
    long = "x" * (MAX_TURN_CHARS + 500)
    record = bounded_record(
        [
            {"id": "a", "type": "message", "role": "user", "text": f"key {secret}"},
            {"id": "b", "type": "function_call_output", "call_id": "c", "output": long},
            {"id": "c", "type": "message", "role": "assistant", "text": "after the bound"},
        ]
    )
    text = json.dumps(record)
    assert "sk-resume-test-secret" not in text
    assert record["items"][0]["text"] == "key ***"
    assert record["items"][1]["output"].endswith("characters not saved]")
    assert record["items"][2]["text"].startswith("\n[… 15 characters not saved]")
    assert "were not saved" in record["note"]
    assert len(text) < MAX_TURN_CHARS + 1000


def test_a_hostile_notebook_is_read_without_raising(server, tmp_path):
    """Odd shapes where the record should be: what can be restored is, the rest is skipped
    with a reason, and nothing is fetched or run."""

    def output(turn, **extra):
        return {
            "output_type": "display_data",
            "data": {"text/plain": "<img src=x onerror=alert(1)>"},
            "metadata": {"rt_notebook": {"turn": turn, **extra}},
        }

    good = {"id": "item_ok", "type": "message", "role": "user", "text": "kept"}
    cells = [
        "not a cell",
        {"cell_type": "code", "source": ["%%realtime\n", "hi"], "outputs": "nope"},
        {"cell_type": "code", "source": "x", "outputs": [output({"items": "nope"})]},
        {
            "cell_type": "code",
            "id": "odd",
            "source": "%%realtime\nhi",
            "outputs": [
                output(
                    {
                        "note": 5,
                        "items": [
                            good,
                            {"id": 7, "type": "message"},
                            {"id": "item_img", "type": "message", "images": 3, "text": None},
                            {
                                "id": "item_url",
                                "type": "message",
                                "role": "user",
                                "images": [{"label": "x", "source": "https://example.com/a.png"}],
                            },
                            {"id": "item_mcp", "type": "mcp_call"},
                            {
                                "id": "item_asst",
                                "type": "message",
                                "role": "assistant",
                                "text_in": "text/plain",
                            },
                        ],
                    },
                    session="hostile",
                    response_id={"a": 1},
                )
            ],
        },
    ]
    path = tmp_path / "hostile.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "cells": cells}))
    resumed = session_on(server, "hostile")
    try:
        report = resume(resumed, path)
    finally:
        resumed.close()
    text = str(report)
    assert report.restored == 4, text
    assert "cell 2: no saved answer" in text
    assert "cell 3: it talked to Session 'default', not 'hostile'" in text
    assert text.count("cell 4: an item that cannot be restored") == 2
    assert "x not restored (--image https://example.com/a.png: remote URLs are not fetched" in text
    by_id = {item.id: item for item in resumed.items}
    assert by_id["item_ok"].text == "kept"
    assert by_id["item_asst"].text == "<img src=x onerror=alert(1)>"  # text, never HTML
    assert "not restored" in by_id["item_url"].text
