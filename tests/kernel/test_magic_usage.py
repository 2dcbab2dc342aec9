"""The magics as people type them, in a real kernel: shell quoting, and every refusal is
one ``UsageError`` line with nothing sent (the Session's own recording of what it sent is
read back to check)."""

from __future__ import annotations

import pytest

from .harness import RECORDER, Kernel, run_recorded

pytestmark = pytest.mark.kernel

SETUP = (
    """
%load_ext rt_notebook
import json, os, tempfile
import rt_notebook
from rt_notebook.server import EmbeddedServer
server = EmbeddedServer(pace=0.0).start()
session = rt_notebook.connect(
    base_url=server.base_url, websocket_base_url=server.websocket_base_url, api_key=server.token
)
# A server that takes 30 s per word: any short --timeout expires first.
slow_server = EmbeddedServer(pace=30.0).start()
slow = rt_notebook.connect(
    "slow", websocket_base_url=slow_server.websocket_base_url, api_key=slow_server.token
)

@session.tool
def get_weather(city: str) -> str:
    '''The weather in a city.'''
    return f"Foggy in {city}"

"""
    + RECORDER
)


@pytest.fixture(scope="module")
def kernel():
    kernel = Kernel()
    setup = kernel.execute(SETUP)
    assert setup.status == "ok", setup.error_text()
    yield kernel
    kernel.shutdown()


def item_count(kernel):
    return int(kernel.execute("print(len(session.items))").stream_text())


REFUSED = [
    # values
    ("%%realtime --timeout -1\nhello", "--timeout"),
    ("%%realtime --timeout 0\nhello", "--timeout"),
    ("%%realtime --timeout nan\nhello", "--timeout"),
    ("%%realtime --timeout abc\nhello", "--timeout"),
    ("%%realtime --max-output-tokens abc\nhello", "--max-output-tokens"),
    ("%%realtime --max-output-tokens 0\nhello", "--max-output-tokens"),
    ("%%realtime --max-output-tokens 5000\nhello", "--max-output-tokens"),
    ("%%realtime --modalities bogus\nhello", "--modalities"),
    ("%%realtime --modalities text,,audio\nhello", "--modalities"),
    ("%%realtime --role bogus\nhello", "--role"),
    ("%%realtime --format html\nhello", "--format"),
    ("%%realtime --voice ''\nhello", "--voice"),
    ("%%realtime --out 1x\nhello", "--out"),
    ("%%realtime --out class\nhello", "--out"),
    ("%%realtime --metadata '{\"k\": 1'\nhello", "--metadata"),
    ("%%realtime --metadata novalue\nhello", "--metadata"),
    ("%%realtime --metadata '[1, 2]'\nhello", "--metadata"),
    ("%%realtime --tools get_weather,,x\nhello", "--tools"),
    ("%%realtime --tools none,get_weather\nhello", "--tools"),
    ("%%realtime --tools nope\nhello", "nope"),
    ("%%realtime --tool-choice nope\nhello", "nope"),
    ("%%realtime --tools get_weather --tool-choice other\nhello", "--tool-choice"),
    ("%%realtime --after item_missing\nhello", "item_missing"),
    ("%%realtime --function-output call_missing\nhello", "call_missing"),
    ("%%realtime --session\nhello", "--session"),
    ("%%realtime --bogus\nhello", "--bogus"),
    ("%%realtime --instructions 'unclosed\nhello", "quotation"),
    ("%%realtime\n   \n", "empty"),
    # combinations that would silently do less than they say
    ("%%realtime --oob --no-response\nhello", "--no-response"),
    ("%%realtime --oob --function-output call_1\nhello", "--oob"),
    ("%%realtime --oob --after root\nhello", "--oob"),
    ("%%realtime --oob --append\nhello", "--oob"),
    ("%%realtime --input item_x\nhello", "--oob"),
    ("%%realtime --background --timeout 5\nhello", "--timeout"),
    ("%%realtime --no-response --instructions terse\nhello", "--instructions"),
    ("%%realtime --no-response --out x\nhello", "--out"),
    ("%%realtime --no-response --timeout 5\nhello", "--timeout"),
    ("%%realtime --no-response --format text\nhello", "--format"),
    ("%%realtime --function-output call_1 --role user\nhello", "--role"),
    # %realtime
    ("%realtime events abc", "events"),
    ("%realtime events 0", "events"),
    ("%realtime events 1 2", "events"),
    ("%realtime record /no/such/folder/rec.jsonl", "/no/such/folder"),
    ("%realtime record", "record"),
    ("%realtime record --raw", "record"),
    ("%realtime record a.jsonl b.jsonl", "record"),
    ("%realtime record --stop --raw", "record"),
    ("%realtime resume a.ipynb b.ipynb", "resume"),
    ("%realtime resume --replace --append", "not both"),
    ("%realtime resume --relpace", "resume"),
    ("%realtime resume no_such_notebook.ipynb", "no file"),
    ("%realtime connect --session", "--session"),
    ("%realtime status --bogus", "--bogus"),
    ("%realtime tools --bogus", "tools"),
    ("%realtime bogus", "bogus"),
    ("%realtime history 'unclosed", "quotation"),
]


@pytest.mark.parametrize(("code", "named"), REFUSED, ids=[c for c, _ in REFUSED])
def test_refused_in_one_line_and_nothing_sent(kernel, code, named):
    before = item_count(kernel)
    run, sent = run_recorded(kernel, code)
    assert run.status == "error"
    assert run.error_text().startswith("UsageError: "), run.error_text()
    assert named in run.error_text()
    shown = run.shown_error().strip()
    assert shown.count("\n") == 0, shown  # one line, no traceback
    assert sent == []
    assert item_count(kernel) == before


def sent_of_type(events, event_type):
    return [event for event in events if event["type"] == event_type]


def test_quoted_instructions_are_sent_without_the_quotes(kernel):
    run, sent = run_recorded(
        kernel, '%%realtime --instructions "Answer in one sentence." --out answer\nWhat is it?'
    )
    assert run.status == "ok", run.error_text()
    (create,) = sent_of_type(sent, "response.create")
    assert create["response"]["instructions"] == "Answer in one sentence."


def test_quoted_json_metadata_is_accepted(kernel):
    run, sent = run_recorded(kernel, '%%realtime --metadata \'{"k": "v w"}\'\nWith metadata')
    assert run.status == "ok", run.error_text()
    (create,) = sent_of_type(sent, "response.create")
    assert create["response"]["metadata"]["k"] == "v w"


def test_oob_with_role_sends_that_role_out_of_band(kernel):
    before = item_count(kernel)
    run, sent = run_recorded(kernel, "%%realtime --oob --role system\nBe brief, just here.")
    assert run.status == "ok", run.error_text()
    (create,) = sent_of_type(sent, "response.create")
    assert create["response"]["conversation"] == "none"
    assert create["response"]["input"][-1]["role"] == "system"
    assert sent_of_type(sent, "conversation.item.create") == []
    assert item_count(kernel) == before


def test_background_out_binds_the_handle_as_the_help_says(kernel):
    run = kernel.execute("%%realtime --background --out pending\nlater")
    assert run.status == "ok", run.error_text()
    done = kernel.execute("r = pending.wait(30)\nprint(type(pending).__name__, r.status)")
    assert done.stream_text().split() == ["ResponseHandle", "completed"]


def test_timeout_is_one_line_without_the_cell_and_cancels(kernel):
    body = "a body that must not be echoed back"
    run = kernel.execute(f"%%realtime --session slow --timeout 0.5\n{body}")
    assert run.status == "error"
    # What the notebook draws: the IOPub error (not the reply), one line, no cell text.
    (error,) = [message["content"] for message in run.of_type("error")]
    assert error["traceback"] == [
        "RealtimeError: no answer within 0.5 s, so it was cancelled "
        "(--timeout SECONDS waits longer)"
    ]
    assert body not in run.shown_error()
    metadata = run.of_type("update_display_data")[-1]["content"]["metadata"]["rt_notebook"]
    assert metadata["status"] == "cancelled"
    after = kernel.execute("print(slow.active_response_id, slow.pending_responses)")
    assert after.stream_text().split() == ["None", "0"]


def test_rerun_after_a_failed_response_request_leaves_one_copy(kernel):
    """The message is remembered as the cell's before its response is requested, so when
    the request fails (here: refused once by a wrapper) a re-run replaces the message."""
    refuse_once = kernel.execute(
        "from rt_notebook.errors import ServerError\n"
        "real_create = session.create_response\n"
        "def refuse_once(**kw):\n"
        "    session.create_response = real_create\n"
        "    raise ServerError({'code': 'refused_once', 'message': 'try again'})\n"
        "session.create_response = refuse_once"
    )
    assert refuse_once.status == "ok", refuse_once.error_text()
    code = "%%realtime\nonly one copy of me"
    first = kernel.execute(code)
    assert first.status == "error"
    assert "refused_once" in first.error_text()
    second = kernel.execute(code)
    assert second.status == "ok", second.error_text()
    copies = kernel.execute("print(sum(i.text == 'only one copy of me' for i in session.items))")
    assert copies.stream_text().strip() == "1"


@pytest.mark.parametrize("query", ["%%realtime?", "%realtime?"])
def test_help_is_plain_text_and_names_the_cell_magic(kernel, query):
    run = kernel.execute(query)
    payload = run.reply["content"]["payload"]
    text = payload[0]["data"]["text/plain"]
    assert "%%realtime [--instructions TEXT]" in text
    assert "``" not in text
    assert ":mod:" not in text
    assert "\n::\n" not in text


def _shown(run) -> list[str]:
    """The Markdown the cell drew (displays and its result), in order."""
    shown = []
    for message in run.messages:
        if message["msg_type"] in ("display_data", "update_display_data", "execute_result"):
            shown.append(message["content"]["data"].get("text/markdown", ""))
    return shown


def test_a_session_name_typed_wrong_says_it_starts_a_new_conversation(kernel):
    """``--session sloww`` (meant: ``slow``) makes a new, empty Session, as any new name
    does; the cell says so in a line, with the name it most likely meant."""
    run = kernel.execute("%%realtime --session sloww\nwhat did I say?")
    assert run.status == "ok", run.error_text()
    (note,) = [shown for shown in _shown(run) if "new Session" in shown]
    assert note.startswith("*rt_notebook: new Session `sloww`, a conversation of its own")
    assert "`default`" in note
    assert "Did you mean `slow`?" in note
    again = kernel.execute("%%realtime --session sloww\nand now?")
    assert not any("new Session" in shown for shown in _shown(again))  # once, when made
    status = kernel.execute("%realtime status --session slwo")
    (line,) = _shown(status)
    assert line.startswith("No Session `slwo` (Sessions: `default`, `slow`, `sloww`)")
    assert line.endswith("Did you mean `slow`?")
    events = kernel.execute("%realtime events --session slwo")
    assert events.error_text().startswith(
        "UsageError: no Session 'slwo' yet (did you mean 'slow'?)"
    ), events.error_text()


def test_a_new_session_name_that_resembles_none_gets_the_note_without_a_guess(kernel):
    run = kernel.execute("%%realtime --session <b>zz`q</b>\nhello")
    assert run.status == "ok", run.error_text()
    (note,) = [shown for shown in _shown(run) if "new Session" in shown]
    assert "Did you mean" not in note
    assert "<b>" not in note.replace("&lt;b&gt;", "")  # the name is shown as inert code
