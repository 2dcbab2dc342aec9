"""Hostile numbers from the server and the page, in a real kernel: nothing reaches IOPub as
a traceback, and what they feed (the status line, the microphone, the inspector) goes on."""

from __future__ import annotations

import json
import queue

import pytest

from tests.timing import within

from .harness import Kernel

pytestmark = pytest.mark.kernel

SETUP = """
%load_ext rt_notebook
import json, time
import rt_notebook
from rt_notebook.server import EmbeddedServer
from rt_notebook.widgets import events
from rt_notebook.widgets.mic import Microphone
server = EmbeddedServer(pace=0)
server.start()
session = rt_notebook.connect(
    base_url=server.base_url, websocket_base_url=server.websocket_base_url, api_key=server.token
)
def wait_for(condition, limit=60):
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.01)
"""


@pytest.fixture(scope="module")
def kernel():
    kernel = Kernel()
    setup = kernel.execute(SETUP)
    assert setup.status == "ok", setup.error_text()
    yield kernel
    kernel.shutdown()


def _send_comm(kernel: Kernel, comm_id: str, content: dict) -> None:
    message = kernel.client.session.msg(
        "comm_msg", {"comm_id": comm_id, "data": {"method": "custom", "content": content}}
    )
    kernel.client.shell_channel.send(message)


def _tracebacks(messages: list[dict]) -> list[str]:
    """Every error or traceback-looking stream the kernel published."""
    found = []
    for message in messages:
        content = message["content"]
        if message["msg_type"] == "error":
            found.append(f"{content['ename']}: {content['evalue']}")
        if message["msg_type"] == "stream" and "Traceback" in content.get("text", ""):
            found.append(content["text"])
    return found


def _drain(kernel: Kernel) -> list[dict]:
    messages = []
    while True:
        try:
            messages.append(kernel.client.get_iopub_msg(timeout=0.2))
        except queue.Empty:
            return messages


def _run_collecting_all(kernel: Kernel, code: str) -> list[dict]:
    """Run ``code``; every IOPub message (any parent: a comm handler's too) until it is done."""
    msg_id = kernel.client.execute(code)
    seen = []
    while True:
        message = kernel.client.get_iopub_msg(timeout=within(60))
        seen.append(message)
        done = message["msg_type"] == "status" and message["content"]["execution_state"] == "idle"
        if done and message["parent_header"].get("msg_id") == msg_id:
            return seen


def test_a_non_numeric_usage_does_not_break_the_status(kernel):
    hostile = {
        "type": "response.done",
        "response": {
            "id": "resp_hostile",
            "status": "completed",
            "output": [],
            "usage": {
                "total_tokens": "lots",
                "input_tokens": 10**400,
                "output_tokens": -5,
                "input_token_details": {"text_tokens": "NaN", "audio_tokens": True},
                "output_token_details": ["not", "an", "object"],
            },
        },
    }
    fed = kernel.execute(f"session._on_raw({json.dumps(json.dumps(hostile))})")
    assert fed.status == "ok", fed.error_text()
    for _ in range(2):  # for the Session's lifetime, not once
        status = kernel.execute("%realtime status")
        assert status.status == "ok", status.error_text()
        assert _tracebacks(status.messages) == []
        answer = kernel.execute("%%realtime\nstill counting")
        assert answer.status == "ok", answer.error_text()
    status = kernel.execute("%realtime status")
    shown = json.dumps([m["content"] for m in status.messages])
    assert "tokens" in shown
    assert "lots" not in shown


def test_a_microphone_end_with_an_absurd_count_is_ignored(kernel):
    made = kernel.execute(
        "mic = Microphone()\nends = []\nmic.on_end(ends.append)\nprint(mic.comm.comm_id)"
    )
    assert made.status == "ok", made.error_text()
    comm_id = made.stream_text().strip()
    _drain(kernel)
    for content in (
        {"event": "end", "captured": 10**400, "rate": 24000},
        {"event": "end", "captured": 48000, "rate": 10**400},
        {"event": "end", "captured": 48000, "rate": "fast"},
        {"event": "end", "captured": True, "rate": 24000},
        {"event": "end", "captured": 48000, "rate": 24000},
    ):
        _send_comm(kernel, comm_id, content)
    seen = _run_collecting_all(kernel, "wait_for(lambda: len(ends) == 5)\nprint(ends)")
    printed = [m["content"]["text"] for m in seen if m["msg_type"] == "stream"]
    assert "[0.0, 0.0, 0.0, 0.0, 2.0]\n" in printed
    assert _tracebacks(seen) == []


def test_a_flood_of_open_messages_opens_one_inspector_per_turn(kernel):
    made = kernel.execute(
        "events.REOPEN_AFTER_S = 3600  # the flood is one burst however slow the machine\n"
        "hub = events.hub()\nprint(hub.comm.comm_id)"
    )
    assert made.status == "ok", made.error_text()
    comm_id = made.stream_text().strip()
    _drain(kernel)
    for _ in range(300):
        _send_comm(kernel, comm_id, {"event": "open", "key": "req_flood", "app": "kernel test"})
    _send_comm(kernel, comm_id, {"event": "open", "key": "req_other", "app": "kernel test"})
    notes = []
    while len(notes) < 2 or "req_other" not in notes[-1]:
        message = kernel.client.get_iopub_msg(timeout=within(60))
        content = message["content"]
        if message["msg_type"] == "comm_msg" and content.get("comm_id") == comm_id:
            note = content["data"].get("content") or {}
            if note.get("event") == "note":
                notes.append(note["text"])
    assert len(notes) == 2
    assert "req_flood" in notes[0]
    opened = kernel.execute("print(hub.opened)")
    assert opened.stream_text().strip() == repr(["req_flood", "req_other"])
