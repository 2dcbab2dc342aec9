"""Remote MCP servers (run by the service) through %realtime in a real IPython kernel, offline.

A real MCP server (``tests/mcp_servers/remote.py``, the ``mcp`` SDK's server API) listens on
127.0.0.1 over Streamable HTTP; the embedded offline server is the service and runs it. What
is checked is what the front end receives on IOPub: the call and its result in the cell, and
the approval buttons in the cell that asked (a blocking one, a ``--background`` one).
"""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.timing import PROCESS_WAIT, WAIT, wait_until, within

from .harness import Kernel
from .test_mcp_kernel import html_in_markdown
from .test_tools_kernel import click, collect, saved_outputs, value

pytestmark = pytest.mark.kernel

REMOTE = Path(__file__).parent.parent / "mcp_servers" / "remote.py"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def remote_url():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, str(REMOTE), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def listening() -> bool:
        with socket.socket() as client:
            return client.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_until(listening, "the remote MCP server to listen", PROCESS_WAIT)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.kill()
        process.wait(WAIT)


@pytest.fixture(scope="module")
def kernel(remote_url):
    kernel = Kernel()
    setup = kernel.execute(
        "%load_ext rt_notebook\n"
        "import json\n"
        "import rt_notebook\n"
        "from rt_notebook.server import EmbeddedServer\n"
        "server = EmbeddedServer(pace=0.0).start()\n"
        "session = rt_notebook.connect(base_url=server.base_url,\n"
        "    websocket_base_url=server.websocket_base_url, api_key=server.token)\n"
        f"URL = {remote_url!r}\n"
    )
    assert setup.status == "ok", setup.error_text()
    yield kernel
    kernel.shutdown()


def test_a_cell_shows_the_listing_the_call_and_its_result(kernel):
    added = kernel.execute("%realtime mcp add free {URL} --approve never")
    assert added.status == "ok", added.error_text()
    table = json.dumps([m["content"] for m in added.messages])
    assert "run by the service" in table
    assert "`add`" in table  # listed before the magic returned
    run = kernel.execute('%%realtime\ncall add {"a": 19, "b": 23}')
    assert run.status == "ok", run.error_text()
    shown = "\n".join(saved_outputs(run))
    assert "**MCP call** `add` (server `free`)" in shown
    assert "sum is 42" in shown
    assert "add returned: sum is 42" in shown
    hostile = kernel.execute("%%realtime\ncall hostile {}")
    assert hostile.status == "ok", hostile.error_text()
    for message in hostile.of_type("display_data", "update_display_data", "execute_result"):
        data = message["content"]["data"]
        assert html_in_markdown(data.get("text/markdown", "")) == [], data
    removed = kernel.execute("%realtime mcp remove free")
    assert removed.status == "ok", removed.error_text()


def test_a_blocking_cell_asks_and_a_click_lets_the_service_run_the_call(kernel):
    added = kernel.execute("%realtime mcp add ask {URL} --approve add")
    assert added.status == "ok", added.error_text()
    client = kernel.client
    msg_id = client.execute('%%realtime\ncall add {"a": 5, "b": 6}')
    approve_ids: list[str] = []
    clicked: list[str] = []

    def click_approve(message):
        content = message["content"]
        if message["msg_type"] == "comm_open":
            if content["data"]["state"].get("description") == "Approve":
                approve_ids.append(content["comm_id"])
        elif (
            message["msg_type"] == "display_data"
            and approve_ids
            and not clicked
            and WIDGET_VIEW in content["data"]
        ):
            click(kernel, approve_ids[-1])
            clicked.append(approve_ids[-1])

    run = collect(kernel, msg_id, on_message=click_approve, timeout=within(60))
    assert run.status == "ok", run.error_text()
    assert clicked
    shown = "\n".join(saved_outputs(run))
    assert "approved: the server runs it" in shown
    assert "sum is 11" in shown
    kinds = value(kernel, "[i.type for i in session.items[-5:]]")
    assert "mcp_approval_response" in kinds
    assert "mcp_call" in kinds
    removed = kernel.execute("%realtime mcp remove ask")
    assert removed.status == "ok", removed.error_text()


def test_a_background_cell_asks_in_its_own_area(kernel):
    added = kernel.execute("%realtime mcp add bg {URL} --approve always")
    assert added.status == "ok", added.error_text()
    run = kernel.execute('%%realtime --background\ncall add {"a": 1, "b": 2}')
    assert run.status == "ok", run.error_text()
    [area] = [
        m["content"]["transient"]["display_id"]
        for m in run.of_type("display_data")
        if m["content"]["data"].get("text/plain") == ""
    ]
    buttons: dict[str, str] = {}
    later = iter(lambda: kernel.client.get_iopub_msg(timeout=within(60)), None)
    for message in itertools.chain(run.messages, later):
        content = message["content"]
        if message["msg_type"] == "comm_open":
            description = content["data"]["state"].get("description")
            if description in ("Approve", "Deny"):
                buttons[description] = content["comm_id"]
        if message["msg_type"] == "update_display_data" and WIDGET_VIEW in content["data"]:
            assert content["transient"]["display_id"] == area
            break
    assert set(buttons) == {"Approve", "Deny"}
    click(kernel, buttons["Deny"])
    decided = kernel.wait_for_message(
        lambda m: (
            m["msg_type"] == "update_display_data"
            and m["content"]["transient"]["display_id"] == area
            and "text/markdown" in m["content"]["data"]
        )
    )
    assert "add" in decided["content"]["data"]["text/markdown"]
    done = kernel.execute(
        "r = session.tools.rounds[-1]\nr.wait(30)\nr.follow_up.wait(30)\n"
        "print(json.dumps([r.calls[0].state.value, session.items[-1].text]))"
    )
    state, answer = json.loads(done.stream_text())
    assert state == "denied"
    assert "declined" in answer
    after_request = value(
        kernel,
        "[i.type for i in session.items][max(n for n, i in enumerate(session.items)"
        " if i.type == 'mcp_approval_request'):]",
    )
    assert "mcp_approval_response" in after_request
    assert "mcp_call" not in after_request  # denied: the service never ran it
