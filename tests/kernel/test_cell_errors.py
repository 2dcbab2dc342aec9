"""rt_notebook's errors as the front end shows them: an IOPub ``error`` message in the cell.

JupyterLab, Notebook 7 and nbclient draw a cell's error from IOPub, not from the
``execute_reply``, so every check here reads IOPub: for each way a ``%%realtime`` cell can
fail (a refused connection, a wrong key, an expired ``--timeout``, a server's refusal, a
model backend that fails, a tool round that cannot post its output) the cell shows exactly
one error whose traceback is the one line ``ErrorName: message``; ``%xmode`` chooses a
longer one; nbclient stops a notebook there with the reason in the saved output; the
terminal IPython prints the line.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from tests.chat_standin import MODEL, ChatStandIn, Reply
from tests.timing import PROCESS_WAIT

from .harness import Execution, Kernel

pytestmark = pytest.mark.kernel

TOKEN = "sk-offline-right-token-0123456789"

SETUP = f"""
%load_ext rt_notebook
import os
import rt_notebook
from rt_notebook.server import EmbeddedServer
server = EmbeddedServer(pace=0.0, token={TOKEN!r}).start()
# A server that takes 30 s per word: any short --timeout expires first.
slow_server = EmbeddedServer(pace=30.0).start()
slow = rt_notebook.connect(
    "slow", websocket_base_url=slow_server.websocket_base_url, api_key=slow_server.token
)
fast = rt_notebook.connect(
    "fast", websocket_base_url=server.websocket_base_url, api_key=server.token
)
magics = get_ipython().magics_manager.registry["RealtimeMagics"]
"""


@pytest.fixture(scope="module")
def standin() -> Iterator[ChatStandIn]:
    with ChatStandIn() as server:
        yield server


@pytest.fixture(scope="module")
def kernel(standin: ChatStandIn) -> Iterator[Kernel]:
    kernel = Kernel()
    setup = kernel.execute(SETUP)
    assert setup.status == "ok", setup.error_text()
    yield kernel
    kernel.shutdown()


def shown_errors(run: Execution) -> list[list[str]]:
    """The traceback lines of each IOPub ``error`` message (what the cell draws)."""
    return [message["content"]["traceback"] for message in run.of_type("error")]


def one_line_error(run: Execution) -> str:
    """The cell's one error, which must be one line ``ErrorName: message``; that line."""
    errors = run.of_type("error")
    assert len(errors) == 1, f"{len(errors)} error outputs: {shown_errors(run)}"
    content = errors[0]["content"]
    (line,) = content["traceback"]
    assert "\n" not in line
    assert line == f"{content['ename']}: {content['evalue']}"
    assert run.status == "error"  # what makes "Run All" and nbclient stop
    return line


def configure(kernel: Kernel, code: str) -> None:
    run = kernel.execute(code)
    assert run.status == "ok", run.error_text()


@pytest.fixture
def magics_reset(kernel: Kernel) -> Iterator[None]:
    yield
    configure(
        kernel,
        "magics.url = ''\nmagics.chat_base_url = ''\nmagics.chat_model = ''\n"
        "os.environ.pop('OPENAI_API_KEY', None)",
    )


BODY = "a body that must not be echoed back"


def test_a_refused_connection_shows_in_the_cell(kernel: Kernel, magics_reset: None) -> None:
    configure(kernel, "magics.url = 'ws://127.0.0.1:9/v1'")
    line = one_line_error(kernel.execute(f"%%realtime --session refused\n{BODY}"))
    assert line.startswith("RealtimeConnectionError: could not connect to ws://127.0.0.1:9/v1")
    assert BODY not in line


def test_a_wrong_key_shows_in_the_cell(kernel: Kernel, magics_reset: None) -> None:
    configure(
        kernel,
        "os.environ['OPENAI_API_KEY'] = 'sk-wrong-key-0123456789abcdef'\n"
        "magics.url = server.websocket_base_url",
    )
    line = one_line_error(kernel.execute(f"%%realtime --session wrong_key\n{BODY}"))
    assert line.startswith(
        "RealtimeConnectionError: invalid_api_key: Incorrect API key provided. "
        "Use the token this offline server printed"
    )
    assert "sk-wrong-key" not in line


def test_an_expired_timeout_shows_in_the_cell(kernel: Kernel) -> None:
    line = one_line_error(kernel.execute(f"%%realtime --session slow --timeout 0.5\n{BODY}"))
    assert line == (
        "RealtimeError: no answer within 0.5 s, so it was cancelled "
        "(--timeout SECONDS waits longer)"
    )


def test_a_server_refusal_shows_in_the_cell(kernel: Kernel) -> None:
    configure(
        kernel,
        "from rt_notebook.errors import ServerError\n"
        "real_create = fast.create_response\n"
        "def refuse_once(**kw):\n"
        "    fast.create_response = real_create\n"
        "    raise ServerError({'code': 'refused_once', 'message': 'try again later'})\n"
        "fast.create_response = refuse_once",
    )
    line = one_line_error(kernel.execute(f"%%realtime --session fast --after root\n{BODY}"))
    assert line == "ServerError: refused_once: try again later"


def test_a_real_server_refusal_from_python_shows_in_the_cell(kernel: Kernel) -> None:
    """Not only magics: a Session call in plain Python that the server refuses (here an
    empty audio buffer committed) shows its one line too."""
    line = one_line_error(kernel.execute("fast.clear_audio()\nfast.commit_audio()"))
    assert line.startswith("ServerError: input_audio_buffer_commit_empty: ")


def test_a_failing_model_backend_shows_in_the_cell_and_its_footer(
    kernel: Kernel, standin: ChatStandIn, magics_reset: None
) -> None:
    standin.replies.append(Reply(status=500, error="the GPU caught fire"))
    configure(kernel, f"magics.chat_base_url = {standin.base_url!r}\nmagics.chat_model = {MODEL!r}")
    run = kernel.execute(f"%%realtime --session backend\n{BODY}")
    line = one_line_error(run)
    where = f"the chat endpoint {standin.base_url}"
    assert line.startswith(f"RealtimeError: the answer failed: {where}")
    assert "failed (HTTP 500)" in line
    assert "the GPU caught fire" in line
    footer = run.final_markdown().rsplit("\n\n", 1)[-1]
    assert "failed (the chat endpoint" in footer
    assert "the GPU caught fire" in footer


def test_a_wrong_local_model_name_says_why_in_the_cell_and_the_footer(
    kernel: Kernel, standin: ChatStandIn, magics_reset: None
) -> None:
    configure(
        kernel,
        f"magics.chat_base_url = {standin.base_url!r}\nmagics.chat_model = 'no-such-model'",
    )
    run = kernel.execute(f"%%realtime --session wrong_model\n{BODY}")
    line = one_line_error(run)
    why = (
        "has no model 'no-such-model' or no /chat/completions (HTTP 404): check the model "
        "name and that the URL ends in /v1"
    )
    assert why in line
    footer = run.final_markdown().rsplit("\n\n", 1)[-1]
    assert footer.startswith(f"*local model no-such-model via {standin.base_url} · failed (")
    assert why.replace("'", "") in footer.replace("'", "").replace("\\", "")
    assert "$0" not in footer  # nothing was used: no cost shown


def test_a_tool_round_that_cannot_post_shows_in_the_cell(
    kernel: Kernel, standin: ChatStandIn
) -> None:
    """The tool stops the server: the round's output cannot be posted, and the cell says
    why instead of ending quietly."""
    standin.replies.append(Reply(calls=[("stopper", "{}")]))
    configure(
        kernel,
        "from rt_notebook.server import ChatResponder\n"
        f"responder = ChatResponder({standin.base_url!r}, {MODEL!r})\n"
        "tool_server = EmbeddedServer(responder=responder, pace=0).start()\n"
        "from rt_notebook.client.session import Timing\n"
        "tooled = rt_notebook.connect(\n"
        "    'tooled', websocket_base_url=tool_server.websocket_base_url,"
        " api_key=tool_server.token,\n"
        "    timing=Timing(backoff_initial=0.05, backoff_max=0.1, max_attempts=2),\n"
        ")\n"
        "@tooled.tool\n"
        "def stopper() -> str:\n"
        "    '''Stop the server.'''\n"
        "    tool_server.stop()\n"
        "    return 'stopped'\n",
    )
    line = one_line_error(kernel.execute(f"%%realtime --session tooled\n{BODY}"))
    assert line.startswith("RealtimeConnectionError: gave up reconnecting after 2 attempts")


def test_xmode_verbose_or_context_shows_the_traceback_the_user_chose(kernel: Kernel) -> None:
    cell = "%%realtime --session slow --timeout 0.2\nanything"
    try:
        for mode in ("Verbose", "Context"):
            configure(kernel, f"%xmode {mode}")
            (traceback,) = shown_errors(kernel.execute(cell))
            text = "".join(traceback)
            assert len(traceback) > 1, (mode, traceback)
            assert "Traceback" in text
            assert "no answer within 0.2 s" in text
        configure(kernel, "%xmode Minimal")
        one_line_error(kernel.execute(cell))
    finally:
        configure(kernel, "%xmode Minimal")


def test_xmode_after_reload_ext_still_counts_as_chosen() -> None:
    """``%reload_ext rt_notebook`` keeps noting ``%xmode`` (a fresh kernel: nothing chosen)."""
    fresh = Kernel()
    try:
        configure(fresh, "%load_ext rt_notebook\nfrom rt_notebook.errors import RealtimeError")
        one_line_error(fresh.execute("raise RealtimeError('first')"))
        configure(fresh, "%reload_ext rt_notebook")
        one_line_error(fresh.execute("raise RealtimeError('second')"))
        configure(fresh, "%xmode Context")  # IPython's default, typed: the user chose it
        (traceback,) = shown_errors(fresh.execute("raise RealtimeError('third')"))
        assert len(traceback) > 1
        assert "Traceback" in "".join(traceback)
    finally:
        fresh.shutdown()


def test_tb_still_shows_the_whole_traceback(kernel: Kernel) -> None:
    one_line_error(kernel.execute("%%realtime --session slow --timeout 0.2\nanything"))
    configure(kernel, "%xmode Plain")  # whatever the mode, as long as it has tracebacks
    (traceback,) = shown_errors(kernel.execute("%tb"))
    assert len(traceback) > 1
    assert "no answer within 0.2 s" in "".join(traceback)


def test_nbclient_stops_the_notebook_with_the_reason_in_the_saved_output(tmp_path: Path) -> None:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    cells = [
        "%load_ext rt_notebook\n%config RealtimeMagics.url = 'ws://127.0.0.1:9/v1'",
        f"%%realtime\n{BODY}",
        "print('this cell must not run')",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    client = NotebookClient(notebook, timeout=PROCESS_WAIT, kernel_name="python3")
    with pytest.raises(CellExecutionError) as stopped:
        client.execute(cwd=str(tmp_path))
    assert "could not connect to ws://127.0.0.1:9/v1" in str(stopped.value)
    path = tmp_path / "stopped.ipynb"
    nbformat.write(notebook, str(path))
    saved = nbformat.read(str(path), as_version=4)
    (error,) = [o for o in saved.cells[1].outputs if o.output_type == "error"]
    (line,) = error.traceback
    assert line.startswith("RealtimeConnectionError: could not connect to ws://127.0.0.1:9/v1")
    assert saved.cells[2].outputs == []


def test_the_terminal_ipython_prints_the_line(tmp_path: Path) -> None:
    script = tmp_path / "refused.ipy"
    script.write_text(
        "%load_ext rt_notebook\n"
        "%config RealtimeMagics.url = 'ws://127.0.0.1:9/v1'\n"
        "%realtime connect\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "IPython", "--colors=NoColor", "--no-banner", str(script)],
        capture_output=True,
        check=False,  # what it printed is the point, not how it exited
        text=True,
        timeout=PROCESS_WAIT,
        cwd=tmp_path,
    )
    printed = done.stdout + done.stderr
    lines = [line for line in printed.splitlines() if "RealtimeConnectionError" in line]
    assert lines == [lines[0]], printed
    assert lines[0].startswith("RealtimeConnectionError: could not connect to ws://127.0.0.1:9/v1")
    assert "Traceback" not in printed


def test_an_incomplete_answer_says_why_in_its_footer_and_is_not_an_error(kernel: Kernel) -> None:
    run = kernel.execute("%%realtime --session fast --max-output-tokens 2\nsay many words please")
    assert run.status == "ok", shown_errors(run)
    assert shown_errors(run) == []
    footer = run.final_markdown().rsplit("\n\n", 1)[-1]
    assert " · incomplete (max_output_tokens) · " in footer, footer


def test_a_verbose_traceback_shows_no_key(kernel: Kernel) -> None:
    """Verbose tracebacks show the variables of each line they show: here the cell's own
    ``key``, which the Session was given and the server refused; it is scrubbed."""
    key = "sk-verbose-wrong-key-0123456789abcdef"
    try:
        configure(kernel, "%xmode Verbose")
        run = kernel.execute(
            f"key = {key!r}\n"
            "rt_notebook.connect('verbose_key', websocket_base_url=server.websocket_base_url,"
            " api_key=key)"
        )
    finally:
        configure(kernel, "%xmode Minimal")
    (traceback,) = shown_errors(run)
    text = "".join(traceback)
    assert "invalid_api_key" in text
    assert len(traceback) > 1  # the whole traceback, with variables
    assert "key" in text
    assert key not in text
    assert key[:20] not in text
