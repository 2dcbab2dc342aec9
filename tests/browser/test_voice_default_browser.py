"""Voice that speaks by default, in JupyterLab 4 (headless Chromium, fake microphone).

A fresh kernel with nothing configured: ``%realtime voice`` switches the Session's output
to audio while it is on, so a push-to-talk answer plays; the user talking over a
``%%realtime --modalities audio`` cell's answer stops it and truncates it where it was
heard; turning voice off gives text back to the cells.

The fake microphone and the browsers are those of ``test_mic_browser`` (espeak-ng speech
looped by Chromium's fake capture device; sound plays without a click).
"""

from __future__ import annotations

import json

import pytest

from tests.browser.lab_page import expect, open_notebook
from tests.browser.lab_page import run_cell_when_idle as run_cell
from tests.browser.test_mic_browser import browsers, hold, speech  # noqa: F401 - fixtures
from tests.timing import within

pytestmark = [pytest.mark.browser, pytest.mark.timeout(within(300))]


def test_a_fresh_kernel_speaks_the_answer_to_a_push_to_talk_turn(lab, browsers, artifacts):  # noqa: F811
    """Exactly the user's path: load the extension, turn voice on, hold, speak, release."""
    cells = ["%load_ext rt_notebook", "%realtime voice"]
    context, page = open_notebook(lab, browsers["granted"], "voice-default.ipynb", cells)
    try:
        run_cell(page, 0)
        run_cell(page, 1)
        cell = page.locator(".jp-Notebook .jp-Cell").nth(1)
        expect(cell.locator(".rt-notebook-voice-note")).to_contain_text("answers in audio")
        hold(page, cell.locator(".rt-notebook-mic-talk"), 1.5)
        turn = cell.locator(".rt-notebook-voice-turn").first
        expect(turn.locator(".rt-chat-user")).to_contain_text("voice message")
        player = turn.locator(".rt-notebook-player")
        expect(player).to_have_attribute("data-status", "ended")
        expect(turn.locator(".rt-chat-assistant")).to_contain_text("offline echo")
        heard = player.evaluate("(el) => ({...el.dataset})")
        page.screenshot(path=str(artifacts / "voice-default.png"))
        assert int(heard["received"]) > 24_000, heard  # over a second of the answer
        assert int(heard["played"]) >= int(heard["received"]), heard  # and all of it heard
    finally:
        context.close()


SETUP = """%load_ext rt_notebook
import rt_notebook
s = rt_notebook.connect()
s.record("{events}")"""
# Long enough that it cannot have played to its end when the test presses: every word of
# the echo is a 50 ms beep, so this answer plays for over 20 s.
SPOKEN_CELL = "%%realtime --modalities audio{background}\n" + "please say this " * 140
# What the kernel sent and the server acknowledged: the truncates as (item id, ms).
TRUNCATES = """import json, time
def recorded(direction, kind):
    with open("{events}") as f:
        lines = [json.loads(line) for line in f]
    return [l["data"] for l in lines if l["direction"] == direction and l["data"]["type"] == kind]
deadline = time.monotonic() + {deadline!r}
while not recorded("received", "conversation.item.truncated"):
    assert time.monotonic() < deadline, 'no truncation'
    time.sleep(0.05)
pairs = lambda events: [[e["item_id"], e["audio_end_ms"]] for e in events]
print(json.dumps({{
    "sent": pairs(recorded("sent", "conversation.item.truncate")),
    "acknowledged": pairs(recorded("received", "conversation.item.truncated")),
    "answer": [i.id for i in s.items if i.role == "assistant"][0],
}}))"""

# Once the cell's answer has played over a second (and still plays), press to talk in the
# same turn of the page's event loop, so it cannot end first; return what had played by
# the page's clock then.
PRESS_WHILE_PLAYING = """([button, player]) => new Promise((resolve) => {
  const audio = globalThis.__rtNotebookAudio;
  const step = () => {
    const state = audio.players.find((p) => p.views.size && p.status === "playing"
      && p.startTime !== null);
    const position = state
      ? audio.ctx.currentTime - state.startTime - state.starved / 24000 : 0;
    if (!state || position < 1) { requestAnimationFrame(step); return; }
    button.dispatchEvent(new PointerEvent("pointerdown", {bubbles: true}));
    resolve(position);
  };
  step();
})"""


@pytest.mark.parametrize("background", [False, True], ids=["blocking", "background"])
def test_a_mic_press_over_a_cells_spoken_answer_stops_and_truncates_it(
    lab,
    browsers,  # noqa: F811
    artifacts,
    background,
):
    mode = " --background" if background else ""
    stem = f"voice-over-cell-{'bg' if background else 'block'}"
    # A recording of its own: the other notebook's kernel may still be writing to its own.
    events = f"{stem}-events.jsonl"
    cells = [
        SETUP.format(events=events),
        "%realtime voice",
        SPOKEN_CELL.format(background=mode),
        TRUNCATES.format(deadline=within(60), events=events),
    ]
    name = f"{stem}.ipynb"
    context, page = open_notebook(lab, browsers["granted"], name, cells)
    try:
        run_cell(page, 0)
        run_cell(page, 1)
        voice = page.locator(".jp-Notebook .jp-Cell").nth(1)
        spoken = page.locator(".jp-Notebook .jp-Cell").nth(2)
        run_cell(page, 2, wait=False)
        player = spoken.locator(".rt-notebook-player")
        expect(player).to_have_attribute("data-status", "playing")
        talk = voice.locator(".rt-notebook-mic-talk")
        position = page.evaluate(
            PRESS_WHILE_PLAYING, [talk.element_handle(), player.element_handle()]
        )
        mic = voice.locator(".rt-notebook-mic")
        expect(mic).to_have_attribute("data-status", "recording")
        talk.dispatch_event("pointerup")
        expect(mic).to_have_attribute("data-status", "idle")
        heard = page.evaluate(
            "() => { const p = globalThis.__rtNotebookAudio.players.find("
            "(p) => p.status === 'stopped'); return p && {played: p.played,"
            " received: p.received}; }"
        )
        assert heard is not None, "the cell's answer did not stop"
        assert 0 < heard["played"] < heard["received"], heard
        page.screenshot(path=str(artifacts / f"{stem}.png"))
        seen = json.loads(run_cell(page, 3))
        end_ms = heard["played"] * 1000 // 24_000
        # The cell's answer was truncated where the page stopped it, and only there.
        assert seen["sent"] == [[seen["answer"], end_ms]], (seen, heard)
        assert seen["acknowledged"] == seen["sent"], seen
        assert position >= 1  # pressed while it played, over a second in
        # The cell keeps what was heard, marked as stopped.
        expect(spoken.locator(".jp-OutputArea-output audio")).to_have_count(1)
    finally:
        context.close()


SETTINGS = """from rt_notebook.client.registry import get_session
s = get_session()
print(s.settings["modalities"], s.session_config["output_modalities"])"""


def test_voice_off_gives_text_back_and_cells_answer_in_text_meanwhile(lab, browsers):  # noqa: F811
    cells = [
        "%load_ext rt_notebook\nimport rt_notebook",
        "%realtime voice",
        SETTINGS,
        "%%realtime\nwhile voice is on",
        "%realtime voice --off",
        SETTINGS,
        "%%realtime\nafter voice",
    ]
    context, page = open_notebook(lab, browsers["granted"], "voice-off.ipynb", cells)
    try:
        run_cell(page, 0)
        run_cell(page, 1)
        assert run_cell(page, 2).strip() == "['audio'] ['audio']"
        # A cell without --modalities answers as it did before voice: in text.
        during = run_cell(page, 3)
        assert "Echo: while voice is on" in during
        assert (
            page.locator(".jp-Notebook .jp-Cell").nth(3).locator(".rt-notebook-player").count() == 0
        )
        assert "Voice is off" in run_cell(page, 4)
        voice = page.locator(".jp-Notebook .jp-Cell").nth(1)
        expect(voice.locator(".rt-notebook-mic")).to_have_count(0)
        expect(voice.locator(".rt-notebook-voice-note")).to_contain_text("Voice is off")
        assert run_cell(page, 5).strip() == "['text'] ['text']"
        after = page.locator(".jp-Notebook .jp-Cell").nth(6)
        assert "Echo: after voice" in run_cell(page, 6)
        assert after.locator(".rt-notebook-player").count() == 0
    finally:
        context.close()
