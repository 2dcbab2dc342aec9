"""%%realtime --image and --figure in a real kernel: what IOPub carries (embedded server)."""

from __future__ import annotations

import json

import pytest

from .harness import Kernel

pytestmark = pytest.mark.kernel

SETUP = """
import os
os.environ["MPLBACKEND"] = "Agg"
%load_ext rt_notebook
import rt_notebook
from rt_notebook.server import EmbeddedServer
server = EmbeddedServer(pace=0.0)
server.start()
%config RealtimeMagics.url = server.websocket_base_url
os.environ['OPENAI_API_KEY'] = server.token
"""


@pytest.fixture(scope="module")
def kernel():
    kernel = Kernel()
    setup = kernel.execute(SETUP)
    assert setup.status == "ok", setup.error_text()
    yield kernel
    kernel.shutdown()


def shown(run) -> str:
    """Everything the front end was sent, as one string."""
    return json.dumps([m["content"] for m in run.messages], ensure_ascii=False)


def test_image_from_a_variable_a_file_and_out_n(kernel, tmp_path):
    path = tmp_path / "dot.png"
    make = kernel.execute(
        "from PIL import Image\n"
        "import numpy as np\n"
        f"Image.new('RGB', (64, 32), 'blue').save({str(path)!r})\n"
        "pic = np.zeros((48, 80, 3), dtype=np.uint8)\n"
    )
    assert make.status == "ok", make.error_text()
    returned = kernel.execute("open(" + repr(str(path)) + ", 'rb').read()")
    assert returned.status == "ok", returned.error_text()
    number = returned.of_type("execute_result")[0]["content"]["execution_count"]
    run = kernel.execute(
        f"%%realtime --image pic --image {path} --image Out[{number}]\nwhat is this?"
    )
    assert run.status == "ok", run.error_text()
    assert run.final_markdown().splitlines()[0] == (
        "Echo: what is this? [image 80\u00d748 PNG] [image 64\u00d732 PNG] [image 64\u00d732 PNG]"
    )
    events = kernel.execute("%realtime events 50")
    assert events.status == "ok", events.error_text()
    assert "image 80\u00d748 PNG" in shown(events)
    assert "base64" not in shown(events)
    history = kernel.execute("%realtime history")
    assert history.status == "ok", history.error_text()
    text = shown(history)
    assert "image 80\u00d748 PNG" in text
    assert "base64" not in text


def test_figure_takes_the_figure_pyplot_holds(kernel):
    plot = kernel.execute(
        "import matplotlib.pyplot as plt\nplt.figure(figsize=(3, 2), dpi=100)\nplt.plot([1, 2]);"
    )
    assert plot.status == "ok", plot.error_text()
    run = kernel.execute("%%realtime --figure --image-detail low\nwhat does this plot say?")
    assert run.status == "ok", run.error_text()
    assert run.final_markdown().splitlines()[0] == (
        "Echo: what does this plot say? [image 300\u00d7200 PNG]"
    )
    assert "base64" not in shown(run)


def test_figure_after_an_inline_plot_cell_that_closed_it():
    """The inline backend draws and closes a cell's figures when it ends: --figure in the
    next cell still sends the figure that cell drew."""
    kernel = Kernel()
    try:
        setup = kernel.execute(SETUP + "\n%matplotlib inline")
        assert setup.status == "ok", setup.error_text()
        refused = kernel.execute("%%realtime --figure\nq")
        assert refused.status == "error"
        assert "holds no figure" in refused.error_text()
        plot = kernel.execute(
            "import matplotlib.pyplot as plt\n"
            "plt.figure(figsize=(4, 2), dpi=100)\nplt.plot([3, 1, 2]);"
        )
        assert plot.status == "ok", plot.error_text()
        assert any("image/png" in m["content"]["data"] for m in plot.of_type("display_data"))
        closed = kernel.execute("print(plt.get_fignums())")
        assert closed.stream_text().strip() == "[]"
        run = kernel.execute("%%realtime --figure\nwhat does this plot say?")
        assert run.status == "ok", run.error_text()
        assert run.final_markdown().splitlines()[0] == (
            "Echo: what does this plot say? [image 400\u00d7200 PNG]"
        )
    finally:
        kernel.shutdown()


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("%%realtime --image answer\nq", "int is not an image"),
        ("%%realtime --image https://example.com/a.png\nq", "remote URLs are not fetched"),
        ("%%realtime --image /no/such.png\nq", "no such file"),
        ("%%realtime --image-detail low\nq", "--image-detail applies to images"),
        ("%%realtime --role system --image pic\nq", "images go in user messages"),
    ],
)
def test_a_refused_image_is_one_line_and_sends_nothing(kernel, cell, message):
    kernel.execute("answer = 42")
    before = kernel.execute("print(len(rt_notebook.connect().items))").stream_text()
    run = kernel.execute(cell)
    assert run.status == "error"
    assert message in run.error_text()
    assert "Traceback" not in run.shown_error()
    after = kernel.execute("print(len(rt_notebook.connect().items))").stream_text()
    assert after == before
