"""The chat panel's output in a real kernel: when the panel closes, or the kernel shuts down,
its output becomes the transcript as Markdown (by display id), so a saved notebook shows the
conversation with no widget state needed."""

from __future__ import annotations

import pytest

from .harness import Kernel

pytestmark = pytest.mark.kernel

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
SETUP = """
%load_ext rt_notebook
import rt_notebook
s = rt_notebook.connect(offline=True)
"""


@pytest.fixture
def kernel():
    kernel = Kernel()
    yield kernel
    kernel.shutdown()


def shown_panel(kernel: Kernel, name: str) -> str:
    """Show a panel (bound to ``name``), send one message; return its output's display id."""
    assert kernel.execute(SETUP).status == "ok"
    run = kernel.execute(f"{name} = rt_notebook.ChatPanel(s)\n{name}.show()")
    assert run.status == "ok", run.error_text()
    [shown] = [m for m in run.of_type("display_data") if WIDGET_VIEW in m["content"]["data"]]
    sent = kernel.execute(f"{name}.send('keep *this* <b>safe</b>').result(30).wait(30)")
    assert sent.status == "ok", sent.error_text()
    return str(shown["content"]["transient"]["display_id"])


def transcript_update(display_id: str):
    def matches(message) -> bool:
        content = message["content"]
        return (
            message["msg_type"] == "update_display_data"
            and content.get("transient", {}).get("display_id") == display_id
            and "text/markdown" in content["data"]
        )

    return matches


def test_closing_a_shown_panel_leaves_its_transcript(kernel):
    display_id = shown_panel(kernel, "panel")
    run = kernel.execute("panel.close()", any_parent=True)
    assert run.status == "ok", run.error_text()
    [update] = [m for m in run.messages if transcript_update(display_id)(m)]
    markdown = update["content"]["data"]["text/markdown"]
    assert markdown.startswith("**Realtime chat** · session `default` · closed")
    assert "**You:**\n\nkeep *this* &lt;b>safe&lt;/b>" in markdown
    assert "**Assistant:**" in markdown
    assert WIDGET_VIEW not in update["content"]["data"]


def test_a_shown_panel_leaves_its_transcript_when_the_kernel_shuts_down(kernel):
    display_id = shown_panel(kernel, "panel")
    kernel.manager.request_shutdown()  # what the front end's shutdown (and restart) sends
    update = kernel.wait_for_message(transcript_update(display_id), timeout=30)
    assert "keep *this*" in update["content"]["data"]["text/markdown"]
