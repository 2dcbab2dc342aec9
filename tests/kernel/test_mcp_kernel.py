"""Local MCP servers through %realtime in a real IPython kernel, offline.

A real MCP server (``tests/mcp_servers/demo.py``, made with the ``mcp`` SDK) runs over
stdio from the kernel; the embedded offline server is the model, and its responder calls
a tool when the prompt says ``call NAME {json}``. What is checked is what the front end
receives on IOPub.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from .harness import Kernel
from .test_tools_kernel import collect, saved_outputs, value

pytestmark = pytest.mark.kernel

DEMO = Path(__file__).parent.parent / "mcp_servers" / "demo.py"

SETUP = f"""
%load_ext rt_notebook
import json
import rt_notebook
from rt_notebook.server import EmbeddedServer

server = EmbeddedServer(pace=0.0).start()
session = rt_notebook.connect(
    base_url=server.base_url, websocket_base_url=server.websocket_base_url, api_key=server.token
)
DEMO = {str(DEMO)!r}
PYTHON = {sys.executable!r}
session.add_mcp_server("demo", command=[PYTHON, DEMO])
"""


@pytest.fixture(scope="module")
def kernel():
    kernel = Kernel()
    setup = kernel.execute(SETUP)
    assert setup.status == "ok", setup.error_text()
    yield kernel
    kernel.shutdown()


def test_an_offline_cell_calls_a_stdio_mcp_servers_tool(kernel):
    added = kernel.execute('%realtime mcp add cell --command "{PYTHON} {DEMO}" --allow add,hostile')
    assert added.status == "ok", added.error_text()
    table = added.final_markdown() if added.of_type("display_data") else ""
    table = table or json.dumps([m["content"] for m in added.of_type("execute_result")])
    assert "cell__add" in table
    assert "cell__crash" not in table  # --allow left it out
    run = kernel.execute('%%realtime\ncall cell__add {"a": 19, "b": 23}')
    assert run.status == "ok", run.error_text()
    call, result, answer = saved_outputs(run)
    assert "`cell__add`" in call
    assert "sum is 42" in result
    assert "sum is 42" in answer
    assert value(kernel, "session.items[-2].output") == "sum is 42"


def html_in_markdown(text: str) -> list[str]:
    """The raw HTML a CommonMark renderer would pass through from ``text``."""
    from markdown_it import MarkdownIt

    found = []
    for token in MarkdownIt("commonmark").parse(text):
        for part in [token, *(token.children or [])]:
            if part.type in ("html_block", "html_inline"):
                found.append(part.content)
    return found


def test_hostile_mcp_output_never_becomes_html(kernel):
    run = kernel.execute("%%realtime\ncall demo__hostile {}")
    assert run.status == "ok", run.error_text()
    shown = run.of_type("display_data", "update_display_data", "execute_result")
    assert shown
    for message in shown:
        data = message["content"]["data"]
        assert html_in_markdown(data.get("text/markdown", "")) == [], data
        assert "<script>" not in data.get("text/html", ""), data
    result = saved_outputs(run)[1]
    assert '<img src=x onerror="alert(1)"><script>alert(2)</script>' in result  # as text


def test_an_mcp_tool_that_needs_approval_runs_after_a_click_in_the_cell(kernel):
    added = kernel.execute('%realtime mcp add ask --command "{PYTHON} {DEMO}" --approve add')
    assert added.status == "ok", added.error_text()
    client = kernel.client
    msg_id = client.execute('%%realtime\ncall ask__add {"a": 5, "b": 6}')
    approve_ids: list[str] = []
    clicked: list[str] = []

    def click_approve(message):
        # Like a person: click Approve once the buttons are on screen.
        content = message["content"]
        if message["msg_type"] == "comm_open":
            if content["data"]["state"].get("description") == "Approve":
                approve_ids.append(content["comm_id"])
        elif (
            message["msg_type"] == "display_data"
            and approve_ids
            and not clicked
            and "application/vnd.jupyter.widget-view+json" in content["data"]
        ):
            click = client.session.msg(
                "comm_msg",
                {
                    "comm_id": approve_ids[-1],
                    "data": {"method": "custom", "content": {"event": "click"}},
                },
            )
            client.shell_channel.send(click)
            clicked.append(approve_ids[-1])

    run = collect(kernel, msg_id, on_message=click_approve)
    assert run.status == "ok", run.error_text()
    assert clicked
    assert any("sum is 11" in output for output in saved_outputs(run))
    assert value(kernel, "session.items[-2].output") == "sum is 11"
    removed = kernel.execute("%realtime mcp remove ask")
    assert removed.status == "ok", removed.error_text()


def test_mcp_list_remove_and_typos(kernel):
    typo = kernel.execute("%realtime mcp add gone --comand x")
    assert typo.status == "error"
    assert "unknown option '--comand'" in typo.shown_error()
    added = kernel.execute('%realtime mcp add gone --command "{PYTHON} {DEMO}" --allow slow')
    assert added.status == "ok", added.error_text()
    listed = kernel.execute("%realtime mcp list")
    assert listed.status == "ok", listed.error_text()
    assert "gone__slow" in json.dumps([m["content"] for m in listed.messages])
    removed = kernel.execute("%realtime mcp remove gone")
    assert removed.status == "ok", removed.error_text()
    assert value(kernel, "[n for n in session.tools if n.startswith('gone__')]") == []
    again = kernel.execute("%realtime mcp remove gone")
    assert "no MCP server labelled 'gone'" in again.shown_error()
