"""Images pasted and dropped into the chat panel's composer, in a real JupyterLab page (and
Notebook 7): a synthesized ``paste`` (a ``ClipboardEvent`` whose ``DataTransfer`` holds a
PNG ``File``) and ``drop`` (a ``DragEvent``, a JPEG) reach the kernel, their thumbnails are
drawn (the pixels are the image's), the embedded server's answer names each image, and
``%realtime history``, a transcript, the panel's notebook export, the kernel's widget state
and the saved notebook hold a label, never the image's base64 text."""

from __future__ import annotations

import base64
import io
import json
import re

import pytest
from PIL import Image

from tests.browser.lab_page import (
    TIMEOUT,
    cell,
    expect,
    open_notebook,
    open_notebook7,
    run_cell,
    run_cell_by_keyboard,
    save,
)
from tests.browser.transfer import transfer_file

pytestmark = [pytest.mark.browser, TIMEOUT]

NOTEBOOK = "paste.ipynb"
CHECK = """import base64, json
from ipywidgets.widgets import widget as _widget
_sent = [part for item in s.items for part in item.images]
_raw = [base64.b64decode(part.url.partition(',')[2]) for part in _sent]
_state = json.dumps([w.get_state() for w in list(_widget._instances.values())], default=repr)
_panel = rt_notebook.ChatPanel(s)
_export = json.dumps(_panel.to_notebook(), ensure_ascii=False) + _panel.to_markdown()
_panel.close()
_frags = [base64.b64encode(r[k:k + 60]).decode()[4:40] for r in _raw for k in (0, 1, 2)]
print('LABELS', [part.label for part in _sent])
print('STATE_HOLDS_BASE64', any(f in _state for f in _frags), len(_state) < 200_000)
print('EXPORT_HOLDS_BASE64', any(f in _export for f in _frags))
print('EXPORT_LABELS', _export.count('image 300\\u00d7200 PNG'),
      _export.count('image 160\\u00d7120 JPEG'))
"""
CELLS = [
    "%load_ext rt_notebook\nimport rt_notebook\ns = rt_notebook.connect(offline=True)",
    "%realtime chat",
    "%realtime history",
    "rt_notebook.ChatPanel(s).write_transcript()",
    CHECK,
]
SETUP, PANEL, HISTORY, TRANSCRIPT, KERNEL_CHECK = range(len(CELLS))
INLINE = ".jp-Notebook .rt-chat"

# The RGB at the centre of a drawn thumbnail canvas.
CENTRE = """(canvas) => Array.from(canvas.getContext('2d')
  .getImageData(canvas.width >> 1, canvas.height >> 1, 1, 1).data.slice(0, 3))"""

# Anything in the panel that could show an image from a URL (only canvases, ours, draw).
URL_IMAGES = """(selector) => {
  const bad = [];
  for (const el of document.querySelector(selector).querySelectorAll('*')) {
    const tag = el.tagName.toLowerCase();
    if (['img', 'image', 'picture', 'source', 'object', 'embed', 'svg', 'iframe'].includes(tag)
        && !(tag === 'svg' && el.closest('.rt-notebook-mic, .rt-notebook-player'))) {
      bad.push(tag);
    }
    for (const attr of el.attributes) {
      if (/^\\s*(data|blob):/i.test(attr.value)) { bad.push(`${attr.name} on ${tag}`); }
    }
    if (tag === 'canvas' && !(el.classList.contains('rt-chat-thumb'))) { bad.push('canvas'); }
  }
  return bad;
}"""

RED = (200, 30, 30)
BLUE = (20, 60, 220)


def encoded(width: int, height: int, color: tuple[int, int, int], fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format=fmt, quality=95)
    return buffer.getvalue()


def fragments(data: bytes) -> list[str]:
    return [base64.b64encode(data[k : k + 60]).decode()[4:40] for k in (0, 1, 2)]


def near(actual, expected, slack: int = 12) -> bool:
    return all(abs(a - e) <= slack for a, e in zip(actual, expected, strict=True))


def user_bubble(page, panel: str, text: str):
    return page.locator(f'{panel} .rt-chat-bubble[data-role="user"]').filter(has_text=text)


def answer(page, panel: str, text: str):
    return page.locator(f'{panel} .rt-chat-bubble[data-role="assistant"]').filter(has_text=text)


def paste_and_send(page, panel: str, data: bytes, mime: str, kind: str, text: str) -> None:
    pending = page.locator(f"{panel} .rt-chat-attachments canvas.rt-chat-thumb")
    name = f"picture.{mime.split('/')[1]}"
    default_ran = transfer_file(page, f"{panel} .rt-chat-input", data, mime, name, kind)
    assert default_ran is False  # ours: the page neither pastes a file name nor opens the file
    expect(pending).to_have_count(1)
    expect(pending).to_have_attribute("data-drawn", "yes")
    box = page.locator(f"{panel} .rt-chat-input")
    box.fill(text)
    box.press("Enter")
    expect(box).to_have_value("")
    expect(pending).to_have_count(0)


def test_paste_and_drop_reach_the_kernel_with_thumbnails_and_labels(lab, browser, artifacts):
    png = encoded(300, 200, RED, "PNG")
    jpeg = encoded(160, 120, BLUE, "JPEG")
    context, page = open_notebook(lab, browser, NOTEBOOK, CELLS, viewport=(1400, 1000))
    try:
        run_cell(page, SETUP)
        run_cell(page, PANEL)
        panel = page.locator(INLINE)
        expect(panel.locator(".rt-chat-status")).to_have_attribute("data-state", "ready")

        paste_and_send(page, INLINE, png, "image/png", "paste", "what is this?")
        pasted = user_bubble(page, INLINE, "what is this?")
        thumb = pasted.locator("canvas.rt-chat-thumb")
        expect(thumb).to_have_attribute("data-drawn", "yes")
        assert near(thumb.evaluate(CENTRE), RED)
        expect(pasted.locator(".rt-chat-image-label")).to_contain_text(
            re.compile(r"\[image 300\u00d7200 PNG, \d+ KB\]")
        )
        reply = answer(page, INLINE, "Echo: what is this? [image 300\u00d7200 PNG]")
        expect(reply).to_have_attribute("data-status", "completed")
        expect(reply.locator("canvas")).to_have_count(0)

        paste_and_send(page, INLINE, jpeg, "image/jpeg", "drop", "and this one")
        dropped = user_bubble(page, INLINE, "and this one")
        expect(dropped.locator("canvas.rt-chat-thumb")).to_have_attribute("data-drawn", "yes")
        assert near(dropped.locator("canvas.rt-chat-thumb").evaluate(CENTRE), BLUE, 24)
        reply = answer(page, INLINE, "Echo: and this one [image 160\u00d7120 JPEG]")
        expect(reply).to_have_attribute("data-status", "completed")
        page.screenshot(path=str(artifacts / "paste-01-panel.png"))
        assert page.evaluate(URL_IMAGES, INLINE) == []

        history = run_cell(page, HISTORY)
        assert "image 300\u00d7200 PNG" in history
        assert "image 160\u00d7120 JPEG" in history
        transcript = run_cell(page, TRANSCRIPT)
        assert "image 300\u00d7200 PNG" in transcript
        checked = run_cell(page, KERNEL_CHECK)
        assert "image 300\u00d7200 PNG" in checked
        assert "STATE_HOLDS_BASE64 False True" in checked
        assert "EXPORT_HOLDS_BASE64 False" in checked
        counts = re.search(r"EXPORT_LABELS (\d+) (\d+)", checked)
        assert counts is not None
        assert int(counts.group(1)) >= 1
        assert int(counts.group(2)) >= 1
        for index in (HISTORY, TRANSCRIPT):
            shown = cell(page, index).locator(".jp-OutputArea").inner_text()
            assert not any(f in shown for f in fragments(png) + fragments(jpeg))

        save(page)
        saved = (lab.root / NOTEBOOK).read_text(encoding="utf-8")
        assert not any(f in saved for f in fragments(png) + fragments(jpeg))
        assert "data:image" not in saved
        assert "image 300\\u00d7200 PNG" in saved or "image 300\u00d7200 PNG" in saved
        json.loads(saved)
    finally:
        context.close()


def test_paste_in_notebook7(lab, browser, artifacts):
    png = encoded(300, 200, RED, "PNG")
    context, page = open_notebook7(lab, browser, "paste7.ipynb", CELLS[:2])
    try:
        for index in (SETUP, PANEL):
            run_cell_by_keyboard(page, index, timeout_ms=60_000)
        panel = page.locator(INLINE)
        expect(panel.locator(".rt-chat-status")).to_have_attribute("data-state", "ready")
        paste_and_send(page, INLINE, png, "image/png", "paste", "in Notebook 7")
        thumb = user_bubble(page, INLINE, "in Notebook 7").locator("canvas.rt-chat-thumb")
        expect(thumb).to_have_attribute("data-drawn", "yes")
        assert near(thumb.evaluate(CENTRE), RED)
        reply = answer(page, INLINE, "Echo: in Notebook 7 [image 300\u00d7200 PNG]")
        expect(reply).to_have_attribute("data-status", "completed")
        page.screenshot(path=str(artifacts / "paste-02-notebook7.png"))
    finally:
        context.close()


def noise_png(width: int, height: int, seed: int) -> bytes:
    import numpy as np

    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_big_and_many_images_stay_under_what_one_message_can_carry(lab, browser, artifacts):
    """Jupyter's server closes the kernel's connection on a message over 10 MiB: a 13 MB
    screenshot is scaled into the kernel's box in the page first, and images past 8 MB in
    one message are refused with a note, not sent."""
    big = noise_png(2600, 1700, 1)
    assert len(big) > 10 * 1024 * 1024
    context, page = open_notebook(lab, browser, "paste_big.ipynb", CELLS[:2])
    try:
        run_cell(page, SETUP)
        run_cell(page, PANEL)
        panel = page.locator(INLINE)
        expect(panel.locator(".rt-chat-status")).to_have_attribute("data-state", "ready")

        paste_and_send(page, INLINE, big, "image/png", "paste", "a big screenshot")
        reply = answer(page, INLINE, "Echo: a big screenshot [image 1175\u00d7768")
        expect(reply).to_have_attribute("data-status", "completed")

        # Five images of about 1.9 MB each: four fit in one message, the fifth is refused.
        pending = panel.locator(".rt-chat-attachments canvas.rt-chat-thumb")
        for seed in range(5):
            part = noise_png(800, 800, 10 + seed)
            assert 1.8e6 < len(part) < 2 * 1024 * 1024
            transfer_file(page, f"{INLINE} .rt-chat-input", part, "image/png", "n.png", "drop")
        expect(panel.locator(".rt-chat-attach-note")).to_contain_text("at most 8 MB")
        expect(pending).to_have_count(4)
        box = panel.locator(".rt-chat-input")
        box.fill("four of them")
        box.press("Enter")
        reply = answer(page, INLINE, "Echo: four of them")
        expect(reply).to_have_attribute("data-status", "completed")
        assert reply.inner_text().count("[image 800\u00d7768") == 0  # scaled: 768 x 768
        assert reply.inner_text().count("[image 768\u00d7768") == 4
        expect(panel.locator(".rt-chat-attach-note")).to_have_count(0)
        # The kernel's connection is still there: the next message is answered.
        box.fill("still here")
        box.press("Enter")
        expect(answer(page, INLINE, "Echo: still here")).to_have_attribute(
            "data-status", "completed"
        )
        page.screenshot(path=str(artifacts / "paste-03-big.png"))
    finally:
        context.close()
