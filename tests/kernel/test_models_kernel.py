"""Model and dialect currency in a real kernel, as a user sees it: the warning a deprecated
model gets in ``%realtime status`` and under a cell's answer, the one line a retired
dialect gets, "no price for MODEL" in a footer, and a status without a stale reason."""

from __future__ import annotations

import pytest

from .harness import Kernel

pytestmark = pytest.mark.kernel

SETUP = """
%load_ext rt_notebook
import rt_notebook
from rt_notebook.server import EmbeddedServer
server = EmbeddedServer(pace=0.0)
server.start()
"""


@pytest.fixture(scope="module")
def kernel():
    kernel = Kernel()
    setup = kernel.execute(SETUP)
    assert setup.status == "ok", setup.error_text()
    yield kernel
    kernel.shutdown()


def _markdown_result(execution) -> str:
    results = execution.of_type("execute_result")
    assert results, execution.error_text()
    return results[-1]["content"]["data"]["text/markdown"]


def test_a_deprecated_model_is_warned_in_status_and_under_each_answer(kernel):
    setup = kernel.execute(
        "%config RealtimeMagics.model = 'gpt-realtime'\n"
        "%config RealtimeMagics.url = server.websocket_base_url\n"
        "import os; os.environ['OPENAI_API_KEY'] = server.token"
    )
    assert setup.status == "ok", setup.error_text()
    answer = kernel.execute("%%realtime --session old\nhello")
    assert answer.status == "ok", answer.error_text()
    shown = answer.final_markdown()
    warning = [line for line in shown.splitlines() if "deprecated" in line]
    assert len(warning) == 1, shown
    assert "gpt-realtime" in warning[0]
    assert "2027-01-20" in warning[0]
    assert "gpt-realtime-2.1" in warning[0]  # the replacement
    # Not OpenAI's own service: no built-in price applies, and the footer says so.
    assert "no price for gpt-realtime" in shown

    status = _markdown_result(kernel.execute("%realtime status --session old"))
    lines = [line for line in status.splitlines() if "deprecated" in line]
    assert len(lines) == 1, status
    assert "2027-01-20" in lines[0]
    assert "1 response ·" in status  # not "1 responses"

    kernel.execute("%config RealtimeMagics.model = 'gpt-realtime-2.1'")
    current = kernel.execute("%%realtime --session new\nhello")
    assert current.status == "ok", current.error_text()
    assert "deprecated" not in current.final_markdown()
    assert "deprecated" not in _markdown_result(kernel.execute("%realtime status --session new"))
    kernel.execute(
        "%config RealtimeMagics.url = ''\ndel os.environ['OPENAI_API_KEY']\n"
        "for name in ('old', 'new'): rt_notebook.get_session(name).close()"
    )


def test_beta_is_refused_in_one_line_before_connecting_to_openai(kernel):
    kernel.execute(
        "import os; os.environ['OPENAI_API_KEY'] = 'sk-test-not-a-real-key-000000'\n"
        "%config RealtimeMagics.dialect = 'beta'"
    )
    refused = kernel.execute("%%realtime --session openai_beta\nhello")
    kernel.execute("%config RealtimeMagics.dialect = 'ga'\ndel os.environ['OPENAI_API_KEY']")
    assert refused.status == "error"
    shown = refused.shown_error()
    assert "retired" in shown
    assert "May 2026" in shown
    assert 'dialect="ga"' in shown
    assert "Traceback" not in shown
    assert "sk-test-not-a-real-key" not in shown
    assert len([line for line in shown.splitlines() if line.strip()]) == 1, shown


@pytest.mark.parametrize("how", ["connect", "cell"])
def test_a_server_refusing_beta_says_to_use_ga(kernel, how):
    if how == "connect":
        refused = kernel.execute(
            "rt_notebook.connect('refused', websocket_base_url=server.websocket_base_url, "
            "api_key=server.token, dialect='beta')"
        )
    else:
        kernel.execute(
            "%config RealtimeMagics.url = server.websocket_base_url\n"
            "%config RealtimeMagics.dialect = 'beta'\n"
            "import os; os.environ['OPENAI_API_KEY'] = server.token"
        )
        refused = kernel.execute("%%realtime --session refused_cell\nhello")
        kernel.execute(
            "%config RealtimeMagics.url = ''\n%config RealtimeMagics.dialect = 'ga'\n"
            "del os.environ['OPENAI_API_KEY']"
        )
    assert refused.status == "error"
    shown = refused.shown_error()
    assert "beta_api_shape_disabled" in shown
    assert "retired" in shown
    assert 'dialect="ga"' in shown
    assert "OpenAI-Beta" not in shown  # a header the user never set
    assert len([line for line in shown.splitlines() if line.strip()]) == 1, shown


def test_a_status_after_a_reconnect_has_no_stale_reason(kernel):
    run = kernel.execute(
        "from rt_notebook.client.session import Timing\n"
        "s = rt_notebook.connect('drop', websocket_base_url=server.websocket_base_url, "
        "api_key=server.token, timing=Timing(backoff_initial=0.05))\n"
        "s.ask('before').wait(60)\n"
        "opened = server.connections_opened\n"
        "server.drop_connections()\n"
        "import time\n"
        "deadline = time.monotonic() + 60\n"
        "while server.connections_opened == opened and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "s.ask('after').wait(60)\n"
        "print(repr(s.status.state), repr(s.status.reason))"
    )
    assert run.status == "ok", run.error_text()
    assert run.stream_text().strip() == "'ready' None"


def test_a_hostile_model_name_stays_inert_in_no_price_for(kernel):
    hostile = "<img src=x onerror=alert(1)>"
    run = kernel.execute(
        f"h = rt_notebook.connect('hostile', model={hostile!r}, "
        "websocket_base_url=server.websocket_base_url, api_key=server.token)\n"
        "h.ask('hi').wait(60).status"
    )
    assert run.status == "ok", run.error_text()
    status = _markdown_result(kernel.execute("%realtime status --session hostile"))
    assert "no price for" in status
    assert "<img" not in status
    answer = kernel.execute("%%realtime --session hostile\nhello")
    assert answer.status == "ok", answer.error_text()
    footer = answer.final_markdown()
    assert "no price for" in footer
    assert "<img" not in footer
    kernel.execute("h.close()")
