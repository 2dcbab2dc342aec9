"""Spoken answers in JupyterLab 4 (headless Chromium): the player plays every sample.

Chromium has no sound device here, yet its AudioContext clock runs and AudioWorklets
render, so playback is real. Most tests use a browser that allows autoplay (the flag a kiosk
would use). The enable-sound prompt is tested in a browser with the default policy, driven
until its click through a bare DevTools session: every Playwright ``evaluate``, locator and
``wait_for_function`` runs as a user gesture, which would unblock sound by itself.
"""

from __future__ import annotations

import pytest

from tests.browser.lab_page import (
    CHROMIUM_ARGS,
    KERNEL_READY,
    RUN_CELL,
    open_notebook,
    page_timeout_ms,
    write_notebook,
)
from tests.browser.lab_page import run_cell_when_idle as run_cell
from tests.timing import within

pytestmark = [pytest.mark.browser, pytest.mark.timeout(within(240))]

SETUP = "%load_ext rt_notebook\nimport rt_notebook\ns = rt_notebook.connect(offline=True)"
SPOKEN = "%%realtime --modalities audio --out spoken\n" + " ".join(f"word{n}" for n in range(24))
COUNTS = (
    "player = rt_notebook.render.voice.recent_players()[-1]\n"
    "print(len(spoken.audio) // 2, player.received, player.scheduled, player.status)"
)

LAST_PLAYER = (
    "() => { const p = globalThis.__rtNotebookAudio?.players?.at(-1); return p ? "
    "{status: p.status, received: p.received, scheduled: p.scheduled, played: p.played} : null; }"
)


# The conftest browser's flags (CHROMIUM_ARGS). One Playwright instance per module can run
# at a time (its sync API keeps an event loop on this thread), so both browsers come from
# this one.


PLAYED = "() => globalThis.__rtNotebookAudio?.players?.at(-1)?.status === 'ended'"


@pytest.fixture(scope="module")
def browsers(chromium_path):
    """Chromium that allows sound without a click."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        autoplay = playwright.chromium.launch(
            executable_path=str(chromium_path),
            args=[*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"],
        )
        strict = playwright.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        yield {"autoplay": autoplay, "strict": strict}
        strict.close()
        autoplay.close()


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
TRUNCATED = f"""import time
deadline = time.monotonic() + {within(30)!r}
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


WAIT_MS = page_timeout_ms()  # the pages' default timeout: how long any one step may take


DIAG = """(() => { const a = globalThis.__rtNotebookAudio;
  return ': ' + JSON.stringify({ctx: a?.ctx?.state, players: (a?.players ?? []).map((p) =>
    ({status: p.status, received: p.received, played: p.played, ended: p.ended})),
    views: [...document.querySelectorAll('.rt-notebook-player')].map((v) => v.textContent),
    outputs: [...document.querySelectorAll('.jp-OutputArea-output')]
      .map((o) => o.textContent.slice(0, 200))}); })"""


class Quiet:
    """Runs script in a page without a user gesture (a DevTools ``Runtime.evaluate``), as
    the page's own code would: the browser's autoplay policy still holds."""

    def __init__(self, page) -> None:
        self.session = page.context.new_cdp_session(page)

    def evaluate(self, expression: str):
        reply = self.session.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        assert "exceptionDetails" not in reply, reply["exceptionDetails"]["exception"].get(
            "description"
        )
        return reply["result"].get("value")

    def wait_for(self, predicate: str, what: str):
        """Wait in the page until ``predicate`` (a JS function) returns a truthy value."""
        return self.evaluate(
            f"""new Promise((resolve, reject) => {{
              const started = performance.now();
              const poll = () => {{
                let value = null;
                try {{ value = ({predicate})(); }} catch (error) {{}}
                if (value) resolve(value);
                else if (performance.now() - started > {WAIT_MS})
                  reject(new Error({what!r} + ({DIAG})()));
                else setTimeout(poll, 50);
              }};
              poll();
            }})"""
        )

    def run_cell(self, index: int) -> None:
        self.wait_for(KERNEL_READY, "the kernel is not ready")
        self.evaluate(f"({RUN_CELL})([{index}, true])")
        self.wait_for(
            f"""() => /\\[\\d+\\]/.test(document.querySelectorAll('.jp-Notebook .jp-Cell')
                [{index}]?.querySelector('.jp-InputPrompt')?.textContent ?? '')""",
            f"cell {index} did not finish",
        )


# The prompting answer (the page's second player) once all of it has arrived, unplayed.
BLOCKED = """() => {
  const audio = globalThis.__rtNotebookAudio, p = audio?.players?.[1];
  const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[2];
  const view = cell?.querySelector('.rt-notebook-player[data-status]');
  return p && p.ended && p.received > 0 && view?.dataset.status === 'blocked' && {
    state: audio.ctx.state, status: p.status, played: p.played, received: p.received,
    prompt: !view.querySelector('button:not(.rt-notebook-player-stop)').hidden,
    label: view.textContent,
  };
}"""

ENABLE_BUTTON = """(() => {
  const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[2];
  const button = cell.querySelector('.rt-notebook-player button:not(.rt-notebook-player-stop)');
  button.scrollIntoView({block: 'center'});
  const box = button.getBoundingClientRect();
  return {x: box.x + box.width / 2, y: box.y + box.height / 2};
})()"""

PLAYER = (
    "(i) => { const p = globalThis.__rtNotebookAudio.players[i];"
    " return {status: p.status, received: p.received, played: p.played}; }"
)


def test_enable_sound_prompt_one_click_for_the_page(lab, browsers, artifacts):
    """With the browser's default autoplay policy the player asks for a click; one click
    plays the answer, and a later answer on the page plays with no second click."""
    from playwright.sync_api import expect

    name = "voice-prompt.ipynb"
    # The first player's "ready" reaches the kernel only after its cell (the page has no
    # widget subshell yet), so that cell keeps its audio at once as <audio controls>; the
    # second cell's player is on the page while its answer streams, and asks.
    prompting = "%%realtime --modalities audio\n" + " ".join(f"ask{n}" for n in range(60))
    cells = [SETUP, SPOKEN, prompting, SPOKEN.replace("--out spoken", "--out again")]
    write_notebook(lab.root, name, cells)
    context = browsers["strict"].new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    quiet = Quiet(page)
    try:
        page.goto(lab.notebook_url(name))
        for index in range(3):
            quiet.run_cell(index)
        # All of the answer has arrived, and the page may not play it.
        blocked = quiet.wait_for(BLOCKED, "the player never said sound is blocked")
        assert blocked["state"] == "suspended"
        assert blocked["prompt"] is True
        assert "click to hear the answer" in blocked["label"]
        assert blocked["played"] == 0
        assert blocked["received"] == 61 * 1200  # "Echo:" and 60 words, 50 ms each
        page.screenshot(path=str(artifacts / "voice-blocked.png"))
        # One real click (trusted input, not a script) on "Enable sound".
        point = quiet.evaluate(ENABLE_BUTTON)
        page.mouse.click(point["x"], point["y"])
        page.wait_for_function("() => globalThis.__rtNotebookAudio.players[1].status === 'ended'")
        assert page.evaluate(PLAYER, 1) == {
            "status": "ended",
            "received": 61 * 1200,
            "played": 61 * 1200,
        }
        cell = page.locator(".jp-Notebook .jp-Cell").nth(2)
        wav = "audio[controls] source[src^='data:audio/wav;base64,']"
        expect(cell.locator(wav)).to_have_count(1)
        # The first answer, already kept as <audio controls> with no player left on the
        # page, did not start sounding on that click.
        expect(page.locator(".jp-Notebook .jp-Cell").nth(1).locator(wav)).to_have_count(1)
        assert page.evaluate(PLAYER, 0) == {"status": "dropped", "received": 25 * 1200, "played": 0}
        # A later answer on the same page plays to the end with no second click.
        quiet.run_cell(3)
        page.wait_for_function("() => globalThis.__rtNotebookAudio.players[2]?.status === 'ended'")
        assert page.evaluate(PLAYER, 2) == {
            "status": "ended",
            "received": 25 * 1200,
            "played": 25 * 1200,
        }
        expect(page.locator(".jp-Notebook .jp-Cell").nth(3).locator(wav)).to_have_count(1)
    finally:
        context.close()


BACKGROUND = "%%realtime --modalities audio --background --out pending\n" + " ".join(
    f"late{n}" for n in range(24)
)
BACKGROUND_COUNTS = (
    "voice = rt_notebook.render.voice.recent_voices()[-1]\n"
    "assert voice.kept.wait(60), 'not kept'\n"
    "print(len(pending.wait(60).audio) // 2, voice.player.played, voice.player.status)"
)


def test_a_background_cell_plays_and_keeps_its_audio(lab, browsers):
    from playwright.sync_api import expect

    cells = [SETUP, BACKGROUND, BACKGROUND_COUNTS]
    context, page = open_notebook(lab, browsers["autoplay"], "voice-background.ipynb", cells)
    try:
        run_cell(page, 0)
        run_cell(page, 1)  # returns at once; the answer streams and plays after it
        page.wait_for_function(PLAYED)
        cell = page.locator(".jp-Notebook .jp-Cell").nth(1)
        expect(cell.locator("audio[controls] source[src^='data:audio/wav;base64,']")).to_have_count(
            1
        )
        expect(cell).to_contain_text("late23")
        player = page.evaluate(LAST_PLAYER)
        samples, played, status = run_cell(page, 2).split()
        assert int(samples) == 25 * 1200
        assert player["played"] == player["received"] == int(samples)
        assert (int(played), status) == (int(samples), "ended")
    finally:
        context.close()
