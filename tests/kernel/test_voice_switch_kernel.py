"""``%realtime voice`` in a real kernel with nothing configured: the Session answers in
audio while it is on (the cell says so), a ``%%realtime`` cell without ``--modalities``
still answers in text meanwhile, and ``%realtime voice --off`` gives text back.

What was asked for is read from the Session's recording of the wire; what the user sees
from the IOPub messages."""

from __future__ import annotations

import json

import pytest

from .harness import Kernel

pytestmark = pytest.mark.kernel

SETUP = """
%load_ext rt_notebook
import json, os, tempfile
import rt_notebook
session = rt_notebook.connect()  # the offline server, as a fresh kernel has it
RECORDING = os.path.join(tempfile.mkdtemp(), "sent.jsonl")
session.record(RECORDING)

def asked():
    '''output_modalities of each session.update and response.create sent, in order.'''
    session.stop_recording()
    with open(RECORDING) as f:
        lines = [json.loads(line) for line in f]
    session.record(RECORDING)
    sent = [l["data"] for l in lines if l["direction"] == "sent"]
    print(json.dumps([
        [e["type"], (e.get("session") or e.get("response") or {}).get("output_modalities")]
        for e in sent if e["type"] in ("session.update", "response.create")
    ]))
"""


@pytest.fixture(scope="module")
def kernel():
    kernel = Kernel()
    setup = kernel.execute(SETUP)
    assert setup.status == "ok", setup.error_text()
    yield kernel
    kernel.shutdown()


def shown(execution) -> str:
    """Every text/plain and text/markdown the cell displayed or updated."""
    parts = []
    for message in execution.of_type("display_data", "update_display_data", "execute_result"):
        data = message["content"]["data"]
        parts.append(data.get("text/markdown", "") + data.get("text/plain", ""))
    return "\n".join(parts)


def widgets_shown(execution) -> list[str]:
    """The model names of the widgets the cell created."""
    return [
        m["content"]["data"]["state"].get("_model_name", "")
        for m in execution.of_type("comm_open")
        if "state" in m["content"].get("data", {})
    ]


def test_voice_on_speaks_typed_cells_answer_in_text_and_off_gives_text_back(kernel):
    on = kernel.execute("%realtime voice")
    assert on.status == "ok", on.error_text()
    assert "answers in audio" in json.dumps([m["content"] for m in on.messages])
    settings = kernel.execute("print(session.session_config['output_modalities'])")
    assert settings.stream_text().strip() == "['audio']"

    typed = kernel.execute("%%realtime\nwhile voice is on")
    assert typed.status == "ok", typed.error_text()
    assert "Echo: while voice is on" in shown(typed)
    assert "AudioPlayerModel" not in " ".join(widgets_shown(typed))  # no player: text

    # A second %realtime voice replaces the first: still one control, still audio.
    again = kernel.execute("%realtime voice")
    assert again.status == "ok", again.error_text()
    off = kernel.execute("%realtime voice --off")
    assert off.status == "ok", off.error_text()
    assert "Voice is off" in shown(off)
    after = kernel.execute("print(session.session_config['output_modalities'])")
    assert after.stream_text().strip() == "['text']"
    plain = kernel.execute("%%realtime\nafter voice")
    assert "Echo: after voice" in shown(plain)

    sent = json.loads(kernel.execute("asked()").stream_text())
    assert sent == [
        ["session.update", ["audio"]],  # %realtime voice
        ["response.create", ["text"]],  # the typed cell, as before
        ["session.update", ["text"]],  # --off
        ["response.create", None],  # the session's own output again: text
    ]

    again_off = kernel.execute("%realtime voice --off")
    assert again_off.status == "error"
    assert "no voice control is on" in again_off.error_text()
