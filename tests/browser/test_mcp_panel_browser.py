"""A remote MCP server's approval request asked in the chat panel, in JupyterLab.

The kernel starts a real MCP server (``tests/mcp_servers/remote.py``, Streamable HTTP on
127.0.0.1) and adds it as a server the service runs; the embedded offline server is the
service. A question typed into the panel makes it ask for approval: the panel's bubble shows
Approve / Deny, a click sends the ``mcp_approval_response``, and the call and its result
appear in the panel.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.browser.lab_page import TIMEOUT, expect, open_notebook, page_timeout_ms, run_cell

pytestmark = [pytest.mark.browser, TIMEOUT]

REMOTE = Path(__file__).parent.parent / "mcp_servers" / "remote.py"
NOTEBOOK = "mcp_panel.ipynb"
SETUP = f"""%load_ext rt_notebook
import socket, subprocess, time
import rt_notebook
s = rt_notebook.connect(offline=True)
with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
mcp_process = subprocess.Popen([{sys.executable!r}, {str(REMOTE)!r}, str(port)])
for _ in range(600):
    with socket.socket() as client:
        if client.connect_ex(("127.0.0.1", port)) == 0:
            break
    time.sleep(0.1)
s.add_mcp_server("remote", url=f"http://127.0.0.1:{{port}}/mcp", require_approval=["add"])
print("listed:", [t["name"] for t in s.mcp.listing("remote").tools])"""
CELLS = [SETUP, "%realtime chat", "mcp_process.kill()"]
SETUP_CELL, PANEL_CELL, STOP_CELL = range(len(CELLS))
INLINE = ".jp-Notebook .rt-chat"


@pytest.fixture(scope="module")
def page(lab, browser, artifacts):
    context, page = open_notebook(lab, browser, NOTEBOOK, CELLS, timeout_s=60)
    assert "'add'" in run_cell(page, SETUP_CELL)
    run_cell(page, PANEL_CELL)
    expect(page.locator(f"{INLINE} .rt-chat-status")).to_have_attribute("data-state", "ready")
    yield page
    run_cell(page, STOP_CELL)
    context.close()


def test_an_mcp_approval_is_asked_in_the_panels_bubble(page, artifacts):
    box = page.locator(f"{INLINE} .rt-chat-input")
    box.fill('call add {"a": 2, "b": 3}')
    box.press("Enter")
    row = page.locator(f"{INLINE} .rt-approval")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Run remote.add")
    page.screenshot(path=str(artifacts / "mcp-panel-approval-asked.png"))
    row.get_by_role("button", name="Approve").click()
    panel = page.locator(INLINE)
    # A first call starts the MCP server's own machinery: on a busy machine, seconds.
    expect(panel).to_contain_text("sum is 5", timeout=page_timeout_ms(120))
    expect(panel).to_contain_text("add returned: sum is 5")
    expect(row).to_contain_text("approved")
    status = page.locator(f"{INLINE} .rt-chat-status-line .rt-chat-status")
    expect(status).to_have_attribute("data-state", "ready")
