"""%%realtime options and %realtime commands in a real kernel (embedded server, pace 0)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .harness import Kernel

pytestmark = pytest.mark.kernel

SETUP = """
%load_ext rt_notebook
import rt_notebook
from rt_notebook.server import EmbeddedServer
server = EmbeddedServer(pace=0.0)
server.start()
%config RealtimeMagics.url = server.websocket_base_url
"""


@pytest.fixture(scope="module")
def kernel():
    kernel = Kernel()
    setup = kernel.execute(SETUP + "\nimport os\nos.environ['OPENAI_API_KEY'] = server.token")
    assert setup.status == "ok", setup.error_text()
    yield kernel
    kernel.shutdown()


def printed(kernel, code):
    run = kernel.execute(code)
    assert run.status == "ok", run.error_text()
    return run.stream_text().strip()


def test_config_url_is_used_and_status_says_where(kernel):
    run = kernel.execute("%realtime connect")
    assert run.status == "ok", run.error_text()
    text = json.dumps([m["content"] for m in run.of_type("execute_result")])
    assert "127.0.0.1" in text
    assert "connected" in text


def test_role_system_and_no_response_only_add_an_item(kernel):
    kernel.execute("%%realtime --role system --no-response\nYou are terse.")
    out = printed(kernel, "s = rt_notebook.connect(); print(s.items[-1].role, s.items[-1].text)")
    assert out == "system You are terse."


def test_text_format_publishes_plain_text(kernel):
    run = kernel.execute("%%realtime --format text\nplain *please*")
    assert run.status == "ok", run.error_text()
    last = run.of_type("update_display_data")[-1]["content"]["data"]
    assert "text/markdown" not in last
    assert "plain *please*" in last["text/plain"]


def test_oob_answer_stays_out_of_the_conversation(kernel):
    before = printed(kernel, "print(len(rt_notebook.connect().items))")
    run = kernel.execute("%%realtime --oob --out side\nside question")
    assert run.status == "ok", run.error_text()
    assert "side question" in run.final_markdown()
    after = printed(kernel, "print(len(rt_notebook.connect().items), side.out_of_band)")
    assert after == f"{before} True"


def test_audio_modality_streams_the_transcript(kernel):
    run = kernel.execute("%%realtime --modalities audio --out spoken\nsay this aloud")
    assert run.status == "ok", run.error_text()
    assert "say this aloud" in run.final_markdown()
    assert printed(kernel, "print(spoken.status)") == "completed"


def test_background_returns_at_once_and_finishes_later(kernel):
    run = kernel.execute("%%realtime --background --out pending\nin the background")
    assert run.status == "ok", run.error_text()
    later = kernel.execute(
        "r = pending.wait(30)\nprint(r.status, 'in the background' in r.text)",
        any_parent=True,
    )
    assert later.stream_text().strip().endswith("completed True")

    # The background thread kept updating the first cell's output, under that cell's parent;
    # its final update may still be on its way after `later` went idle.
    def final_update(message):
        return (
            message["msg_type"] == "update_display_data"
            and message["parent_header"].get("msg_id") == run.msg_id
            and message["content"]["metadata"].get("rt_notebook", {}).get("status") == "completed"
        )

    seen = [m for m in run.messages + later.messages if final_update(m)]
    final = (seen[-1] if seen else kernel.wait_for_message(final_update))["content"]
    assert "in the background" in final["data"]["text/markdown"]


def test_record_then_transcript_cli(kernel, tmp_path):
    path = tmp_path / "rec.jsonl"
    kernel.execute(f"%realtime record {path}")
    kernel.execute("%%realtime\nrecorded in a cell")
    kernel.execute("%realtime record --stop")
    out = subprocess.run(
        [sys.executable, "-m", "rt_notebook", "transcript", str(path), "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    data = json.loads(out)
    texts = [item["text"] for item in data["items"]]
    assert "recorded in a cell" in texts
    assert data["responses"][-1]["status"] == "completed"
    markdown = subprocess.run(
        [sys.executable, "-m", "rt_notebook", "transcript", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "**You:**\n\nrecorded in a cell" in markdown


def test_history_lists_items_as_a_table(kernel):
    kernel.execute("%%realtime --no-response\nfor the history | with a pipe")
    run = kernel.execute("%realtime history")
    table = run.of_type("display_data")[-1]["content"]["data"]["text/markdown"]
    assert "| # | id | type | role | status | text |" in table
    assert "for the history \\| with a pipe" in table


def test_events_and_unknown_command(kernel):
    run = kernel.execute("evs = %realtime events 5\nprint(len(evs), all('type' in e for e in evs))")
    assert run.stream_text().strip() == "5 True"
    bad = kernel.execute("%realtime bogus")
    assert bad.status == "error"
    assert "unknown %realtime command 'bogus'" in bad.error_text()


@pytest.mark.parametrize("query", ["%%realtime?", "%realtime?"])
def test_help_lists_the_options(kernel, query):
    run = kernel.execute(query)
    text = json.dumps(run.reply["content"].get("payload", []))  # help goes to the pager
    for option in ("--instructions", "--after", "--oob", "--function-output", "--out"):
        assert option in text


def test_empty_cell_is_refused_without_sending(kernel):
    before = printed(kernel, "print(len(rt_notebook.connect().items))")
    run = kernel.execute("%%realtime\n\n")
    assert run.status == "error"
    assert "empty" in run.error_text()
    assert printed(kernel, "print(len(rt_notebook.connect().items))") == before
