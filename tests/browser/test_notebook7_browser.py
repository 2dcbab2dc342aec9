"""The chat panel and a %%realtime cell in Notebook 7 (the classic-looking UI on JupyterLab's
components), served by the same Jupyter server as the JupyterLab tests."""

from __future__ import annotations

import re

import nbformat
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

NOTEBOOK = "notebook7.ipynb"
CELLS = [
    "%load_ext rt_notebook\nimport rt_notebook\ns = rt_notebook.connect(offline=True)",
    "%realtime chat",
    "%%realtime\nHello from Notebook 7",
]


# The notebook's own kernel connection, through the app Notebook 7 exposes for tests.
KERNEL_READY = """() => {
    const session = window.jupyterapp?.shell?.currentWidget?.sessionContext;
    const kernel = session?.session?.kernel;
    return !!session?.isReady && !!kernel && kernel.connectionStatus === "connected"
        && kernel.status === "idle";
}"""


def test_chat_panel_and_cells_in_notebook7(lab, browser, artifacts):
    from playwright.sync_api import expect

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, str(lab.root / NOTEBOOK))
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(90_000)
    try:
        page.goto(f"{lab.url}/notebooks/{NOTEBOOK}?token={lab.token}")
        cells = page.locator(".jp-Notebook .jp-Cell")
        cells.nth(len(CELLS) - 1).wait_for()
        # Run each cell once the notebook's kernel is connected and idle and that cell is
        # the active one, as a person would: click it, then Shift+Enter. Why not the
        # toolbar's execution indicator: it can read "idle" while the notebook has no
        # kernel yet (its session still starting), and JupyterLab silently drops a cell
        # run with no kernel, so the cell stayed "[ ]" (seen in 2 of 6 page loads).
        for index in range(len(CELLS)):
            page.wait_for_function(KERNEL_READY)
            cells.nth(index).locator(".jp-InputArea-editor").click()
            expect(cells.nth(index)).to_have_class(re.compile(r"\bjp-mod-active\b"))
            page.keyboard.press("Shift+Enter")
            # "[*]" while it runs, "[n]" once it has finished.
            prompt = cells.nth(index).locator(".jp-InputPrompt")
            expect(prompt).to_have_text(re.compile(r"\[\d+\]"), timeout=60_000)

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

    from rt_notebook.audio import wav_pcm

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in VOICE_CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, str(lab.root / VOICE_NOTEBOOK))
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(90_000)
    try:
        page.goto(f"{lab.url}/notebooks/{VOICE_NOTEBOOK}?token={lab.token}")
        cells = page.locator(".jp-Notebook .jp-Cell")
        cells.nth(len(VOICE_CELLS) - 1).wait_for()
        for index in range(2):
            page.wait_for_function(KERNEL_READY)
            cells.nth(index).locator(".jp-InputArea-editor").click()
            expect(cells.nth(index)).to_have_class(re.compile(r"\bjp-mod-active\b"))
            page.keyboard.press("Shift+Enter")
            prompt = cells.nth(index).locator(".jp-InputPrompt")
            expect(prompt).to_have_text(re.compile(r"\[\d+\]"), timeout=60_000)
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
