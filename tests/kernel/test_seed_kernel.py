"""The classic beta-shaped connection code in a real kernel cell (top-level await) on the
kernel's GA Session, and ``%realtime status`` telling the truth after a drop."""

from __future__ import annotations

import pytest

from .harness import Kernel

pytestmark = pytest.mark.kernel

# Outcomes are read from IOPub (errors, streams), not from the shell reply: the harness can
# read a stale kernel_info_reply there when the kernel starts slowly.

SETUP = """
%load_ext rt_notebook
import rt_notebook
from rt_notebook.server import EmbeddedServer
from rt_notebook.client.session import Timing
server = EmbeddedServer(pace=0.0, dialect="ga")
server.start()
session = rt_notebook.connect(
    base_url=server.base_url, websocket_base_url=server.websocket_base_url,
    api_key=server.token, timing=Timing(backoff_initial=0.05),
)
"""

# OpenAI's older example, unchanged but for the line that opens the connection.
CLASSIC = """
async with session.connection(shape="beta") as connection:
    await connection.session.update(session={"modalities": ["text"]})
    await connection.conversation.item.create(
        item={
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Say hello!"}],
        }
    )
    await connection.response.create()
    async for event in connection:
        if event.type == "response.text.delta": print(event.delta, end="")
        elif event.type == "response.done": break
"""


@pytest.fixture(scope="module")
def kernel():
    kernel = Kernel()
    setup = kernel.execute(SETUP)
    assert not setup.of_type("error"), setup.error_text()
    yield kernel
    kernel.shutdown()


def test_the_classic_example_streams_on_the_kernels_ga_session(kernel):
    assert kernel.execute("print(session.dialect.value)").stream_text() == "ga\n"
    run = kernel.execute(CLASSIC)
    assert not run.of_type("error"), run.error_text()
    assert run.stream_text() == "Echo: Say hello!"
    # The cell's turn is part of the conversation the magics see.
    run = kernel.execute("%%realtime\nand now a cell")
    assert not run.of_type("error"), run.error_text()
    texts = kernel.execute("print([i.text for i in session.items])").stream_text()
    assert "'Say hello!', 'Echo: Say hello!', 'and now a cell'" in texts


def test_status_reports_the_restore_after_a_drop(kernel):
    run = kernel.execute(
        "server.drop_connections()\nprint(session.ask('after the drop').wait(30).text)\n"
    )
    assert not run.of_type("error"), run.error_text()
    assert "Echo: after the drop" in run.stream_text()
    (result,) = kernel.execute("%realtime status").of_type("execute_result")
    status = result["content"]["data"]["text/markdown"]
    assert "connected" in status
    assert "restored 4 items" in status
