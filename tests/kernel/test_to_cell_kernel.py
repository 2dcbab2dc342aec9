"""``%%realtime --to-cell`` and ``%realtime fix`` in a real IPython kernel, offline.

What the front end receives is read: the execute reply's ``set_next_input`` payload (the
new cell JupyterLab adds), the outputs, and the message the Session sent.
"""

from __future__ import annotations

import pytest

from .harness import Execution, Kernel

pytestmark = pytest.mark.kernel

SETUP = """
%load_ext rt_notebook
import rt_notebook
from rt_notebook.server import EmbeddedServer
server = EmbeddedServer(pace=0.0)
server.start()
session = rt_notebook.connect(
    base_url=server.base_url, websocket_base_url=server.websocket_base_url, api_key=server.token
)
"""
# The echo server answers a message of several lines with "Echo:", a blank line, then
# the message verbatim: the answer holds exactly the code blocks the cell holds.
HOSTILE = (
    "````python\n"
    "x = '<img src=x onerror=alert(1)>'\n"
    "```\n"
    "not a fence end: ``` </pre><script>alert(2)</script>\n"
    "````"
)


@pytest.fixture(scope="module")
def kernel():
    kernel = Kernel()
    setup = kernel.execute(SETUP)
    assert setup.status == "ok", setup.error_text()
    yield kernel
    kernel.shutdown()


def next_inputs(run: Execution) -> list[dict]:
    payloads = run.reply["content"].get("payload", [])
    return [p for p in payloads if p.get("source") == "set_next_input"]


def last_user_text(kernel: Kernel) -> str:
    code = "print([i.text for i in session.items if i.role == 'user'][-1])"
    return kernel.execute(code).stream_text()


def test_to_cell_puts_exactly_the_code_in_a_new_cell_and_runs_nothing(kernel):
    cell = "Write code\n\n```python\nran_to_cell = 'RAN'\nprint(ran_to_cell)\n```\n\nthat is all"
    run = kernel.execute(f"%%realtime --to-cell\n{cell}")
    assert run.status == "ok", run.error_text()
    assert next_inputs(run) == [
        {
            "source": "set_next_input",
            "text": "ran_to_cell = 'RAN'\nprint(ran_to_cell)",
            "replace": False,
        }
    ]
    assert "RAN" not in run.stream_text()
    check = kernel.execute("print('ran_to_cell' in globals())")
    assert check.stream_text().strip() == "False"


def test_several_blocks_are_joined_in_order_into_one_cell(kernel):
    cell = "Two blocks\n\n```python\nfirst = 1\n```\n\ntext between\n\n```\nsecond = 2\n```"
    run = kernel.execute(f"%%realtime --to-cell\n{cell}")
    assert [p["text"] for p in next_inputs(run)] == ["first = 1\n\nsecond = 2"]


def test_hostile_code_is_verbatim_in_the_cell(kernel):
    run = kernel.execute(f"%%realtime --to-cell\nHostile\n\n{HOSTILE}")
    assert run.status == "ok", run.error_text()
    inner = HOSTILE.split("\n", 1)[1].rsplit("\n", 1)[0]
    assert [p["text"] for p in next_inputs(run)] == [inner]


def test_an_answer_without_code_adds_no_cell_and_says_so(kernel):
    run = kernel.execute("%%realtime --to-cell\njust words, no code")
    assert run.status == "ok", run.error_text()
    assert next_inputs(run) == []
    assert "no code block, so no cell was added" in run.final_markdown()


def test_without_to_cell_no_cell_is_added(kernel):
    run = kernel.execute("%%realtime\nCode\n\n```python\ny = 2\n```")
    assert next_inputs(run) == []


def _seen_or_next(kernel: Kernel, run: Execution, matches) -> dict:
    """The first message of ``run`` that ``matches``, else the next one on IOPub (the
    answer may end before or after its cell returns)."""
    for message in run.messages:
        if matches(message):
            return message
    return kernel.wait_for_message(matches)


def _copy_widget(message: dict) -> bool:
    state = message["content"].get("data", {}).get("state", {})
    opened = message["msg_type"] == "comm_open"
    return opened and state.get("_anywidget_id") == "rt_notebook.widgets.copy_code.CopyCode"


def test_a_background_cell_gets_a_copy_button_with_the_code_and_no_new_cell(kernel):
    run = kernel.execute("%%realtime --to-cell --background\nBg\n\n```python\nbg = 1\n```")
    assert run.status == "ok", run.error_text()
    assert next_inputs(run) == []  # a background cell has no reply left to carry a cell
    opened = _seen_or_next(kernel, run, _copy_widget)
    assert opened["content"]["data"]["state"]["code"] == "bg = 1"
    comm_id = opened["content"]["comm_id"]

    def shows_the_button(message):
        data = message["content"].get("data", {})
        view = data.get("application/vnd.jupyter.widget-view+json", {})
        return message["msg_type"] == "update_display_data" and view.get("model_id") == comm_id

    shown = _seen_or_next(kernel, run, shows_the_button)
    assert shown["parent_header"]["msg_id"] == run.msg_id  # in the cell that asked
    assert shown["content"]["data"]["text/plain"] == "[Copy code: 1 line]"
    assert kernel.execute("print('bg' in globals())").stream_text().strip() == "False"


def test_a_background_answer_without_code_says_so_in_its_cell(kernel):
    run = kernel.execute("%%realtime --to-cell --background\nno code in the background")

    def note(message):
        data = message["content"].get("data", {})
        return message["msg_type"] == "update_display_data" and "no code block" in str(
            data.get("text/markdown", "")
        )

    shown = _seen_or_next(kernel, run, note)
    assert shown["parent_header"]["msg_id"] == run.msg_id
    assert not any(_copy_widget(m) for m in run.messages)


def test_to_cell_with_no_response_is_refused_before_sending(kernel):
    run = kernel.execute("%%realtime --to-cell --no-response\nnever sent 1")
    assert run.status == "error"
    assert "UsageError" in run.error_text()
    assert "--to-cell" in run.error_text()
    assert "never sent 1" not in kernel.execute("print(session.items)").stream_text()


def test_fix_options_are_checked(kernel):
    run = kernel.execute("%realtime fix --to-cel")
    assert run.status == "error"
    assert "usage: %realtime fix [--to-cell] [--oob]" in run.error_text()


def test_fix_without_an_error_says_so_in_one_line(kernel):
    # A kernel where no cell has failed: IPython has set no sys.last_* yet.
    clear = "import sys\nfor n in ('last_type', 'last_value', 'last_traceback'):\n"
    clear += "    sys.__dict__.pop(n, None)"
    assert kernel.execute(clear).status == "ok"
    before = kernel.execute("print(len(session.items))").stream_text()
    run = kernel.execute("%realtime fix")
    assert run.status == "ok", run.error_text()
    assert run.final_markdown() == "No error yet in this kernel: nothing to fix."
    assert kernel.execute("print(len(session.items))").stream_text() == before


def test_fix_sends_the_source_and_the_clean_traceback_in_the_conversation(kernel):
    failing = (
        "def divide(a):\n"
        "    return a / 0  # api_key=sk-in-the-source-0123456789\n"
        "token = server.token\n"
        "try:\n"
        "    divide(1)\n"
        "except ZeroDivisionError as exc:\n"
        "    coloured = '\\x1b[31mcoloured\\x1b[0m'\n"
        "    raise ValueError(f'{coloured} {token} api_key=sk-on-the-line-0123456789') from exc"
    )
    assert kernel.execute(failing).status == "error"
    failed_number = int(kernel.execute("print(len(In) - 2)").stream_text())
    token = kernel.execute("print(server.token)").stream_text().strip()
    run = kernel.execute("%realtime fix")
    assert run.status == "ok", run.error_text()
    sent = last_user_text(kernel)
    assert f"The cell (In[{failed_number}]):" in sent
    assert "def divide(a):" in sent
    assert "raise ValueError(f'{coloured}" in sent
    assert "ZeroDivisionError: division by zero" in sent  # the cause
    assert "ValueError: coloured *** api_key=***" in sent  # the last line
    assert "return a / 0" in sent  # a frame of the traceback
    assert f"In[{failed_number}]" in sent.split("The traceback:")[1]  # not a temp file name
    assert "run_code" not in sent  # IPython's own frames left out
    assert "sk-in-the-source" not in sent
    assert "sk-on-the-line" not in sent
    assert token not in sent
    assert "***" in sent
    assert "\x1b" not in sent
    # The answer streamed in the cell as a %%realtime cell's does (the echo repeats it).
    assert "ZeroDivisionError" in run.final_markdown()
    assert token not in run.final_markdown()


def test_fix_to_cell_puts_the_answers_code_in_a_new_cell(kernel):
    assert kernel.execute("1/0").status == "error"
    run = kernel.execute("%realtime fix --to-cell")
    assert run.status == "ok", run.error_text()
    (payload,) = next_inputs(run)
    # The echo's code blocks: the cell's source, then the traceback.
    assert payload["text"].startswith("1/0\n\n")
    assert payload["text"].endswith("ZeroDivisionError: division by zero")


def test_fix_oob_keeps_the_question_out_of_the_conversation(kernel):
    assert kernel.execute("raise KeyError('oob fix')").status == "error"
    before = kernel.execute("print(len(session.items))").stream_text()
    run = kernel.execute("%realtime fix --oob")
    assert run.status == "ok", run.error_text()
    assert "KeyError: 'oob fix'" in run.final_markdown()
    assert kernel.execute("print(len(session.items))").stream_text() == before


def test_fix_bounds_a_long_traceback_keeping_its_end(kernel):
    assert kernel.execute("raise ValueError('x' * 20000 + 'THE END')").status == "error"
    kernel.execute("%realtime fix")
    sent = last_user_text(kernel)
    assert "characters of the traceback left out" in sent
    assert "THE END" in sent
    assert len(sent) < 8000


def test_fix_of_a_syntax_error_finds_its_cell(kernel):
    assert kernel.execute("x = (1,\ny = 2 2").status == "error"
    kernel.execute("%realtime fix")
    sent = last_user_text(kernel)
    assert "x = (1,\ny = 2 2" in sent
    assert "SyntaxError" in sent


def test_help_lists_to_cell_and_fix(kernel):
    run = kernel.execute("%realtime?")
    text = run.reply["content"]["payload"][0]["data"]["text/plain"]
    assert "--to-cell" in text
    assert "fix [--to-cell] [--oob]" in text


def test_a_key_in_the_answers_code_is_scrubbed_in_the_new_cell(kernel):
    # The user pastes the key into the question; the echo answers it back in code.
    run = kernel.execute("%%realtime --to-cell\nKey\n\n```python\nkey = '{server.token}'\n```")
    token = kernel.execute("print(server.token)").stream_text().strip()
    (payload,) = next_inputs(run)
    assert payload["text"] == "key = '***'"
    assert token not in str(run.reply)


def test_fix_bounds_a_long_cell_keeping_its_start(kernel):
    long_cell = "# " + "c" * 6000 + "\n1/0"
    assert kernel.execute(long_cell).status == "error"
    kernel.execute("%realtime fix")
    sent = last_user_text(kernel)
    source = sent.split("The traceback:")[0]
    assert "more characters of the cell left out" in source
    assert "c" * 3990 in source
    assert "c" * 4100 not in source
