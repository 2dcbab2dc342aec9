"""Every ``--image`` source in a real kernel, as a user writes it: what the embedded server
says it got (the answer names each image's size and format), a 20-megapixel image scaled
down, a corrupt PNG file and a variable that is not an image refused in one line with
nothing sent, and what history, ``%realtime events`` and a transcript show (labels, never
base64)."""

from __future__ import annotations

import json

import pytest

from .harness import Kernel

pytestmark = pytest.mark.kernel

SETUP = """
import os
os.environ["MPLBACKEND"] = "Agg"
%load_ext rt_notebook
import io
import numpy as np
import rt_notebook
from IPython.display import Image as DisplayImage
from PIL import Image
from rt_notebook.server import EmbeddedServer
server = EmbeddedServer(pace=0.0)
server.start()
%config RealtimeMagics.url = server.websocket_base_url
os.environ['OPENAI_API_KEY'] = server.token

def encoded(width, height, fmt, colour=(200, 30, 30)):
    buffer = io.BytesIO()
    Image.new('RGB', (width, height), colour).save(buffer, format=fmt)
    return buffer.getvalue()

pil_rgba = Image.new('RGBA', (30, 20), (0, 0, 0, 0))
gray = np.linspace(0, 1, 48 * 64).reshape(48, 64)
rgb = np.zeros((10, 20, 3), dtype=np.uint8)
rgba = np.full((12, 24, 4), 255, dtype=np.uint8)
png = encoded(40, 30, 'PNG')
jpeg = encoded(32, 24, 'JPEG')
shown = DisplayImage(data=encoded(16, 8, 'PNG'))  # its _repr_png_ returns base64 text
shown_sized = DisplayImage(data=encoded(16, 8, 'JPEG'), width=100)  # (text, metadata)
big = np.random.default_rng(0).integers(0, 255, (3648, 5472, 3), np.uint8)  # 20 MP
not_an_image = {'a': 1}
"""


@pytest.fixture(scope="module")
def kernel():
    kernel = Kernel()
    setup = kernel.execute(SETUP)
    assert setup.status == "ok", setup.error_text()
    yield kernel
    kernel.shutdown()


def shown(run) -> str:
    return json.dumps([m["content"] for m in run.messages], ensure_ascii=False)


def items(kernel) -> str:
    return kernel.execute("print(len(rt_notebook.connect().items))").stream_text()


@pytest.mark.parametrize(
    ("source", "label"),
    [
        ("pil_rgba", "image 30\u00d720 PNG"),
        ("gray", "image 64\u00d748"),
        ("rgb", "image 20\u00d710"),
        ("rgba", "image 24\u00d712"),
        ("png", "image 40\u00d730 PNG"),
        ("jpeg", "image 32\u00d724 JPEG"),
        ("shown", "image 16\u00d78 PNG"),
        ("shown_sized", "image 16\u00d78 JPEG"),
    ],
)
def test_each_source_type_reaches_the_server(kernel, source, label):
    run = kernel.execute(f"%%realtime --image {source}\nwhat is this?")
    assert run.status == "ok", run.error_text()
    assert run.final_markdown().splitlines()[0].startswith(f"Echo: what is this? [{label}")


def test_underscore_n_names_a_cells_result(kernel):
    returned = kernel.execute("png")
    number = returned.of_type("execute_result")[0]["content"]["execution_count"]
    run = kernel.execute(f"%%realtime --image _{number}\nand this?")
    assert run.status == "ok", run.error_text()
    assert run.final_markdown().splitlines()[0] == "Echo: and this? [image 40\u00d730 PNG]"


def test_a_20_megapixel_image_is_scaled_down_before_it_is_sent(kernel):
    run = kernel.execute("%%realtime --image big\nhow big?")
    assert run.status == "ok", run.error_text()
    first = run.final_markdown().splitlines()[0]
    assert first.startswith("Echo: how big? [image 1152\u00d7768 ")  # 2000 x 768 at most
    sent = kernel.execute(
        "part = rt_notebook.connect().items[-2].images[0]\n"
        "print(part.width, part.height, part.size <= 8 * 1024 * 1024)"
    )
    assert sent.stream_text().split() == ["1152", "768", "True"]


def test_a_corrupt_png_file_and_a_non_image_are_refused_in_one_line(kernel, tmp_path):
    corrupt = tmp_path / "corrupt.png"
    whole = kernel.execute("print(len(png))").stream_text().strip()
    kernel.execute(f"open({str(corrupt)!r}, 'wb').write(png[:60] + bytes({whole}))")
    before = items(kernel)
    for cell, message in [
        (f"%%realtime --image {corrupt}\nq", "not a readable image"),
        ("%%realtime --image not_an_image\nq", "dict is not an image"),
    ]:
        run = kernel.execute(cell)
        assert run.status == "error"
        assert message in run.error_text()
        assert "Traceback" not in run.shown_error()
        assert len(run.shown_error().strip().splitlines()) == 1
    assert items(kernel) == before  # nothing was sent


def test_history_events_and_transcript_show_labels_never_base64(kernel):
    run = kernel.execute("%%realtime --image png\nlabel me")
    assert run.status == "ok", run.error_text()
    payload = (
        kernel.execute(
            "print(rt_notebook.connect().items[-2].images[0].url.partition(',')[2][8:48])"
        )
        .stream_text()
        .strip()
    )
    assert len(payload) == 40
    for cell in (
        "%realtime history",
        "%realtime events 80",
        "from rt_notebook.render.items import transcript_markdown\n"
        "print(transcript_markdown(rt_notebook.connect().items))",
        "rt_notebook.ChatPanel(rt_notebook.connect()).write_transcript()",
    ):
        shown_run = kernel.execute(cell)
        assert shown_run.status == "ok", (cell, shown_run.error_text())
        text = shown(shown_run)
        assert "image 40\u00d730 PNG" in text, cell
        assert payload not in text, cell
        assert "data:image" not in text, cell


def test_a_cells_outputs_hold_its_image_at_most_once(kernel):
    """What a saved notebook keeps of a cell is what IOPub carried: no image twice."""
    run = kernel.execute("%%realtime --image jpeg\nonce")
    assert run.status == "ok", run.error_text()
    payload = (
        kernel.execute(
            "print(rt_notebook.connect().items[-2].images[0].url.partition(',')[2][8:48])"
        )
        .stream_text()
        .strip()
    )
    assert len(payload) == 40
    assert shown(run).count(payload) <= 1
