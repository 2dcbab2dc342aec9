"""Session settings from the notebook, in a real kernel (embedded server, pace 0):
``%config`` traits, ``%%realtime --reasoning-effort``, ``%realtime status``, and every
typo or bad value refused in one ``UsageError`` line with nothing sent (the Session's own
recording of what it sent is read back to check)."""

from __future__ import annotations

import json

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
os.environ['OPENAI_API_KEY'] = server.token
%config RealtimeMagics.url = server.websocket_base_url
session = rt_notebook.connect(
    base_url=server.base_url, websocket_base_url=server.websocket_base_url, api_key=server.token
)
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


def printed(kernel, code):
    run = kernel.execute(code)
    assert run.status == "ok", run.error_text()
    return run.stream_text().strip()


def assert_one_usage_line(run, *named):
    shown = run.shown_error().strip()
    if run.reply["content"].get("ename") == "UsageError":  # a magic's own refusal
        assert run.error_text().startswith("UsageError: "), run.error_text()
    else:  # %config reports a refused value in the log line IPython prints, and goes on
        assert run.status == "ok", run.error_text()
        assert shown.startswith("ERROR:root:RealtimeMagics."), shown
    for name in named:
        assert name in shown, shown
    assert shown.count("\n") == 0, shown  # one line, no traceback


def test_reasoning_effort_option_is_sent_with_that_response_only(kernel):
    run, sent = run_recorded(kernel, "%%realtime --reasoning-effort low\nthink a little")
    assert run.status == "ok", run.error_text()
    (create,) = [event for event in sent if event["type"] == "response.create"]
    assert create["response"]["reasoning"] == {"effort": "low"}
    assert [event for event in sent if event["type"] == "session.update"] == []


REFUSED = [
    ("%%realtime --reasoning-effort hgh\nhello", ("--reasoning-effort", "minimal", "xhigh")),
    ("%%realtime --reasoning-effort\nhello", ("--reasoning-effort",)),
    ("%%realtime --no-response --reasoning-effort low\nhello", ("--reasoning-effort",)),
    (
        "%config RealtimeMagics.reasoning_effort = 'hgh'",
        ("RealtimeMagics.reasoning_effort", "'low', 'medium'"),
    ),
    (
        "%config RealtimeMagics.truncation = 'sometimes'",
        ("RealtimeMagics.truncation", "'auto' or 'disabled'"),
    ),
    (
        "%config RealtimeMagics.truncation = {'type': 'retention_ratio'}",
        ("truncation.retention_ratio is missing",),
    ),
    (
        "%config RealtimeMagics.noise_reduction = 'nearfield'",
        ("RealtimeMagics.noise_reduction", "'near_field' or 'far_field'"),
    ),
    (
        "%config RealtimeMagics.turn_detection = 'semantic'",
        ("RealtimeMagics.turn_detection", "semantic_vad"),
    ),
    (
        "%config RealtimeMagics.turn_detection = {'type': 'semantic_vad', 'eagerness': 'hi'}",
        ("eagerness", "'low', 'medium', 'high' or 'auto'"),
    ),
    (
        "%config RealtimeMagics.session = {'reasonin': {'effort': 'low'}}",
        ("RealtimeMagics.session", "did you mean 'reasoning'?"),
    ),
    (
        "%config RealtimeMagics.session = {'parallel_tool_calls': 'yes'}",
        ("parallel_tool_calls: should be true or false",),
    ),
]


@pytest.mark.parametrize(("code", "named"), REFUSED, ids=[c for c, _ in REFUSED])
def test_typos_and_bad_values_are_one_line_and_nothing_is_sent(kernel, code, named):
    before = printed(kernel, "print(len(session.items))")
    run, sent = run_recorded(kernel, code)
    assert_one_usage_line(run, *named)
    assert sent == []
    assert printed(kernel, "print(len(session.items))") == before
    # A refused trait keeps its former value.
    traits = printed(
        kernel,
        "m = get_ipython().magics_manager.registry['RealtimeMagics']\n"
        "print(repr((m.reasoning_effort, m.truncation, m.noise_reduction, m.turn_detection,"
        " m.session)))",
    )
    assert traits == "('', '', '', '', {})"


def test_config_traits_set_a_new_sessions_settings_and_status_shows_them(kernel):
    for line in (
        "%config RealtimeMagics.reasoning_effort = 'low'",
        "%config RealtimeMagics.truncation = {'type': 'retention_ratio', 'retention_ratio': 0.5}",
        "%config RealtimeMagics.noise_reduction = 'near_field'",
        "%config RealtimeMagics.turn_detection = {'type': 'semantic_vad', 'eagerness': 'low'}",
        "%config RealtimeMagics.session = {'parallel_tool_calls': False, 'max_output_tokens': 99}",
    ):
        run = kernel.execute(line)
        assert run.status == "ok", run.error_text()
    try:
        status = kernel.execute("%realtime connect --session configured")
        assert status.status == "ok", status.error_text()
        shown = json.dumps([m["content"] for m in status.of_type("execute_result")])
        for text in ("reasoning_effort", "`low`", "noise_reduction", "`near_field`"):
            assert text in shown
        served = json.loads(
            printed(
                kernel,
                "print(json.dumps(rt_notebook.connect('configured').session_config))",
            )
        )  # what the server itself reported
        assert served["reasoning"] == {"effort": "low"}
        assert served["truncation"] == {"type": "retention_ratio", "retention_ratio": 0.5}
        assert served["audio"]["input"]["noise_reduction"] == {"type": "near_field"}
        assert served["audio"]["input"]["turn_detection"]["eagerness"] == "low"
        assert served["parallel_tool_calls"] is False
        assert served["max_output_tokens"] == 99
    finally:
        kernel.execute(
            "%config RealtimeMagics.reasoning_effort = ''\n"
            "%config RealtimeMagics.truncation = ''\n"
            "%config RealtimeMagics.noise_reduction = ''\n"
            "%config RealtimeMagics.turn_detection = ''\n"
            "%config RealtimeMagics.session = {}"
        )


def test_status_shows_accepted_settings_not_refused_ones(kernel):
    refused = kernel.execute(
        "try:\n"
        "    session.update_session(tool_choice={'type': 'function', 'name': 'nowhere'})\n"
        "except rt_notebook.errors.ServerError as exc:\n"
        "    print('refused:', exc)\n"
        "session.update_session(instructions='Answer in French.', reasoning_effort='medium')"
    )
    assert "refused: invalid_value" in refused.stream_text(), refused.error_text()
    status = kernel.execute("%realtime status")
    shown = json.dumps([m["content"] for m in status.of_type("execute_result")])
    assert "Answer in French." in shown
    assert "`medium`" in shown
    assert "nowhere" not in shown


def test_settings_a_restore_loses_are_named_in_a_warning_and_in_status(kernel):
    setup = kernel.execute(
        "import time\n"
        "lossy = rt_notebook.connect('lossy', websocket_base_url=server.websocket_base_url,"
        " api_key=server.token, instructions='Answer in French.')\n"
        "lossy.update_session(reasoning_effort='low')\n"
        "from rt_notebook.server.state import ConnectionState\n"
        "from rt_notebook.server.errors import ErrorInfo\n"
        "real_update = ConnectionState._HANDLERS['session.update']\n"
        "ConnectionState._HANDLERS['session.update'] = lambda state, event: [state._error(\n"
        "    ErrorInfo(code='invalid_value', message='not on this model'), event)]\n"
    )
    assert setup.status == "ok", setup.error_text()
    try:
        seen = []
        dropped = kernel.execute(
            "server.drop_connections()\n"
            "deadline = time.monotonic() + 60\n"
            "def told():  # the event comes right after the warning\n"
            "    return any(e['type'] == 'rt_notebook.settings_lost' for e in lossy.events)\n"
            "while not told() and time.monotonic() < deadline:\n"
            "    time.sleep(0.01)\n"
            "print('told:', told())",
            on_message=seen.append,
            any_parent=True,
        )
        assert dropped.status == "ok", dropped.error_text()
    finally:
        kernel.execute("ConnectionState._HANDLERS['session.update'] = real_update")
    warned = "".join(m["content"]["text"] for m in seen if m["msg_type"] == "stream")
    assert "refused the session settings" in warned
    assert "instructions" in warned
    status = kernel.execute("%realtime status --session lossy")
    shown = json.dumps([m["content"] for m in status.of_type("execute_result")])
    assert "Lost on the last reconnect" in shown
    assert "not on this model" in shown
    assert "the server defaults" in shown
