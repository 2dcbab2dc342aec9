"""The microphone in JupyterLab 4 (headless Chromium with a fake capture device).

Chromium's fake device plays a WAV file the test makes with ``espeak-ng`` (padded with
silence by ``sox``) and loops it for as long as capture runs, so durations here are what
the page's worklet counted as captured, never what the file holds. Sound may play without
a click (``--autoplay-policy``); the permission prompt is auto-accepted by the fake UI
flag, and refused in the test that launches without it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tests.browser.lab_page import (
    CHROMIUM_ARGS,
    open_notebook,
    open_notebook7,
    run_cell_by_keyboard,
)
from tests.browser.lab_page import run_cell_when_idle as run_cell
from tests.timing import within

pytestmark = [pytest.mark.browser, pytest.mark.timeout(within(300))]

CHUNK_BYTES = 4800  # 100 ms of PCM16 at 24 kHz
# Pictographs, arrows and symbols with no glyph in a plain Linux font set (no emoji font).
EMOJI = re.compile("[\u2190-\u2bff\U0001f000-\U0001faff]")


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """A short spoken phrase between silences, as a mono 16-bit WAV file."""
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("the microphone tests need espeak-ng and sox")
    folder = tmp_path_factory.mktemp("speech")
    raw, padded = folder / "raw.wav", folder / "speech.wav"
    subprocess.run(
        ["espeak-ng", "-w", str(raw), "hello notebook, what is two plus two"], check=True
    )
    subprocess.run(
        ["sox", str(raw), "-r", "48000", "-c", "1", "-b", "16", str(padded), "pad", "0.5", "1.5"],
        check=True,
    )
    return padded


@pytest.fixture(scope="module")
def browsers(chromium_path, speech):
    """Chromium with the fake microphone, one granting it and one without the fake UI
    (so the permission is Playwright's to refuse)."""
    from playwright.sync_api import sync_playwright

    fake = [
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={speech}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    with sync_playwright() as playwright:
        granted = playwright.chromium.launch(
            executable_path=str(chromium_path),
            args=[*CHROMIUM_ARGS, *fake, "--use-fake-ui-for-media-stream"],
        )
        refused = playwright.chromium.launch(
            executable_path=str(chromium_path), args=[*CHROMIUM_ARGS, *fake]
        )
        yield {"granted": granted, "refused": refused}
        granted.close()
        refused.close()


def hold(page, button, captured_seconds: float) -> dict:
    """Hold ``button`` until the page captured ``captured_seconds``; return the mic's data."""
    mic = button.locator("xpath=..")
    box = button.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.wait_for_function(
        "([el, s]) => el.dataset.status === 'recording' && +el.dataset.rate > 0"
        " && +el.dataset.captured / +el.dataset.rate >= s",
        arg=[mic.element_handle(), captured_seconds],
    )
    page.mouse.up()
    page.wait_for_function("(el) => el.dataset.status === 'idle'", arg=mic.element_handle())
    return mic.evaluate("(el) => ({...el.dataset})")


MIC_ONLY = """import rt_notebook.widgets.mic as m
mic = m.Microphone()
got = []
mic.on_audio(got.append)
ends = []
mic.on_end(ends.append)
mic"""
MIC_COUNTS = "print(sum(map(len, got)), len(got), ends[-1] if ends else None, mic.gaps)"


# Blocks the kernel's main shell until a second of audio has arrived: only possible when
# the microphone's messages are handled on a subshell while a cell runs.
BUSY = f"""import time
deadline = time.monotonic() + {within(60)!r}
while mic.received < 48_000:
    assert time.monotonic() < deadline, f'heard {{mic.received}} bytes, not a second'
    time.sleep(0.01)
print("heard while busy")"""


def test_hold_to_talk_sends_every_captured_sample_while_a_cell_runs(lab, browsers):
    from playwright.sync_api import expect

    cells = [MIC_ONLY, BUSY, MIC_COUNTS]
    context, page = open_notebook(lab, browsers["granted"], "mic-only.ipynb", cells)
    try:
        run_cell(page, 0)
        run_cell(page, 1, wait=False)  # it runs on
        busy = page.locator(".jp-Notebook .jp-Cell").nth(1)
        expect(busy.locator(".jp-InputPrompt")).to_have_text("[*]:")
        button = page.locator(".rt-notebook-mic-talk")
        data = hold(page, button, 1.5)
        expect(busy.locator(".jp-OutputArea-output")).to_contain_text("heard while busy")
        captured = int(data["captured"]) / int(data["rate"])
        total, chunks, seconds, gaps = run_cell(page, 2).split()
        assert abs(float(seconds) - captured) < 1e-6
        assert abs(int(total) - captured * 48_000) <= CHUNK_BYTES, (total, captured)
        assert int(total) == int(data["sentBytes"])
        assert int(chunks) >= 15
        assert int(gaps) == 0
    finally:
        context.close()


# The page's status reaches the kernel as a widget update on a subshell, in its own time:
# the cell waits (on the main shell) for the state it then prints, up to a ceiling.
MIC_ERROR = f"""import time
deadline = time.monotonic() + {within(30)}
while mic.status != "error" and time.monotonic() < deadline:
    time.sleep(0.01)
print(repr(mic.status), repr(mic.error))"""


@pytest.mark.parametrize("case", ["denied", "insecure"])
def test_a_microphone_that_cannot_open_says_why(lab, browsers, case):
    from playwright.sync_api import expect

    # Denied: no fake UI, and the context grants no microphone, so the browser refuses.
    # Insecure: a page that is not a secure context (http on a public name) has no
    # microphone at all; here the page is told so before anything loads.
    browser = browsers["refused" if case == "denied" else "granted"]
    name = f"mic-{case}.ipynb"
    context, page = open_notebook(lab, browser, name, [MIC_ONLY, MIC_ERROR])
    try:
        if case == "insecure":
            page.add_init_script(
                "Object.defineProperty(window, 'isSecureContext', {get: () => false})"
            )
            page.reload()
        run_cell(page, 0)
        page.locator(".rt-notebook-mic-talk").click()
        label = page.locator(".rt-notebook-mic-label")
        expected = {"denied": "permission denied", "insecure": "needs a secure page"}[case]
        expect(label).to_contain_text(expected)
        expect(page.locator(".rt-notebook-mic")).to_have_attribute("data-status", "error")
        status, error = run_cell(page, 1).split(" ", 1)
        assert status == "'error'"
        assert expected in error
        # Nothing hangs: pressing again says the same, at once.
        page.locator(".rt-notebook-mic-talk").click()
        expect(label).to_contain_text(expected)
    finally:
        context.close()


VOICE_SETUP = """%load_ext rt_notebook
import rt_notebook
s = rt_notebook.connect(offline=True, modalities=["audio"])
s.record("voice-events.jsonl")"""
# What the server received: the PCM of every input_audio_buffer.append sent.
SENT = """import base64, json
def sent(kind):
    with open("voice-events.jsonl") as f:
        lines = [json.loads(line) for line in f]
    return [l["data"] for l in lines if l["direction"] == "sent" and l["data"]["type"] == kind]
print(sum(len(base64.b64decode(e["audio"])) for e in sent("input_audio_buffer.append")),
      len(sent("input_audio_buffer.commit")))"""


def test_push_to_talk_completes_a_turn(lab, browsers, artifacts):
    from playwright.sync_api import expect

    cells = [VOICE_SETUP, "%realtime voice", SENT]
    context, page = open_notebook(lab, browsers["granted"], "mic-push.ipynb", cells)
    try:
        run_cell(page, 0)
        run_cell(page, 1)
        cell = page.locator(".jp-Notebook .jp-Cell").nth(1)
        data = hold(page, cell.locator(".rt-notebook-mic-talk"), 2.0)
        captured = int(data["captured"]) / int(data["rate"])
        # The user's bubble, then the answer plays with its transcript beside it.
        turn = cell.locator(".rt-notebook-voice-turn").first
        expect(turn.locator(".rt-chat-user")).to_contain_text("voice message")
        expect(turn.locator(".rt-notebook-player")).to_have_attribute("data-status", "ended")
        expect(turn.locator(".rt-chat-assistant")).not_to_be_empty()
        page.screenshot(path=str(artifacts / "mic-push-to-talk.png"))
        appended, commits = map(int, run_cell(page, 2).split())
        assert abs(appended - captured * 48_000) <= CHUNK_BYTES, (appended, captured)
        assert commits == 1
        seconds = float(re.search(r"([\d.]+) s\)", turn.inner_text()).group(1))
        assert abs(seconds - appended / 48_000) <= 0.05
    finally:
        context.close()


TRUNCATED = f"""import time
deadline = time.monotonic() + {within(60)!r}
while not [e for e in s.events if e['type'] == 'conversation.item.truncated']:
    assert time.monotonic() < deadline, 'no truncation'
    time.sleep(0.05)
print(*[e['audio_end_ms'] for e in s.events if e['type'] == 'conversation.item.truncated'])"""

# Reads how far the answer has played by the page's clock and, in the same turn, presses
# to talk (barge-in).
BARGE_IN = """(button) => {
  const audio = globalThis.__rtNotebookAudio;
  const state = audio.players.at(-1);
  // Minus the silence while audio arrived late: the clock ran, the answer did not.
  const position = audio.ctx.currentTime - state.startTime - state.starved / 24000;
  button.dispatchEvent(new PointerEvent("pointerdown", {bubbles: true}));
  return position;
}"""


def test_talking_over_an_answer_truncates_it_where_the_listener_stopped(lab, browsers, artifacts):
    from playwright.sync_api import expect

    cells = [VOICE_SETUP, "%realtime voice", TRUNCATED]
    context, page = open_notebook(lab, browsers["granted"], "mic-barge.ipynb", cells)
    try:
        run_cell(page, 0)
        run_cell(page, 1)
        cell = page.locator(".jp-Notebook .jp-Cell").nth(1)
        talk = cell.locator(".rt-notebook-mic-talk")
        # A first answer plays to its end: the page's AudioContext starts with it, and a
        # context's first moments may advance its clock without rendering (which would
        # make the clock a wrong measure of what was heard).
        hold(page, talk, 0.5)
        players = cell.locator(".rt-notebook-player")
        expect(players.first).to_have_attribute("data-status", "ended")
        hold(page, talk, 3.0)  # the offline answer echoes these 3 s
        player = players.nth(1)
        expect(player).to_have_attribute("data-status", "playing")
        # Once a second or more has played and all of it has arrived (so the silence
        # counted while it was late is final), talk over it.
        page.wait_for_function(
            "() => { const a = globalThis.__rtNotebookAudio, p = a.players.at(-1);"
            " return p.startTime !== null && p.ended && !p.idle"
            " && a.ctx.currentTime - p.startTime - p.starved / 24000 > 1; }"
        )
        position = page.evaluate(BARGE_IN, talk.element_handle())
        expect(player).to_have_attribute("data-status", "stopped")
        mic = cell.locator(".rt-notebook-mic")
        expect(mic).to_have_attribute("data-status", "recording")
        talk.dispatch_event("pointerup")
        expect(mic).to_have_attribute("data-status", "idle")
        page.screenshot(path=str(artifacts / "mic-barge-in.png"))
        (end_ms,) = map(int, run_cell(page, 2).split())
        heard = page.evaluate(
            "() => { const p = globalThis.__rtNotebookAudio.players[1];"
            " return {played: p.played, start: p.startTime, starved: p.starved}; }"
        )
        assert abs(end_ms - position * 1000) <= 50, (end_ms, position, heard)
        assert end_ms == heard["played"] * 1000 // 24_000
    finally:
        context.close()


HANDSFREE_EVENTS = """kinds = [e['type'] for e in s.events]
print(kinds.count('input_audio_buffer.speech_started'),
      kinds.count('input_audio_buffer.speech_stopped'),
      kinds.count('input_audio_buffer.committed'))"""


def test_hands_free_completes_a_turn_with_voice_activity_events(lab, browsers, artifacts):
    from playwright.sync_api import expect

    cells = [VOICE_SETUP, "%realtime voice", HANDSFREE_EVENTS]
    context, page = open_notebook(lab, browsers["granted"], "mic-free.ipynb", cells)
    try:
        run_cell(page, 0)
        run_cell(page, 1)
        cell = page.locator(".jp-Notebook .jp-Cell").nth(1)
        cell.locator(".rt-notebook-mic-handsfree").click()
        mic = cell.locator(".rt-notebook-mic")
        expect(mic).to_have_attribute("data-status", "recording")
        expect(mic).to_have_attribute("data-mode", "handsfree")
        # The server hears the phrase end, commits it and answers: a turn with its answer.
        turn = cell.locator(".rt-notebook-voice-turn").first
        expect(turn.locator(".rt-chat-user")).to_contain_text("voice message")
        expect(turn.locator(".rt-notebook-player")).to_have_count(1)
        expect(turn.locator(".rt-chat-assistant")).to_contain_text("offline echo")
        cell.locator(".rt-notebook-mic-handsfree").click()
        expect(mic).to_have_attribute("data-status", "idle")
        page.screenshot(path=str(artifacts / "mic-hands-free.png"))
        started, stopped, committed = map(int, run_cell(page, 2).split())
        assert started >= 1
        assert stopped >= 1
        assert committed >= 1
        # The bubble's duration is the server's: speech_stopped minus speech_started.
        seconds = float(re.search(r"([\d.]+) s\)", turn.inner_text()).group(1))
        assert 1.0 < seconds < 4.0
    finally:
        context.close()


PANEL = "panel = rt_notebook.ChatPanel(s)\npanel"
# The panel's notebook export keeps the spoken answer as playable audio: the exact PCM.
EXPORT = """import base64, re
from rt_notebook.client.audio import wav_pcm
streamed = panel.voice.controller.answers[-1].handle.wait(30).audio
outputs = [o for c in panel.to_cells() for o in c.get("outputs", [])]
html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
wav = base64.b64decode(re.search(r'base64,([^"]+)"', html[-1]).group(1))
pcm, rate = wav_pcm(wav)
print(len(html), rate, pcm == streamed, len(pcm))"""


def test_the_chat_panel_talks_and_keeps_the_spoken_answer(lab, browsers, artifacts):
    from playwright.sync_api import expect

    cells = [VOICE_SETUP, PANEL, EXPORT]
    context, page = open_notebook(lab, browsers["granted"], "mic-panel.ipynb", cells)
    try:
        run_cell(page, 0)
        run_cell(page, 1)
        chat = page.locator(".jp-Notebook .rt-chat")
        hold(page, chat.locator(".rt-notebook-mic-talk"), 1.5)
        user = chat.locator(".rt-chat-transcript .rt-chat-user")
        expect(user).to_contain_text("voice message")
        expect(chat.locator(".rt-chat-transcript .rt-chat-assistant")).to_contain_text(
            "offline echo"
        )
        player = chat.locator(".rt-chat-voice .rt-notebook-player")
        expect(player).to_have_attribute("data-status", "ended")
        page.screenshot(path=str(artifacts / "mic-panel.png"))
        count, rate, same, size = run_cell(page, 2).split()
        assert (count, rate, same) == ("1", "24000", "True")
        assert int(size) > 48_000  # over a second of audio
    finally:
        context.close()


def test_push_to_talk_in_notebook7(lab, browsers, artifacts):
    from playwright.sync_api import expect

    cells = [VOICE_SETUP, "%realtime voice"]
    context, page = open_notebook7(lab, browsers["granted"], "mic-nb7.ipynb", cells)
    try:
        for index in range(len(cells)):  # as a person would: click the cell, Shift+Enter
            run_cell_by_keyboard(page, index)
        cell = page.locator(".jp-Notebook .jp-Cell").nth(1)
        hold(page, cell.locator(".rt-notebook-mic-talk"), 1.0)
        turn = cell.locator(".rt-notebook-voice-turn").first
        expect(turn.locator(".rt-chat-user")).to_contain_text("voice message")
        expect(turn.locator(".rt-notebook-player")).to_have_attribute("data-status", "ended")
        expect(turn.locator(".rt-chat-assistant")).to_contain_text("offline echo")
        page.screenshot(path=str(artifacts / "mic-notebook7.png"))
    finally:
        context.close()


def test_hands_free_in_notebook7(lab, browsers, artifacts):
    from playwright.sync_api import expect

    cells = [VOICE_SETUP, "%realtime voice"]
    context, page = open_notebook7(lab, browsers["granted"], "mic-nb7-free.ipynb", cells)
    try:
        for index in range(len(cells)):
            run_cell_by_keyboard(page, index)
        cell = page.locator(".jp-Notebook .jp-Cell").nth(1)
        cell.locator(".rt-notebook-mic-handsfree").click()
        mic = cell.locator(".rt-notebook-mic")
        expect(mic).to_have_attribute("data-mode", "handsfree")
        # Server VAD ends the spoken turn by itself: no press, no release.
        turn = cell.locator(".rt-notebook-voice-turn").first
        expect(turn.locator(".rt-chat-user")).to_contain_text("voice message")
        expect(turn.locator(".rt-chat-assistant")).to_contain_text("offline echo")
        cell.locator(".rt-notebook-mic-handsfree").click()
        expect(mic).to_have_attribute("data-status", "idle")
        page.screenshot(path=str(artifacts / "mic-notebook7-hands-free.png"))
    finally:
        context.close()


# What the panel's hands-free barge-in did, seen from the kernel's recording (every event
# sent and received): the voice activity events, the truncates sent and the server's
# acknowledgements, as (item id, audio_end_ms).
PANEL_BARGE_IN = """import json, time
def recorded(direction, kind):
    with open("voice-events.jsonl") as f:
        lines = [json.loads(line) for line in f]
    return [l["data"] for l in lines if l["direction"] == direction and l["data"]["type"] == kind]
deadline = time.monotonic() + {deadline!r}
while not recorded("received", "conversation.item.truncated"):
    assert time.monotonic() < deadline, 'no truncation'
    time.sleep(0.05)
pairs = lambda events: [[e["item_id"], e["audio_end_ms"]] for e in events]
print(json.dumps({{
    "started": len(recorded("received", "input_audio_buffer.speech_started")),
    "committed": len(recorded("received", "input_audio_buffer.committed")),
    "sent": pairs(recorded("sent", "conversation.item.truncate")),
    "acknowledged": pairs(recorded("received", "conversation.item.truncated")),
}}))"""


# The page's microphone, in the test's hands: a 220 Hz tone the test switches on (speech,
# to the server's energy detector) and off (digital silence), instead of a file that loops
# on its own clock. The user then talks over an answer once it is heard playing.
TEST_VOICE = """(() => {
  const voice = (globalThis.__rtTestVoice = { set: () => {} });
  navigator.mediaDevices.getUserMedia = async () => {
    const ctx = new AudioContext();
    const tone = ctx.createOscillator();
    const gain = ctx.createGain();
    const out = ctx.createMediaStreamDestination();
    tone.frequency.value = 220;
    gain.gain.value = 0;
    tone.connect(gain).connect(out);
    tone.start();
    voice.set = (on) => { gain.gain.value = on ? 0.5 : 0; };
    return out.stream;
  };
})();"""


def test_hands_free_in_the_panel_answers_and_stops_when_the_user_talks_over_it(
    lab, browsers, artifacts
):
    """The user speaks, then pauses: the server hears the pause, commits and answers (the
    echo of what was said, as long). Once the answer is heard playing, the user talks over
    it: it stops there and is truncated where it stopped. The speech lasts longer than any
    round trip from the page to the server and back (a ceiling, like every wait here), so
    the answer is still playing when the barge-in reaches it."""
    from playwright.sync_api import expect

    wait_ms = within(30) * 1000  # expect()'s own default (5 s) is not the page's
    cells = [VOICE_SETUP, PANEL, PANEL_BARGE_IN.format(deadline=within(60))]
    context, page = open_notebook(lab, browsers["granted"], "mic-panel-free.ipynb", cells)
    try:
        page.add_init_script(TEST_VOICE)
        page.reload()
        run_cell(page, 0)
        run_cell(page, 1)
        chat = page.locator(".jp-Notebook .rt-chat")
        chat.locator(".rt-notebook-mic-handsfree").click()
        mic = chat.locator(".rt-notebook-mic")
        expect(mic).to_have_attribute("data-status", "recording", timeout=wait_ms)
        expect(mic).to_have_attribute("data-mode", "handsfree", timeout=wait_ms)
        voice = mic.element_handle()
        captured = "(el) => +el.dataset.rate > 0 ? +el.dataset.captured / +el.dataset.rate : 0"
        page.evaluate("() => globalThis.__rtTestVoice.set(true)")
        spoke_from = mic.evaluate(captured)
        page.wait_for_function(
            f"([el, until]) => ({captured})(el) >= until", arg=[voice, spoke_from + within(3)]
        )
        page.evaluate("() => globalThis.__rtTestVoice.set(false)")
        # A spoken turn: its bubble, then the answer's transcript.
        expect(chat.locator(".rt-chat-transcript .rt-chat-user").first).to_contain_text(
            "voice message", timeout=wait_ms
        )
        expect(chat.locator(".rt-chat-transcript .rt-chat-assistant").first).to_contain_text(
            "offline echo", timeout=wait_ms
        )
        # The answer is heard (some of it played), and the user talks over it.
        playing = page.wait_for_function(
            "() => globalThis.__rtNotebookAudio?.players.find("
            "(p) => p.status === 'playing' && p.played > 0)"
        )
        page.evaluate("() => globalThis.__rtTestVoice.set(true)")
        # That answer stops, with part of it unheard.
        page.wait_for_function("(p) => p.status !== 'playing'", arg=playing)
        page.evaluate("() => globalThis.__rtTestVoice.set(false)")
        heard = playing.evaluate(
            "(p) => ({status: p.status, played: p.played, received: p.received,"
            " start: p.startTime})"
        )
        assert heard["status"] == "stopped", heard  # not "ended": the barge-in reached it
        assert heard["start"] is not None
        assert 0 < heard["played"] < heard["received"], heard
        page.screenshot(path=str(artifacts / "mic-panel-barge-in.png"))
        # The controls' icons are drawn (inline SVG), not emoji: those are empty boxes
        # where the machine has no emoji font, as on this one.
        for selector in (".rt-notebook-mic-talk", ".rt-notebook-mic-handsfree"):
            expect(chat.locator(f"{selector} svg.rt-notebook-icon")).to_be_visible(timeout=wait_ms)
        label = chat.locator(".rt-chat-voice .rt-notebook-player-label")
        expect(label.locator("svg.rt-notebook-icon")).to_be_visible(timeout=wait_ms)
        for control in (mic, label):
            assert not EMOJI.search(control.inner_text()), control.inner_text()
        chat.locator(".rt-notebook-mic-handsfree").click()
        expect(mic).to_have_attribute("data-status", "idle", timeout=wait_ms)
        seen = json.loads(run_cell(page, 2))
        assert seen["started"] >= 2  # the first phrase, and the one that talked over its answer
        assert seen["committed"] >= 1
        # A truncate says what the page played of the stopped answer, no more, and the
        # server truncated that item there (each truncate sent is acknowledged as sent).
        assert heard["played"] * 1000 // 24_000 in [ms for _, ms in seen["sent"]], (heard, seen)
        assert seen["acknowledged"] == seen["sent"][: len(seen["acknowledged"])], seen
    finally:
        context.close()
