"""The voice controller with a real Session against the embedded server: the microphone's
messages (as the browser sends them) become appends, commits and answered turns; the
user's turn reads as its duration or its transcription; server VAD ends hands-free turns
and speech interrupts what plays."""

from __future__ import annotations

import math
import struct
import time

import pytest

from rt_notebook.frontends.voice_control import VoiceController
from rt_notebook.widgets.mic import Microphone
from tests.timing import UNIT, WAIT

CHUNK = 2_400  # samples: 100 ms at 24 kHz


def wait_for(predicate, what):
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(UNIT / 10)


def tone(seconds: float, amplitude: int = 8000) -> bytes:
    count = round(seconds * 24_000)
    return struct.pack(f"<{count}h", *(int(amplitude * math.sin(i * 0.0785)) for i in range(count)))


class Browser:
    """Sends what mic.js sends: start, numbered chunks with a binary buffer, end."""

    def __init__(self, mic: Microphone) -> None:
        self.mic = mic
        self.seq = 0

    def message(self, content, buffers=()):
        self.mic._handle_message(self.mic, content, list(buffers))

    def start(self, mode):
        self.message({"event": "start", "mode": mode, "seq": self.seq})

    def speak(self, pcm: bytes):
        for offset in range(0, len(pcm), 2 * CHUNK):
            chunk = memoryview(pcm[offset : offset + 2 * CHUNK])
            self.message({"event": "audio", "seq": self.seq}, [chunk])
            self.seq += 1

    def end(self, seconds):
        self.message(
            {"event": "end", "seq": self.seq, "captured": round(seconds * 48_000), "rate": 48_000}
        )


@pytest.fixture
def talk(offline_server, make_session):
    session = make_session(offline_server, modalities=["audio"])
    mic = Microphone()
    controller = VoiceController(session, mic)
    yield session, controller, Browser(mic)
    controller.close()


def test_push_to_talk_sends_the_audio_and_completes_a_turn(talk):
    session, controller, browser = talk
    said = tone(1.2)
    browser.start("push")
    browser.speak(said)
    browser.end(1.2)
    wait_for(lambda: controller.turns and controller.turns[0].answer, "the answer")
    turn = controller.turns[0]
    result = turn.answer.handle.wait(WAIT)
    assert result.status == "completed"
    assert result.audio == said  # the offline server echoes exactly what it received
    assert turn.label == "(voice message, 1.2 s)"
    wait_for(lambda: turn.item_id is not None, "the committed item's id")
    assert turn.item_id == turn.answer.handle.item_ids[0]  # the committed user item
    assert session.item(turn.item_id).role == "user"
    assert controller.mic.received == len(said)
    assert controller.errors == []


def test_the_turn_reads_as_its_transcription_when_the_server_gives_one(talk):
    session, controller, browser = talk
    session.set_input_transcription("whisper-1")
    browser.start("push")
    browser.speak(tone(0.8))
    browser.end(0.8)
    wait_for(lambda: controller.turns and controller.turns[0].transcript, "a transcription")
    assert controller.turns[0].label == "[offline: no transcription of 0.8 s of audio]"


def test_a_tap_too_short_to_send_is_noted_and_nothing_is_committed(talk):
    session, controller, browser = talk
    sent = []
    session.listen(sent.append)
    browser.start("push")
    browser.speak(tone(0.05))
    browser.end(0.05)
    wait_for(lambda: controller.turns, "the noted turn")
    assert "too short" in controller.turns[0].label
    # The next real turn still works (the short one was cleared, not joined to it).
    browser.start("push")
    browser.speak(tone(0.5))
    browser.end(0.5)
    wait_for(lambda: len(controller.turns) == 2 and controller.turns[1].answer, "the answer")
    assert controller.turns[1].answer.handle.wait(WAIT).audio == tone(0.5)
    assert not [e for e in sent if e["type"] == "error"]


def test_hands_free_turns_end_by_voice_activity_and_speech_interrupts_the_answer(talk):
    session, controller, browser = talk
    events = []
    session.listen(lambda e: events.append(e["type"]))
    browser.start("handsfree")
    # Speech then silence: the server's VAD starts and ends the turn, commits, answers.
    browser.speak(tone(1.0) + bytes(2 * 24_000))
    wait_for(lambda: controller.turns and controller.turns[0].answer, "a VAD turn's answer")
    first = controller.turns[0]
    assert first.mode == "handsfree"
    seconds = float(first.label.removeprefix("(voice message, ").removesuffix(" s)"))
    assert 0.9 <= seconds <= 1.5  # speech_stopped minus speech_started, as the server heard
    assert "input_audio_buffer.speech_started" in events
    assert "input_audio_buffer.committed" in events
    # A browser plays it (said ready, still playing): speaking again stops its player.
    player = first.answer.player
    player._handle_message(player, {"event": "ready"}, [])
    stops = []
    player.stop = lambda: stops.append(time.monotonic())
    browser.speak(tone(0.6))
    wait_for(lambda: events.count("input_audio_buffer.speech_started") >= 2, "speech again")
    wait_for(lambda: stops, "the answer's player told to stop")
    browser.end(1.6)
    wait_for(lambda: session.settings.get("turn_detection") is None, "hands-free off")
    assert controller.errors == []


def test_the_panel_talks_labels_the_spoken_bubble_and_its_stop_stops_the_answer(
    offline_server, make_session
):
    from rt_notebook.frontends.chat import ChatPanel

    session = make_session(offline_server, modalities=["audio"])
    panel = ChatPanel(session)
    try:
        browser = Browser(panel.voice.microphone)
        browser.start("push")
        browser.speak(tone(0.7))
        browser.end(0.7)
        wait_for(lambda: panel.voice.controller.answers, "the answer")
        answer = panel.voice.controller.answers[0]
        answer.handle.wait(WAIT)
        user = next(item for item in session.items if item.role == "user")
        assert user.text == ""  # no transcription: the bubble says what it was
        assert panel.voice.shown(user).text == "(voice message, 0.7 s)"
        wait_for(lambda: panel.voice.widget.children[-1] is answer.player, "the player shown")
        answer.player._handle_message(answer.player, {"event": "ready"}, [])
        stops = []
        answer.player.stop = lambda: stops.append(True)
        panel.stop()
        assert stops == [True]
        assert panel.voice.audio() == {answer.handle.response_id: tone(0.7)}
    finally:
        panel.close()


def test_the_voice_view_follows_the_session_that_replaces_it(monkeypatch):
    """``%realtime voice`` then ``%realtime reset``: the view, its microphone and a
    hands-free capture in progress move to the new Session, as the chat panel does."""
    from rt_notebook.client.registry import connect, get_session
    from rt_notebook.frontends.magics import RealtimeMagics
    from rt_notebook.frontends.voice_turns import show_voice

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    name = "voice-view-follow"
    old = connect(name, offline=True, modalities=["audio"])
    view = show_voice(old)
    try:
        old_controller = view.controller
        browser = Browser(view.controller.mic)
        browser.start("handsfree")
        # (confirmed by the server: the controller records it once the update returned)
        wait_for(lambda: old_controller._detection == "server_vad", "hands-free on the old one")
        magics = RealtimeMagics(shell=None)
        magics.modalities = ["audio"]
        magics._command_reset(old, [])
        new = get_session(name)
        assert new is not None
        assert new is not old
        wait_for(lambda: view.session is new, "the view on the new Session")
        assert view.controller is not old_controller
        assert view.controller.session is new
        # The capture goes on in the new conversation: hands-free is on there.
        wait_for(lambda: view.controller._detection == "server_vad", "hands-free on the new one")
        sent_before = old_controller.core.sent
        browser.speak(tone(1.0) + bytes(2 * 24_000))
        wait_for(lambda: view.controller.turns and view.controller.turns[0].answer, "an answer")
        assert old_controller.core.sent == sent_before  # the old one no longer listens
        view.controller.turns[0].answer.handle.wait(WAIT)
        assert [item.role for item in new.items][:2] == ["user", "assistant"]
        wait_for(lambda: len(view._list.children) == 1, "the new turn's row")
        row = view._list.children[0]
        wait_for(lambda: "voice message" in row.children[0].value, "the spoken bubble")
        browser.end(3.0)
        wait_for(lambda: new.settings.get("turn_detection") is None, "hands-free off")
        assert view.controller.errors == []
        assert old_controller.errors == [], old_controller.errors
    finally:
        view.close()
        for session in (old, get_session(name)):
            if session is not None:
                session.close()


def test_an_answer_cut_off_before_a_word_was_heard_reads_as_interrupted(
    offline_server, make_session
):
    """A barge-in truncates the answer and drops its unheard transcript: the panel's bubble
    says so instead of showing nothing; a finished answer is shown as it is."""
    from rt_notebook.client.responses import ItemSnapshot
    from rt_notebook.frontends.chat import ChatPanel

    def answer(status: str, text: str) -> ItemSnapshot:
        return ItemSnapshot(
            id="item_1", type="message", role="assistant", status=status, text=text,
            call_id=None, name=None, arguments=None, output=None, response_id="resp_1",
        )  # fmt: skip

    panel = ChatPanel(make_session(offline_server, modalities=["audio"]))
    try:
        assert panel.voice.shown(answer("incomplete", "")).text == "*(interrupted)*"
        assert panel.voice.shown(answer("incomplete", "Hel")).text == "Hel"
        assert panel.voice.shown(answer("completed", "")).text == ""
    finally:
        panel.close()
