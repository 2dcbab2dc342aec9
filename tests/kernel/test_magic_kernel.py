"""%%realtime in a real IPython kernel against the embedded offline server."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from tests.timing import PROCESS_WAIT

from .harness import Kernel
from .page import page_ready

pytestmark = pytest.mark.kernel

SETUP = """
%load_ext rt_notebook
import rt_notebook
from rt_notebook.server import EmbeddedServer
server = EmbeddedServer(pace={pace})
server.start()
session = rt_notebook.connect(
    base_url=server.base_url, websocket_base_url=server.websocket_base_url, api_key=server.token
)
"""


@pytest.fixture(scope="module")
def kernel():
    kernel = Kernel()
    setup = kernel.execute(SETUP.format(pace=0.0))
    assert setup.status == "ok", setup.error_text()
    yield kernel
    kernel.shutdown()


def test_answer_streams_and_the_final_text_is_exact(kernel):
    run = kernel.execute("%%realtime\nHello *there* from a cell")
    assert run.status == "ok", run.error_text()
    final = run.final_markdown()
    assert "Hello *there* from a cell" in final
    metadata = run.of_type("update_display_data")[-1]["content"]["metadata"]["rt_notebook"]
    assert metadata["status"] == "completed"
    assert metadata["response_id"].startswith("resp_")
    assert metadata["usage"]["total_tokens"] > 0


def test_conversation_persists_across_cells(kernel):
    kernel.execute("%%realtime\nfirst message")
    kernel.execute("%%realtime\nsecond message")
    run = kernel.execute("print([i.text for i in session.items if i.role == 'user'][-2:])")
    assert "['first message', 'second message']" in run.stream_text()


def test_out_binds_the_result(kernel):
    kernel.execute("%%realtime --out answer\nbind me")
    run = kernel.execute(
        "print(answer.status, answer.id.startswith('resp_'), 'bind me' in answer.text)"
    )
    assert run.stream_text().strip() == "completed True True"


def test_server_error_is_one_line_and_the_next_cell_works(kernel):
    # A refusal only the server can make: an item id it already has.
    code = "session.add_item({'id': 'item_twice', 'type': 'message', 'role': 'user', "
    code += "'content': [{'type': 'input_text', 'text': 'x'}]})"
    assert kernel.execute(code).status == "ok"
    run = kernel.execute(code)
    assert run.status == "error"
    assert run.error_text().startswith("ServerError: ")
    assert "item_twice" in run.error_text()
    shown = run.shown_error().strip()
    assert shown.count("\n") == 0, shown  # no traceback
    assert kernel.execute("%%realtime\nstill fine").final_markdown().count("still fine") == 1


def test_unknown_after_is_refused_before_sending(kernel):
    run = kernel.execute("%%realtime --after item_does_not_exist\nmisplaced")
    assert run.status == "error"
    assert "UsageError" in run.error_text()
    assert "item_does_not_exist" in run.error_text()
    texts = kernel.execute("print([i.text for i in session.items])").stream_text()
    assert "misplaced" not in texts


def test_ten_thousand_deltas_arrive_complete_with_bounded_iopub(kernel):
    words = " ".join(f"w{i}" for i in range(10_000))
    kernel.execute(f"long_text = {words!r}")
    run = kernel.execute("%%realtime --out big\n{long_text}", timeout=120)
    assert run.status == "ok", run.error_text()
    assert words in run.final_markdown()
    updates = run.of_type("update_display_data")
    # ~10,000 deltas; paced updates stay far below one per delta.
    assert 1 <= len(updates) <= 200
    count = kernel.execute("print(len(big.text.split()))").stream_text().strip()
    assert int(count) >= 10_000


def test_interrupt_cancels_and_the_next_cell_works():
    kernel = Kernel()
    try:
        assert kernel.execute(SETUP.format(pace=0.05)).status == "ok"
        page_ready(kernel)  # answers stream to the page through their widget
        text = " ".join(f"word{i}" for i in range(400))
        seen = []

        def interrupt_once_streaming(message):
            if message["msg_type"] == "comm_msg" and not seen:  # the answer's first text
                seen.append(message)
                kernel.interrupt()

        run = kernel.execute(f"%%realtime\n{text}", on_message=interrupt_once_streaming)
        assert seen, "never saw the answer start streaming"
        metadata = run.of_type("update_display_data")[-1]["content"]["metadata"]
        assert metadata["rt_notebook"]["status"] == "cancelled"
        assert text not in run.final_markdown()
        after = kernel.execute("%%realtime\nafter the interrupt")
        assert after.status == "ok", after.error_text()
        assert "after the interrupt" in after.final_markdown()
    finally:
        kernel.shutdown()


def test_saved_notebook_holds_the_full_answer_and_no_secret(tmp_path, monkeypatch):
    from rt_notebook.server import EmbeddedServer

    secret = "sk-test-secret-0123456789abcdef"
    with EmbeddedServer(token=secret, pace=0.01) as server:
        monkeypatch.setenv("RT_TEST_URL", server.websocket_base_url)
        monkeypatch.setenv("RT_TEST_KEY", secret)
        setup = (
            "%load_ext rt_notebook\nimport os, rt_notebook\n"
            "session = rt_notebook.connect(websocket_base_url=os.environ['RT_TEST_URL'],"
            " api_key=os.environ['RT_TEST_KEY'])\nsession"
        )
        cells = [
            nbformat.v4.new_code_cell(setup),
            nbformat.v4.new_code_cell("%%realtime\nSave *this* answer, please."),
        ]
        notebook = nbformat.v4.new_notebook(cells=cells)
        NotebookClient(notebook, timeout=PROCESS_WAIT, kernel_name="python3").execute()
    path = tmp_path / "saved.ipynb"
    nbformat.write(notebook, path)
    saved = nbformat.read(path, as_version=4)
    outputs = saved.cells[1].outputs
    markdown = [o for o in outputs if "text/markdown" in o.get("data", {})]
    assert markdown, outputs
    assert "Save *this* answer, please." in markdown[-1]["data"]["text/markdown"]
    assert markdown[-1]["metadata"]["rt_notebook"]["status"] == "completed"
    assert "Session" in str(saved.cells[0].outputs)  # the repr was saved...
    assert secret not in path.read_text()  # ...and the key never was
