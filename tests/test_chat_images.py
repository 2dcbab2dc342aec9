"""Images pasted or dropped into the chat panel, kernel side: the composer's message with
its binary buffers, the turn through the real SDK to the embedded server, what the page is
told (labels, the page's own thumbnail tokens) and what the exports and widget state hold
(labels, never base64, never the bytes)."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

from rt_notebook.client.images import MAX_FILE_BYTES
from rt_notebook.frontends.chat import ChatPanel, PanelState
from rt_notebook.render.tables import history_table
from rt_notebook.widgets.pasted import MAX_PASTED, PastedImage, pasted_images
from tests.test_chat_unit import Page, wait_until
from tests.timing import WAIT

TOKEN = "0123456789abcdef" * 2


def png_bytes(width=640, height=480):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def gif_bytes(width=50, height=40):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (0, 90, 200)).save(buffer, format="GIF")
    return buffer.getvalue()


def base64_fragments(data: bytes) -> list[str]:
    """Pieces of ``data``'s base64 text (at each of the 3 alignments) that no label holds."""
    return [base64.b64encode(data[start : start + 60]).decode()[4:40] for start in (0, 1, 2)]


def test_pasted_images_pairs_descriptions_with_buffers_and_bounds_them():
    data = png_bytes(8, 8)
    described = [{"token": TOKEN, "type": "image/png"}, {"token": "<img src=x>"}, "junk"]
    images = pasted_images(described, [memoryview(data), data, b"x"])
    assert [image.token for image in images] == [TOKEN, "", ""]
    assert [image.name for image in images] == [f"pasted image {n}" for n in (1, 2, 3)]
    assert images[0].data == data
    assert "base64" not in repr(images[0])
    assert str(len(data)) in repr(images[0])
    assert pasted_images(described, []) == []  # descriptions without bytes: nothing
    assert pasted_images("not a list", [data]) == []
    empty_and_huge = pasted_images([{}, {}], [b"", b"\0" * (MAX_FILE_BYTES + 1)])
    assert empty_and_huge == []
    flood = pasted_images([{"token": TOKEN}] * 40, [data] * 40)
    assert len(flood) == MAX_PASTED


def test_the_composer_hands_text_and_pasted_images_to_the_panel(session, monkeypatch):
    panel = ChatPanel(session)
    try:
        sent = []
        monkeypatch.setattr(panel, "send", lambda text, images=(): sent.append((text, images)))
        data = png_bytes(8, 8)
        message = {"event": "submit", "text": "", "images": [{"token": TOKEN}]}
        panel.composer._handle_message(panel.composer, message, [memoryview(data)])
        panel.composer._handle_message(panel.composer, {"event": "submit", "text": " "}, [])
        assert len(sent) == 1  # an image alone is a message; blank text alone is not
        text, images = sent[0]
        assert text == ""
        assert images == [PastedImage(data, TOKEN, "pasted image 1")]
    finally:
        panel.close()


def test_a_pasted_image_reaches_the_server_and_the_page_labels_it(session, tmp_path):
    panel = ChatPanel(session)
    page = Page(panel)
    data = png_bytes(640, 480)
    try:
        pasted = PastedImage(data, TOKEN, "pasted image 1")
        handle = panel.send("what is this?", [pasted]).result(WAIT)
        assert handle.wait(WAIT).status == "completed"
        assert handle.text == "Echo: what is this? [image 640\u00d7480 PNG]"
        user = session.items[-2]
        assert user.role == "user"
        assert user.images[0].label.startswith("image 640\u00d7480 PNG, ")
        wait_until(lambda: panel.state is PanelState.READY)
        key = f"i:{user.id}"
        wait_until(lambda: page.meta(key).get("thumbs") == [TOKEN], what="the thumbnail token")
        meta = page.meta(key)
        assert meta["images"] == [user.images[0].label]
        # Before its item existed the message showed with its thumbnail too.
        outgoing = [op["entry"] for op in page.ops if op["op"] == "put"]
        first = next(e for e in outgoing if e["meta"]["data"].get("status") == "queued")
        assert first["meta"]["thumbs"] == [TOKEN]
        # The answer's bubble gets no thumbnail: only the user's pasted images have one.
        answer_key = f"i:{session.items[-1].id}"
        wait_until(lambda: page.has(answer_key), what="the answer's bubble")
        answer = page.meta(answer_key)
        assert answer["thumbs"] == []
        assert answer["images"] == []

        sent_bytes = base64.b64decode(user.images[0].url.partition(",")[2])
        wire = json.dumps(page.ops)
        exports = {
            "ops": wire,
            "markdown": panel.to_markdown(),
            "json": panel.to_json(),
            "notebook": json.dumps(panel.to_notebook(), ensure_ascii=False),
            "history": history_table(session),
            "composer state": json.dumps(panel.composer.get_state(), default=str),
            "view state": json.dumps(panel.view.get_state(), default=str),
        }
        for where, text in exports.items():
            for fragment in base64_fragments(sent_bytes) + base64_fragments(data):
                assert fragment not in text, where
        for where in ("markdown", "json", "notebook", "history"):
            assert "image 640\u00d7480 PNG" in exports[where], where
    finally:
        panel.close()


def test_a_pasted_image_is_encoded_like_image_scaled_and_converted(session):
    panel = ChatPanel(session)
    try:
        big = PastedImage(png_bytes(4000, 3000), TOKEN, "pasted image 1")
        gif = PastedImage(gif_bytes(), "", "pasted image 2")
        handle = panel.send("two", [big, gif]).result(WAIT)
        assert handle.wait(WAIT).status == "completed"
        assert "[image 1024\u00d7768" in handle.text  # into 2000x768
        assert "[image 50\u00d740" in handle.text  # a GIF, converted
        formats = {image.format for image in session.items[-2].images}
        assert formats <= {"PNG", "JPEG"}
    finally:
        panel.close()


def test_a_corrupt_pasted_image_fails_its_turn_in_one_line_and_sends_nothing(session):
    panel = ChatPanel(session)
    page = Page(panel)
    try:
        before = len(session.items)
        corrupt = PastedImage(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, TOKEN, "pasted image 1")
        future = panel.send("look", [corrupt])
        with pytest.raises(Exception, match="pasted image 1: not a readable image"):
            future.result(WAIT)
        wait_until(
            lambda: any(page.entries[k]["meta"]["kind"] == "error" for k in page.order),
            what="the error bubble",
        )
        errors = [k for k in page.order if page.entries[k]["meta"]["kind"] == "error"]
        assert errors
        assert "pasted image 1: not a readable image" in page.text(errors[0])
        assert "\n" not in page.text(errors[0])
        assert len(session.items) == before
        flags = [page.meta(k).get("flag") for k in page.bubbles("user")]
        assert "not sent: error" in flags
    finally:
        panel.close()


def test_panel_send_takes_what_session_ask_takes_without_thumbnails(session):
    panel = ChatPanel(session)
    page = Page(panel)
    try:
        handle = panel.send("from code", [png_bytes(20, 10)]).result(WAIT)
        assert handle.wait(WAIT).text == "Echo: from code [image 20\u00d710 PNG]"
        key = f"i:{session.items[-2].id}"
        wait_until(lambda: page.meta(key).get("images"), what="the label")
        assert page.meta(key)["thumbs"] == []  # no page pasted it: labels only
        with pytest.raises(ValueError, match="empty"):
            panel.send("  ")
    finally:
        panel.close()
