"""Voice answers speak by default: a voice control switches its Session's output to audio
while it is on and back when it is off, counted across controls, kept over a reconnect,
followed over ``%realtime reset``; typed turns still answer as before; and the user
talking over any spoken answer of the Session (a cell's too) stops and truncates it.

A real Session (the real ``openai`` SDK) against the embedded server; the microphone's
messages are sent as mic.js sends them. What the server was told is read from a recording
of the wire, not from the Session's own bookkeeping.
"""

from __future__ import annotations

import json

import pytest

from rt_notebook.client.voice_switch import audio_switch, typed_modalities
from rt_notebook.frontends.voice_control import VoiceController
from rt_notebook.widgets.mic import Microphone
from tests.test_mic_controller import Browser, tone
from tests.timing import WAIT, wait_until


def output(session):
    """The output modalities the server last confirmed for ``session``."""
    return session.session_config.get("output_modalities")


def sent_updates(path):
    """The ``output_modalities`` of each session.update sent, in order (a recording)."""
    updates = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        data = record["data"]
        update = record["direction"] == "sent" and data.get("type") == "session.update"
        if update and "output_modalities" in data["session"]:
            updates.append(data["session"]["output_modalities"])
    return updates


@pytest.fixture
def text_session(offline_server, make_session):
    """A Session as a fresh kernel has it: the default output (text)."""
    session = make_session(offline_server)
    assert session.settings["modalities"] == ["text"]
    return session


def test_a_voice_control_makes_a_default_session_speak_and_gives_text_back(text_session, tmp_path):
    session = text_session
    path = tmp_path / "wire.jsonl"
    session.record(path)
    controller = VoiceController(session, Microphone())
    try:
        assert controller.wait_switched(WAIT)
        assert output(session) == ["audio"]
        assert controller.speaking
        # A push-to-talk turn: the answer has audio (the offline server echoes the PCM).
        browser = Browser(controller.mic)
        browser.start("push")
        browser.speak(tone(0.6))
        browser.end(0.6)
        wait_for_answer(controller)
        result = controller.turns[0].answer.handle.wait(WAIT)
        assert result.audio == tone(0.6)
        assert controller.turns[0].answer.handle.params["output_modalities"] == ["audio"]
    finally:
        controller.close()
    assert controller.wait_switched(WAIT)
    assert output(session) == ["text"]
    assert session.settings["modalities"] == ["text"]
    assert typed_modalities(session) is None
    session.stop_recording()
    assert sent_updates(path) == [["audio"], ["text"]]
    assert controller.errors == []


def test_hands_free_answers_started_by_the_server_speak(text_session):
    session = text_session
    controller = VoiceController(session, Microphone())
    try:
        browser = Browser(controller.mic)
        browser.start("handsfree")
        browser.speak(tone(1.0) + bytes(2 * 24_000))
        wait_for_answer(controller)
        handle = controller.turns[0].answer.handle
        assert not handle.params  # the server started it: no per-response settings
        assert handle.wait(WAIT).audio  # spoken: the session's output was switched
        browser.end(2.0)
    finally:
        controller.close()
    assert controller.wait_switched(WAIT)
    assert output(session) == ["text"]
    assert controller.errors == []


def test_two_controls_on_one_session_give_text_back_only_when_the_last_is_off(
    text_session, tmp_path
):
    """The panel's microphone switches at its first press; ``%realtime voice`` at once."""
    session = text_session
    path = tmp_path / "wire.jsonl"
    session.record(path)
    panel = VoiceController(session, Microphone(), speak_now=False)
    voice = VoiceController(session, Microphone())
    try:
        assert not panel.speaking
        assert voice.wait_switched(WAIT)
        assert output(session) == ["audio"]
        Browser(panel.mic).start("push")  # the panel's first press holds it too
        wait_until(lambda: panel.speaking, "the panel holding the output")
        assert panel.wait_switched(WAIT)
        assert audio_switch(session).holders == 2
        voice.close()
        assert voice.wait_switched(WAIT)
        assert output(session) == ["audio"]  # the panel is still on
        assert typed_modalities(session) == ["text"]
    finally:
        panel.close()
        voice.close()
    assert panel.wait_switched(WAIT)
    assert output(session) == ["text"]
    assert audio_switch(session).holders == 0
    session.stop_recording()
    assert sent_updates(path) == [["audio"], ["text"]]  # no switching back and forth


def test_a_session_that_already_spoke_is_left_as_it_was(offline_server, make_session, tmp_path):
    session = make_session(offline_server, modalities=["audio"])
    path = tmp_path / "wire.jsonl"
    session.record(path)
    controller = VoiceController(session, Microphone())
    assert controller.wait_switched(WAIT)
    assert typed_modalities(session) is None  # typed turns speak, as they did
    controller.close()
    assert controller.wait_switched(WAIT)
    assert output(session) == ["audio"]
    session.stop_recording()
    assert sent_updates(path) == []


def test_a_choice_the_user_made_while_voice_was_on_is_kept(text_session):
    session = text_session
    controller = VoiceController(session, Microphone())
    assert controller.wait_switched(WAIT)
    session.update_session(modalities=["text"])  # the user's own choice, meanwhile
    controller.close()
    assert controller.wait_switched(WAIT)
    assert session.settings["modalities"] == ["text"]
    assert output(session) == ["text"]


def test_a_reconnect_keeps_the_switch_and_later_the_restored_output(tmp_path):
    """A drop while voice is on: the new connection speaks; after voice is off, a drop
    brings back text (the restore sends the Session's settings, as they are then)."""
    from rt_notebook.server import EmbeddedServer
    from tests.test_reconnect import new_session

    with EmbeddedServer(pace=0.0) as server:
        session = new_session(server).connect()
        try:
            controller = VoiceController(session, Microphone())
            assert controller.wait_switched(WAIT)
            path = tmp_path / "wire.jsonl"
            session.record(path)
            assert server.drop_connections() == 1
            wait_until(lambda: server.connections_opened == 2, "the reconnect")
            wait_until(lambda: session.status.state == "ready", "the restore")
            wait_until(lambda: output(session) == ["audio"], "audio on the new connection")
            session.stop_recording()
            assert sent_updates(path)[-1] == ["audio"]  # sent by the restore
            controller.close()
            assert controller.wait_switched(WAIT)
            assert output(session) == ["text"]
            session.record(path)
            assert server.drop_connections() == 1
            wait_until(lambda: server.connections_opened == 3, "the second reconnect")
            wait_until(lambda: session.status.state == "ready", "the second restore")
            session.stop_recording()
            assert sent_updates(path)[-1] == ["text"]
            assert output(session) == ["text"]
            assert session.ask("typed").wait(WAIT).text == "Echo: typed"
        finally:
            session.close()


def test_the_voice_control_follows_reset_and_switches_the_new_session(monkeypatch):
    """``%realtime voice`` then ``%realtime reset`` (with new options: a new Session):
    the new Session speaks; the closed one is not reconnected to give text back."""
    from rt_notebook.client.registry import connect, get_session
    from rt_notebook.frontends.magics import RealtimeMagics
    from rt_notebook.frontends.voice_turns import hide_voice, show_voice

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    name = "voice-switch-reset"
    old = connect(name, offline=True)
    view = show_voice(old)
    try:
        assert output(old) == ["audio"]  # switched before %realtime voice returned
        magics = RealtimeMagics(shell=None)
        magics._command_reset(old, [])  # the magics' options differ: a new Session
        new = get_session(name)
        assert new is not None
        assert new is not old
        wait_until(lambda: view.session is new, "the view on the new Session")
        assert view.controller.wait_switched(WAIT)
        assert output(new) == ["audio"]
        assert old.status.state == "closed"  # giving its output back did not reopen it
        # The same reset again (same options, same Session object): still speaking.
        magics._command_reset(new, [])
        assert get_session(name) is new
        wait_until(lambda: output(new) == ["audio"], "the reset Session speaking")
        assert hide_voice(name)
        assert view.controller.wait_switched(WAIT)
        assert output(new) == ["text"]
        assert not hide_voice(name)
    finally:
        view.close()
        for session in (old, get_session(name)):
            if session is not None:
                session.close()


def test_a_mic_press_stops_and_truncates_a_cells_spoken_answer(
    paced_server, make_session, tmp_path
):
    """A ``%%realtime --modalities audio`` cell's answer plays (its VoiceOutput); the
    user presses the voice control's microphone: the cell's player is told to stop, and
    the position the browser reports is where the answer is truncated."""
    from rt_notebook.render.voice import VoiceOutput

    session = make_session(paced_server)
    path = tmp_path / "wire.jsonl"
    session.record(path)
    controller = VoiceController(session, Microphone())
    try:
        assert controller.wait_switched(WAIT)
        handle = session.ask("a long answer " * 40, modalities=["audio"])  # as the cell asks it
        cell = VoiceOutput(session, handle, cap_seconds=300)
        player = cell.player
        player._handle_message(player, {"event": "ready"}, [])  # a browser plays it
        wait_until(lambda: player.received > 24_000, "a second of the answer")
        assert not handle.done()
        stops = []
        player.stop = lambda: stops.append(True)
        Browser(controller.mic).start("push")  # the user talks over it
        assert stops == [True]
        # The browser stopped it after 0.5 s and says so: the answer is cut there.
        player._handle_message(player, {"event": "stopped", "played": 12_000}, [])
        assert cell.truncated.wait(WAIT)
        assert handle.wait(WAIT).status == "cancelled"
        session.stop_recording()
        truncates = [
            json.loads(line)["data"]
            for line in path.read_text().splitlines()
            if '"conversation.item.truncate"' in line and '"sent"' in line
        ]
        answer = next(i for i in handle.wait(WAIT).items if i.type == "message")
        assert [(t["item_id"], t["audio_end_ms"]) for t in truncates] == [(answer.id, 500)]
    finally:
        controller.close()


def wait_for_answer(controller):
    wait_until(lambda: controller.turns and controller.turns[0].answer, "the answer")


def test_speech_heard_hands_free_stops_a_cells_spoken_answer(paced_server, make_session):
    """Hands-free, nothing is pressed: the server hearing speech start is what stops the
    cell's playing answer (the page stops nothing by itself then)."""
    from rt_notebook.render.voice import VoiceOutput

    session = make_session(paced_server)
    controller = VoiceController(session, Microphone())
    try:
        browser = Browser(controller.mic)
        browser.start("handsfree")
        wait_until(lambda: session.settings.get("turn_detection"), "hands-free on")
        handle = session.ask("a long answer " * 40, modalities=["audio"])
        cell = VoiceOutput(session, handle, cap_seconds=300)
        player = cell.player
        player._handle_message(player, {"event": "ready"}, [])
        wait_until(lambda: player.received > 24_000, "a second of the answer")
        stops = []
        player.stop = lambda: stops.append(True)
        browser.speak(tone(0.5))  # the server's voice activity detection hears it
        wait_until(lambda: stops, "the cell's player told to stop")
        player._handle_message(player, {"event": "stopped", "played": 6_000}, [])
        assert cell.truncated.wait(WAIT)
        browser.end(0.5)
    finally:
        controller.close()


def test_the_panel_speaks_from_its_first_press_until_it_closes(text_session):
    """The panel's text box comes first: opening it changes nothing; its microphone's
    first press switches to audio (said next to it); typed messages still answer in text;
    closing the panel gives text back."""
    from rt_notebook.frontends.chat import ChatPanel

    session = text_session
    panel = ChatPanel(session)
    try:
        assert panel.send("typed first").result(WAIT).wait(WAIT).text == "Echo: typed first"
        assert output(session) == ["text"]
        browser = Browser(panel.voice.microphone)
        browser.start("push")
        browser.speak(tone(0.5))
        browser.end(0.5)
        wait_until(lambda: panel.voice.controller.answers, "the spoken answer")
        answer = panel.voice.controller.answers[0]
        assert answer.handle.wait(WAIT).audio == tone(0.5)
        assert output(session) == ["audio"]
        wait_until(
            lambda: (
                "answers in audio" in panel.voice._note.value
                and panel.voice._note in panel.voice.widget.children
            ),
            "the note next to the microphone",
        )
        typed = panel.send("typed meanwhile").result(WAIT)
        assert typed.params["output_modalities"] == ["text"]
        assert typed.wait(WAIT).audio == b""
    finally:
        panel.close()
    wait_until(lambda: output(session) == ["text"], "text given back")


def test_the_note_names_the_session_escaped():
    from rt_notebook.frontends.voice_turns import _note_html

    assert "<code>%realtime voice --off</code>" in _note_html("default")
    hostile = _note_html('<img src=x onerror="alert(1)">')
    assert "<img" not in hostile
    assert "--off --session &lt;img" in hostile
    assert "<img" not in _note_html("<img>", off=True)


def test_voice_off_while_the_session_is_closed_gives_text_back_once_it_reconnects(
    text_session,
):
    """Turning voice off does not reopen a Session someone closed; the next typed turn,
    once it is open again, finds its output given back (and asks for text meanwhile)."""
    session = text_session
    controller = VoiceController(session, Microphone())
    assert controller.wait_switched(WAIT)
    session.close()
    controller.close()
    assert controller.wait_switched(WAIT)
    assert session.status.state == "closed"  # not reopened to give the output back
    session.connect()  # a fresh conversation with the Session's settings: still audio
    assert output(session) == ["audio"]
    assert typed_modalities(session) is None  # given back first: nothing to override
    assert output(session) == ["text"]
    assert session.settings["modalities"] == ["text"]
    assert controller.errors == []
