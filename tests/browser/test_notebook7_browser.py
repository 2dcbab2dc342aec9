"""The chat panel and a %%realtime cell in Notebook 7 (the classic-looking UI on JupyterLab's
components), served by the same Jupyter server as the JupyterLab tests."""

from __future__ import annotations

import re

import nbformat
import pytest

from tests.browser.lab_page import KERNEL_READY, open_notebook7, run_cell_by_keyboard
from tests.timing import within

pytestmark = [pytest.mark.browser, pytest.mark.timeout(within(240))]

NOTEBOOK = "notebook7.ipynb"
CELLS = [
    "%load_ext rt_notebook\nimport rt_notebook\ns = rt_notebook.connect(offline=True)",
    "%realtime chat",
    "%%realtime\nHello from Notebook 7",
]


def test_chat_panel_and_cells_in_notebook7(lab, browser, artifacts):
    from playwright.sync_api import expect

    context, page = open_notebook7(lab, browser, NOTEBOOK, CELLS)
    try:
        cells = page.locator(".jp-Notebook .jp-Cell")
        for index in range(len(CELLS)):  # as a person would: a click, then Shift+Enter
            run_cell_by_keyboard(page, index, timeout_ms=60_000)

        panel = page.locator(".jp-Notebook .rt-chat")
        expect(panel.locator(".rt-chat-status")).to_have_attribute("data-state", "ready")
        # The cell's exchange appears in the panel, and the panel can send.
        assistant = panel.locator('.rt-chat-bubble[data-role="assistant"]')
        expect(assistant.filter(has_text="Hello from Notebook 7")).to_have_count(1)
        box = panel.locator(".rt-chat-input")
        box.fill("And from the panel")
        box.press("Enter")
        expect(assistant.filter(has_text="And from the panel")).to_have_count(1)
        answer = cells.nth(2).locator(".jp-RenderedMarkdown").last
        expect(answer).to_contain_text("Echo: Hello from Notebook 7")
        page.screenshot(path=str(artifacts / "notebook7-chat.png"))
    finally:
        context.close()


VOICE_NOTEBOOK = "notebook7-voice.ipynb"
VOICE_CELLS = [
    CELLS[0],
    "%%realtime --modalities audio --out spoken\n" + " ".join(f"word{n}" for n in range(24)),
    "open('notebook7-voice.pcm', 'wb').write(spoken.audio)",
]
PLAYED = "() => globalThis.__rtNotebookAudio?.players?.at(-1)?.status === 'ended'"
LAST_PLAYER = (
    "() => { const p = globalThis.__rtNotebookAudio.players.at(-1);"
    " return {status: p.status, received: p.received, played: p.played}; }"
)


def test_a_spoken_answer_plays_and_is_saved_in_notebook7(lab, browser):
    """Audio out in Notebook 7, in the suite's default browser (no autoplay flag: running a
    cell with a click and Shift+Enter is the gesture that allows sound)."""
    import base64

    from playwright.sync_api import expect

    from rt_notebook.client.audio import wav_pcm

    context, page = open_notebook7(lab, browser, VOICE_NOTEBOOK, VOICE_CELLS)
    try:
        cells = page.locator(".jp-Notebook .jp-Cell")
        for index in range(2):
            run_cell_by_keyboard(page, index, timeout_ms=60_000)
        page.wait_for_function(PLAYED)
        assert page.evaluate(LAST_PLAYER) == {
            "status": "ended",
            "received": 25 * 1200,  # "Echo:" and 24 words, one 50 ms beep each
            "played": 25 * 1200,
        }
        wav = "audio[controls] source[src^='data:audio/wav;base64,']"
        expect(cells.nth(1).locator(wav)).to_have_count(1)
        expect(cells.nth(1)).to_contain_text("word23")
        # The kernel writes what streamed; the page saves the notebook.
        page.wait_for_function(KERNEL_READY)
        cells.nth(2).locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        expect(cells.nth(2).locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"))
        page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        saved = nbformat.read(str(lab.root / VOICE_NOTEBOOK), as_version=4)
        html = "".join(o.get("data", {}).get("text/html", "") for o in saved.cells[1].outputs)
        found = re.findall(r'src="data:audio/wav;base64,([A-Za-z0-9+/=]+)"', html)
        assert len(found) == 1, saved.cells[1].outputs
        pcm, rate = wav_pcm(base64.b64decode(found[0]))
        streamed = (lab.root / "notebook7-voice.pcm").read_bytes()
        assert rate == 24_000
        assert len(streamed) == 25 * 2400
        assert pcm == streamed
    finally:
        context.close()
