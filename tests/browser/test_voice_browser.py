"""Spoken answers in JupyterLab 4 (headless Chromium): the player plays every sample.

Chromium has no sound device here, yet its AudioContext clock runs and AudioWorklets
render, so playback is real. The browser allows autoplay (the flag a kiosk would use);
(the enable-sound prompt is not tested here: Playwright's evaluate counts as a user
gesture, so a strict browser would not stay blocked).
"""

from __future__ import annotations

import re

import nbformat
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

SETUP = "%load_ext rt_notebook\nimport rt_notebook\ns = rt_notebook.connect(offline=True)"
SPOKEN = "%%realtime --modalities audio --out spoken\n" + " ".join(f"word{n}" for n in range(24))
COUNTS = (
    "player = rt_notebook.render.voice.recent_players()[-1]\n"
    "print(len(spoken.audio) // 2, player.received, player.scheduled, player.status)"
)

KERNEL_READY = """() => {
    const session = window.jupyterapp?.shell?.currentWidget?.sessionContext;
    const kernel = session?.session?.kernel;
    return !!session?.isReady && !!kernel && kernel.connectionStatus === "connected"
        && kernel.status === "idle";
}"""

RUN_CELL = """async (index) => {
  const panel = window.jupyterapp.shell.currentWidget;
  await panel.sessionContext.ready;
  panel.content.activeCellIndex = index;
  panel.content.deselectAll();
  await window.jupyterapp.commands.execute('notebook:run-cell');
}"""

LAST_PLAYER = (
    "() => { const p = globalThis.__rtNotebookAudio?.players?.at(-1); return p ? "
    "{status: p.status, received: p.received, scheduled: p.scheduled, played: p.played} : null; }"
)


# The conftest browser's flags. One Playwright instance per module can run at a time (its
# sync API keeps an event loop on this thread), so both browsers come from this one.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
FLAGS += ["--disable-component-update", "--disable-sync", "--no-first-run"]


PLAYED = "() => globalThis.__rtNotebookAudio?.players?.at(-1)?.status === 'ended'"


@pytest.fixture(scope="module")
def browsers(chromium_path):
    """Chromium that allows sound without a click."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        autoplay = playwright.chromium.launch(
            executable_path=str(chromium_path),
            args=[*FLAGS, "--autoplay-policy=no-user-gesture-required"],
        )
        yield {"autoplay": autoplay}
        autoplay.close()


def open_notebook(lab, browser, name: str, cells: list[str]):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, str(lab.root / name))
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(90_000)
    page.goto(lab.notebook_url(name))
    page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
        " && window.jupyterapp.shell.currentWidget.sessionContext"
    )
    return context, page


def run_cell(page, index: int) -> str:
    from playwright.sync_api import expect

    page.wait_for_function(KERNEL_READY)
    page.evaluate(RUN_CELL, index)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    expect(cell.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"))
    text = " ".join(cell.locator(".jp-OutputArea-output").all_inner_texts())
    assert "Traceback" not in text, text
    return text


def test_an_audio_answer_plays_every_sample(lab, browsers, artifacts):
    from playwright.sync_api import expect

    context, page = open_notebook(lab, browsers["autoplay"], "voice.ipynb", [SETUP, SPOKEN, COUNTS])
    try:
        run_cell(page, 0)
        run_cell(page, 1)
        cell = page.locator(".jp-Notebook .jp-Cell").nth(1)
        page.wait_for_function(PLAYED)
        # The answer is kept as audio (a WAV data URL) next to its transcript.
        expect(cell.locator("audio[controls] source[src^='data:audio/wav;base64,']")).to_have_count(
            1
        )
        expect(cell).to_contain_text("word23")
        page.screenshot(path=str(artifacts / "voice-played.png"))
        player = page.evaluate(LAST_PLAYER)
        pcm_samples, received, scheduled, status = run_cell(page, 2).split()
        assert int(pcm_samples) == 25 * 1200  # "Echo:" and 24 words, one 50 ms beep each
        assert player["received"] == int(pcm_samples)
        assert player["scheduled"] == int(pcm_samples)
        assert player["played"] == int(pcm_samples)
        assert player["status"] == "ended"
        # The browser reported the same to the kernel.
        assert (int(received), int(scheduled), status) == (int(pcm_samples),) * 2 + ("ended",)
    finally:
        context.close()


LONG = "%%realtime --modalities audio\n" + " ".join(f"long{n}" for n in range(200))
TRUNCATED = """import time
deadline = time.monotonic() + 30
while not [e for e in s.events if e['type'] == 'conversation.item.truncated']:
    assert time.monotonic() < deadline, 'no truncation'
    time.sleep(0.05)
print(*[e['audio_end_ms'] for e in s.events if e['type'] == 'conversation.item.truncated'])"""

# Clicks Stop and, in the same turn, reads how far the answer has played by the page's clock.
STOP_AT = """(button) => {
  const audio = globalThis.__rtNotebookAudio;
  const state = audio.players.at(-1);
  // Minus the silence while audio arrived late: the clock ran, the answer did not.
  const position = audio.ctx.currentTime - state.startTime - state.starved / 24000;
  button.click();
  return position;
}"""


def test_stop_truncates_where_the_listener_stopped(lab, browsers, artifacts):
    from playwright.sync_api import expect

    cells = [SETUP, SPOKEN, LONG, TRUNCATED]
    context, page = open_notebook(lab, browsers["autoplay"], "voice-stop.ipynb", cells)
    try:
        run_cell(page, 0)
        run_cell(page, 1)  # the kernel's first player: the browser answers from then on
        page.wait_for_function(PLAYED)
        run_cell(page, 2)
        cell = page.locator(".jp-Notebook .jp-Cell").nth(2)
        player = cell.locator(".rt-notebook-player")
        expect(player).to_have_attribute("data-status", "playing")
        # Stop a second or more into the 10 s answer, once all of it has arrived (so the
        # silence counted while it was late is final).
        page.wait_for_function(
            "() => { const a = globalThis.__rtNotebookAudio, p = a.players.at(-1);"
            " return p.startTime !== null && p.ended && !p.idle"
            " && a.ctx.currentTime - p.startTime - p.starved / 24000 > 1; }"
        )
        position = page.evaluate(
            STOP_AT, player.locator(".rt-notebook-player-stop").element_handle()
        )
        page.screenshot(path=str(artifacts / "voice-stopped.png"))
        (end_ms,) = map(int, run_cell(page, 3).split())
        assert abs(end_ms - position * 1000) <= 50, (end_ms, position)
        # The notebook keeps what was heard: the same cut.
        expect(cell.locator("audio[controls]")).to_have_count(1)
    finally:
        context.close()
