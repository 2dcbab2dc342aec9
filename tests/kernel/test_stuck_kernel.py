"""Never stuck, in a real kernel (read from IOPub): a server that swallows the restore after
a reconnect, and a server that never confirms a cancel. Each cell ends with one line that
names the cause, ``%realtime status`` tells what is going on, and the Session works again
once the server does."""

from __future__ import annotations

import pytest

from tests.timing import UNIT, within

from .harness import Kernel

pytestmark = pytest.mark.kernel

SETUP = """
%load_ext rt_notebook
import time
import rt_notebook
from rt_notebook.client.session import Timing
from rt_notebook.server import EmbeddedServer
server = EmbeddedServer(pace={pace}).start()
timing = Timing(
    restore_timeout={restore}, backoff_initial={unit}, backoff_max={backoff_max},
    max_attempts=1000,
)
session = rt_notebook.connect(
    base_url=server.base_url, websocket_base_url=server.websocket_base_url,
    api_key=server.token, timing=timing,
)

def wait_for(state, ceiling={wait}):
    deadline = time.monotonic() + ceiling
    while session.status.state != state:
        assert time.monotonic() < deadline, session.status.describe()
        time.sleep(0.01)
"""


def start(pace: float, restore: float = 30.0) -> Kernel:
    kernel = Kernel()
    setup = kernel.execute(
        SETUP.format(pace=pace, restore=restore, unit=UNIT, backoff_max=4 * UNIT, wait=within(60))
    )
    assert setup.status == "ok", setup.error_text()
    return kernel


def one_error_line(run) -> str:
    """The cell's error as the notebook shows it: exactly one line, no traceback."""
    assert run.status == "error"
    (error,) = run.of_type("error")
    (line,) = error["content"]["traceback"]
    assert "\n" not in line.strip(), line
    return line


def test_a_swallowed_restore_fails_the_cell_with_one_line_and_the_session_recovers():
    restore = within(2)
    kernel = start(pace=0.0, restore=restore)
    try:
        first = kernel.execute("%%realtime\nfirst question")
        assert first.status == "ok", first.error_text()
        cut = kernel.execute("server.ignore_client_events('*'); server.drop_connections()")
        assert cut.status == "ok", cut.error_text()
        stuck = kernel.execute("%%realtime\nsecond question", timeout=120)
        line = one_error_line(stuck)
        assert f"did not acknowledge the restored conversation within {restore:g} s" in line
        assert "reconnecting (attempt" in line
        assert "Traceback" not in line
        status = kernel.execute("%realtime status")
        shown = status.of_type("execute_result")[-1]["content"]["data"]["text/markdown"]
        assert "reconnecting (attempt" in shown, shown
        assert "connected" not in shown.split(";")[0], shown
        # The server answers again: the next attempt restores the conversation.
        back = kernel.execute("server.ignore_client_events(); wait_for('ready')")
        assert back.status == "ok", back.error_text()
        third = kernel.execute("%%realtime\nthird question")
        assert third.status == "ok", third.error_text()
        assert "third question" in third.final_markdown()
        texts = kernel.execute("print([i.text for i in session.items if i.role == 'user'])")
        assert texts.stream_text().strip() == "['first question', 'third question']"
    finally:
        kernel.shutdown()


def test_timeout_ends_the_cell_with_one_line_when_the_server_never_confirms_the_cancel():
    kernel = start(pace=0.05)
    try:
        deaf = kernel.execute("server.ignore_client_events('response.cancel')")
        assert deaf.status == "ok", deaf.error_text()
        seconds = within(1)
        text = " ".join(f"word{i}" for i in range(2000))
        run = kernel.execute(f"%%realtime --timeout {seconds:g}\n{text}", timeout=120)
        line = one_error_line(run)
        assert f"no answer within {seconds:g} s, so it was cancelled" in line
        assert "without the server's confirmation in 2 s" in line
        assert "TimeoutError" not in line
        metadata = run.of_type("update_display_data")[-1]["content"]["metadata"]
        assert metadata["rt_notebook"]["status"] == "cancelled"
        # The queue moves on: the abandoned answer cannot block the next one.
        after = kernel.execute("server.ignore_client_events()\n%realtime status")
        assert after.status == "ok", after.error_text()
        nxt = kernel.execute("%%realtime\nafter the timeout")
        assert nxt.status == "ok", nxt.error_text()
        assert "after the timeout" in nxt.final_markdown()
    finally:
        kernel.shutdown()
