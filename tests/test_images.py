"""Images in user messages: every source, the limits, refusals, labels, the offline echo
through the real SDK, the local-model mapping and a reconnect that keeps the image."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib

import matplotlib
import numpy as np
import pytest
from PIL import Image

from rt_notebook.client.images import (
    LOW_DETAIL_SIDE,
    MAX_LONG_SIDE,
    MAX_SHORT_SIDE,
    image_part,
    resolve_source,
)
from rt_notebook.client.session import Session
from rt_notebook.errors import ConfigurationError
from rt_notebook.frontends.transcript import load_recording, to_json, to_markdown
from rt_notebook.protocol.conversation import Conversation
from rt_notebook.protocol.events import Dialect
from rt_notebook.protocol.images import ImagePart, data_uri, sniff
from rt_notebook.protocol.restore import restore_items
from rt_notebook.render.inspector import timeline_markdown
from rt_notebook.render.items import item_markdown, item_summary, transcript_markdown
from rt_notebook.render.tables import history_table
from rt_notebook.server import EmbeddedServer
from rt_notebook.server.chat_mapping import _message
from tests.test_reconnect import timing
from tests.timing import WAIT, wait_until

matplotlib.use("Agg")


def png_bytes(width=640, height=480, color=(200, 30, 30)):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(width=320, height=200):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


def decoded(part: ImagePart) -> bytes:
    return base64.b64decode(part.url.partition(",")[2])


# Headers read without Pillow ------------------------------------------------------------


def test_sniff_reads_png_and_jpeg_sizes_and_refuses_garbage():
    assert sniff(png_bytes(640, 480)) == ("PNG", 640, 480)
    assert sniff(jpeg_bytes(320, 200)) == ("JPEG", 320, 200)
    assert sniff(b"\x89PNG\r\n\x1a\n" + b"\x00" * 4) is None  # cut before IHDR
    assert sniff(b"\xff\xd8\xff\xe0\x00") is None  # cut JPEG
    assert sniff(b"GIF89a....") is None
    assert sniff(b"") is None


def test_label_says_size_format_and_kilobytes_never_base64():
    part = image_part(png_bytes())
    assert part.label.startswith("image 640\u00d7480 PNG, ")
    assert part.label.endswith(" KB")
    payload = part.url.partition(",")[2]
    assert payload[:40] not in repr(part)
    assert part.summary()["sha256"]
    assert "url" not in part.summary()


# Every source ---------------------------------------------------------------------------


def test_png_and_jpeg_bytes_within_limits_are_sent_as_they_are():
    for data, fmt in ((png_bytes(), "PNG"), (jpeg_bytes(), "JPEG")):
        part = image_part(data, "high")
        assert decoded(part) == data
        assert part.format == fmt
        assert part.wire()["detail"] == "high"
        assert part.url.startswith(f"data:image/{fmt.lower()};base64,")


def test_a_file_path_as_str_and_as_path(tmp_path):
    path = tmp_path / "plot.png"
    path.write_bytes(png_bytes(100, 50))
    assert image_part(str(path)).label.startswith("image 100\u00d750 PNG")
    assert image_part(path).label.startswith("image 100\u00d750 PNG")


def test_a_figure_a_pil_image_and_arrays():
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4, 3), dpi=100)
    axes.plot([1, 3, 2])
    assert (image_part(figure).width, image_part(figure).height) == (400, 300)
    plt.close(figure)
    assert image_part(Image.new("RGBA", (30, 20), (0, 0, 0, 0))).width == 30
    gray = np.linspace(0, 1, 64 * 48).reshape(48, 64)
    assert (image_part(gray).width, image_part(gray).height) == (64, 48)
    rgb = np.zeros((10, 20, 3), dtype=np.uint8)
    assert (image_part(rgb).width, image_part(rgb).height) == (20, 10)
    rgba = np.full((10, 20, 4), 255, dtype=np.uint8)
    assert image_part(rgba).width == 20
    assert image_part(np.ones((5, 5), dtype=bool)).width == 5


def test_out_n_and_underscore_n_and_variables_resolve():
    data = png_bytes(8, 8)
    namespace = {"Out": {3: data}, "_3": data, "pic": data}
    for text in ("Out[3]", "_3", "pic"):
        source, _ = resolve_source(text, namespace)
        assert source is data
        assert image_part(text, None, namespace).width == 8
    with pytest.raises(ConfigurationError, match="cell 4 returned nothing"):
        image_part("Out[4]", None, namespace)


def test_the_smaller_of_png_and_jpeg_is_chosen():
    flat = Image.new("RGB", (400, 300), (255, 255, 255))
    assert image_part(flat).format == "PNG"  # one colour: PNG is tiny
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), np.uint8))
    assert image_part(noise).format == "JPEG"  # a photo-like image: JPEG wins


# Limits -----------------------------------------------------------------------------------


def test_a_20_megapixel_image_is_scaled_down_into_the_box():
    big = png_bytes(5472, 3648)  # 20 MP
    part = image_part(big)
    assert max(part.width, part.height) <= MAX_LONG_SIDE
    assert min(part.width, part.height) <= MAX_SHORT_SIDE
    assert abs(part.width / part.height - 5472 / 3648) < 0.01
    assert sniff(decoded(part))[1:] == (part.width, part.height)
    low = image_part(big, "low")
    assert max(low.width, low.height) == LOW_DETAIL_SIDE


def test_a_large_array_is_scaled_too():
    part = image_part(np.zeros((4000, 5000, 3), dtype=np.uint8))
    assert (part.width, part.height) == (960, 768)


# Refusals: one line, before anything is sent -------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not a readable image"),
        (png_bytes(40, 40)[:60], "not a readable image"),
        (42, "int is not an image"),
        ({"a": 1}, "dict is not an image"),
        ("https://example.com/cat.png", "remote URLs are not fetched"),
        ("ftp://example.com/cat.png", "remote URLs are not fetched"),
        ("/no/such/file.png", "no such file"),
        (np.zeros((3, 3, 7)), "is not an image"),
        (np.array(["a", "b"]), "is not an image"),
        (np.array([[np.nan]]), "NaN"),
    ],
)
def test_refusals_are_one_line(source, message):
    with pytest.raises(ConfigurationError, match=message) as caught:
        image_part(source)
    assert "\n" not in str(caught.value)
    assert "base64" not in str(caught.value)


def test_a_data_uri_is_taken_and_a_plain_one_refused():
    data = png_bytes(12, 10)
    assert decoded(image_part(data_uri(data, "PNG"))) == data
    with pytest.raises(ConfigurationError, match="must be base64"):
        image_part("data:image/png,rawtext")


def test_a_png_declaring_a_billion_pixels_is_refused_not_decoded():
    header = png_bytes(4, 4)
    bomb = header[:16] + struct.pack(">II", 40000, 40000) + header[24:]
    bomb = bomb[:29] + struct.pack(">I", zlib.crc32(bomb[12:29])) + bomb[33:]
    with pytest.raises(ConfigurationError, match="too many pixels"):
        image_part(bomb)


def test_a_bad_detail_is_refused():
    with pytest.raises(ConfigurationError, match="auto, low or high"):
        image_part(png_bytes(), "ultra")


def test_a_directory_and_a_device_are_not_read(tmp_path):
    for path in (str(tmp_path), "/dev/zero"):
        with pytest.raises(ConfigurationError, match="not a regular file"):
            image_part(path)


def test_an_unreadable_file_is_one_line(tmp_path):
    path = tmp_path / "secret.png"
    path.write_bytes(png_bytes(4, 4))
    path.chmod(0)
    try:
        path.read_bytes()
    except PermissionError:
        with pytest.raises(ConfigurationError, match="cannot read it"):
            image_part(str(path))
    else:
        pytest.skip("running as root: permissions do not stop reads")


def test_without_pillow_bytes_within_limits_pass_and_the_rest_says_what_to_install(monkeypatch):
    import sys

    data = png_bytes(64, 64)
    big = png_bytes(3000, 100)
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL now raises ImportError
    assert decoded(image_part(data)) == data
    with pytest.raises(
        ConfigurationError, match=r"needs Pillow: pip install 'rt-notebook\[images\]'"
    ):
        image_part(big)
    with pytest.raises(ConfigurationError, match="needs Pillow"):
        image_part(np.zeros((4, 4)))


# The mirror, the views, the restore ------------------------------------------------------


def _mirror_with_image(part: ImagePart) -> Conversation:
    conversation = Conversation()
    conversation.apply(
        {
            "type": "conversation.item.added",
            "item": {
                "id": "item_1",
                "type": "message",
                "role": "user",
                "status": "completed",
                "content": [{"type": "input_text", "text": "what is this?"}, part.wire()],
            },
        }
    )
    return conversation


def test_views_show_labels_and_never_base64():
    part = image_part(png_bytes(), "high")
    payload = part.url.partition(",")[2]
    item = _mirror_with_image(part).items[0]
    assert item.images == [part]
    shown = [item_markdown(item), item_summary(item), transcript_markdown([item])]
    shown.append(json.dumps(item.as_dict(), ensure_ascii=False))
    for text in shown:
        assert "image 640\u00d7480 PNG" in text
        assert payload[:24] not in text
    long = Conversation()
    long.apply(
        {
            "type": "conversation.item.added",
            "item": {
                "id": "x",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "y" * 500}, part.wire()],
            },
        }
    )
    assert "[image 640\u00d7480 PNG" in item_summary(long.items[0])  # the text is cut, not it


def test_restore_re_sends_the_image_parts():
    part = image_part(png_bytes())
    plan = restore_items(_mirror_with_image(part).items, Dialect.GA)
    assert plan[0]["content"] == [{"type": "input_text", "text": "what is this?"}, part.wire()]


def test_chat_completions_mapping_has_image_url_parts():
    part = image_part(png_bytes(10, 10))
    mapped = _message(
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "hi"}, part.wire()],
        }
    )
    assert mapped["content"][1] == {"type": "image_url", "image_url": {"url": part.url}}


# The real SDK against the embedded server ------------------------------------------------


@pytest.fixture(scope="module")
def server():
    with EmbeddedServer(pace=0.0) as server:
        yield server


def _session(server):
    return Session(
        base_url=server.base_url,
        websocket_base_url=server.websocket_base_url,
        api_key=server.token,
        timing=timing(),
    ).connect()


def test_offline_echo_names_the_image_and_views_show_its_label(server, tmp_path):
    session = _session(server)
    path = tmp_path / "events.jsonl"
    session.record(path)
    try:
        result = session.ask("what is this?", images=[png_bytes()], image_detail="high").wait(WAIT)
        assert result.text == "Echo: what is this? [image 640\u00d7480 PNG]"
        asked = session.items[0]
        assert [image.short_label for image in asked.images] == ["image 640\u00d7480 PNG"]
        assert asked.images[0].detail == "high"
        payload = asked.images[0].url.partition(",")[2]
        assert "image 640\u00d7480 PNG" in history_table(session)
        assert payload[:24] not in history_table(session)
        inspected = timeline_markdown(session.timeline(), title="t")
        assert "image 640\u00d7480 PNG" in inspected
        assert "sha256" in inspected
        assert payload[:24] not in inspected
        session.stop_recording()
        # The recording keeps the bytes (a rebuild is exact); its transcripts do not show them.
        recorded = path.read_text()
        assert payload in recorded
        rebuilt = load_recording(recorded.splitlines())
        assert rebuilt.items[0].images[0].url == asked.images[0].url
        markdown = to_markdown(rebuilt)
        assert "image 640\u00d7480 PNG" in markdown
        assert payload[:24] not in markdown
        exported = json.dumps(to_json(rebuilt))
        assert "sha256" in exported
        assert payload[:24] not in exported
    finally:
        session.close()


def test_panel_exports_label_the_image(server):
    from rt_notebook.render.export import transcript_cells, transcript_data

    session = _session(server)
    try:
        session.ask("what is this?", images=[png_bytes()]).wait(WAIT)
        payload = session.items[0].images[0].url.partition(",")[2]
        cells = transcript_cells(session.items)
        sources = json.dumps([cell.source for cell in cells], ensure_ascii=False)
        assert "image 640\u00d7480 PNG" in sources
        assert cells[-1].source == "%%realtime\nwhat is this?"
        data = json.dumps(transcript_data(session.items), ensure_ascii=False)
        assert "image 640\u00d7480 PNG" in data
        assert payload[:24] not in sources + data
    finally:
        session.close()


def test_add_message_with_images_and_a_figure(server):
    import matplotlib.pyplot as plt

    session = _session(server)
    try:
        figure = plt.figure(figsize=(2, 1), dpi=100)
        session.add_message("look", images=[figure, jpeg_bytes()])
        plt.close(figure)
        labels = [image.short_label for image in session.items[-1].images]
        assert labels == ["image 200\u00d7100 PNG", "image 320\u00d7200 JPEG"]
    finally:
        session.close()


def test_a_refused_image_sends_nothing(server):
    session = _session(server)
    try:
        before = len(session.items)
        with pytest.raises(ConfigurationError, match="not an image"):
            session.ask("x", images=[object()])
        with pytest.raises(ConfigurationError, match="user messages"):
            session.ask("x", role="system", images=[png_bytes()])
        assert len(session.items) == before
    finally:
        session.close()


def test_a_reconnect_keeps_the_image_on_the_server(tmp_path):
    with EmbeddedServer(pace=0.0) as server:
        session = _session(server)
        path = tmp_path / "events.jsonl"
        session.record(path)
        try:
            session.ask("what is this?", images=[png_bytes()]).wait(WAIT)
            assert server.drop_connections() == 1
            wait_until(lambda: server.connections_opened == 2, "the reconnect")
            result = session.ask("and again?").wait(WAIT)
            assert result.text == "Echo: and again?"
            assert session.status.restored == 2
            # What the server itself sent back on the new connection holds the image.
            session.stop_recording()
            received = [
                json.loads(line)["data"]
                for line in path.read_text().splitlines()
                if json.loads(line)["direction"] == "received"
            ]
            starts = [i for i, e in enumerate(received) if e.get("type") == "session.created"]
            mirror = Conversation()
            for event in received[starts[-1] :]:
                mirror.apply(event)
            first = mirror.items[0]
            assert first.text == "what is this?"
            assert [image.short_label for image in first.images] == ["image 640\u00d7480 PNG"]
            assert first.images[0].sha256 == session.items[0].images[0].sha256
        finally:
            session.close()


def test_an_echo_without_the_image_data_keeps_the_sent_images():
    """A server that echoes an ``input_image`` part without its data (or no part at all):
    the mirror keeps what the client sent, so views label it and a restore re-sends it."""
    from rt_notebook.protocol.turns import Request
    from tests.test_client_core import added, feed, ready, take

    part = image_part(png_bytes(16, 16))
    item = {
        "id": "item_1",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "look"}, part.wire()],
    }
    for echoed in ([{"type": "input_text", "text": "look"}, {"type": "input_image"}], []):
        core = ready()
        request = Request("item", {"type": "conversation.item.create", "item": item}, key="item_1")
        core.add_item(request, 0)
        take(core)
        feed(core, added({**item, "status": "completed", "content": echoed}))
        assert request.result == "item_1"
        assert core.view().item("item_1").images == [part]
        plan = restore_items(core.view().items, Dialect.GA)
        assert plan[0]["content"][-1] == part.wire()


def test_the_panel_shows_a_label_after_the_text():
    from rt_notebook.render.markdown_tree import tree_text
    from rt_notebook.render.panel_doc import item_body

    part = image_part(png_bytes())
    snapshot = _mirror_with_image(part).items[0]
    text = tree_text(item_body(snapshot))
    assert "what is this?" in text
    assert "[image 640\u00d7480 PNG" in text
    assert part.url.partition(",")[2][:24] not in text
