"""The embedded server's voice input: energy VAD on real speech (espeak-ng, resampled with
sox), commits, automatic echo answers, barge-in, manual mode, offline transcription; every
event checked against the SDK's models in both dialects."""

from __future__ import annotations

import base64
import math
import struct

import pytest
from server_helpers import Driven, assert_all_valid, types

from rt_notebook.protocol.events import Dialect, Event
from rt_notebook.server.vad import FRAME_MS, EnergyVad, SpeechStarted, SpeechStopped, threshold_rms
from tests.speech import make_speech, silence

CHUNK_MS = 100  # what a microphone widget sends per append
CHUNK = CHUNK_MS * 48
LEAD_MS = 1000  # silence before the speech
TAIL_MS = 1500  # silence after it


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """PCM16 24 kHz mono of "hello there", and where its sound starts and ends (ms)."""
    return make_speech(tmp_path_factory.mktemp("speech"))


def appends(pcm: bytes) -> list[Event]:
    return [
        {
            "type": "input_audio_buffer.append",
            "audio": base64.b64encode(pcm[i : i + CHUNK]).decode("ascii"),
        }
        for i in range(0, len(pcm), CHUNK)
    ]


def turn_detection(driven: Driven, value: object) -> None:
    if driven.dialect is Dialect.GA:
        driven.session_update(audio={"input": {"turn_detection": value}})
    else:
        driven.session_update(turn_detection=value)


def one(events: list[Event], kind: str) -> Event:
    (event,) = [e for e in events if e["type"] == kind]
    return event


def spoken(events: list[Event]) -> bytes:
    return b"".join(
        base64.b64decode(e["delta"])
        for e in events
        if e["type"] in ("response.output_audio.delta", "response.audio.delta")
    )


@pytest.mark.parametrize("dialect", [Dialect.GA, Dialect.BETA])
def test_speech_is_detected_committed_and_answered_with_its_own_echo(speech, dialect):
    pcm, first_ms, last_ms = speech
    driven = Driven(dialect)
    turn_detection(driven, {"type": "server_vad", "silence_duration_ms": 500})
    out = driven.send(*appends(silence(LEAD_MS) + pcm + silence(TAIL_MS)))
    order = [
        t
        for t in types(out)
        if t.startswith(("input_audio_buffer", "conversation.item", "response.created"))
    ]
    assert order[:4] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added" if dialect is Dialect.GA else "conversation.item.created",
    ]
    assert "response.created" in order
    started = one(out, "input_audio_buffer.speech_started")
    stopped = one(out, "input_audio_buffer.speech_stopped")
    committed = one(out, "input_audio_buffer.committed")
    # The times bracket the speech within one microphone chunk (300 ms prefix padding).
    assert abs(started["audio_start_ms"] + 300 - (LEAD_MS + first_ms)) <= CHUNK_MS
    assert abs(stopped["audio_end_ms"] - (LEAD_MS + last_ms)) <= CHUNK_MS
    assert started["item_id"] == stopped["item_id"] == committed["item_id"]
    # The committed item holds the speech with its padding; the answer plays it back.
    (user,) = [i for i in driven.state.items if i["id"] == committed["item_id"]]
    heard = base64.b64decode(user["content"][0]["audio"])
    start, end = started["audio_start_ms"] * 48, stopped["audio_end_ms"] * 48
    assert heard == (silence(LEAD_MS) + pcm + silence(TAIL_MS))[start:end]
    streamed = driven.run()
    assert spoken(streamed) == heard
    done = one(streamed, "response.done")["response"]
    assert done["status"] == "completed"
    transcript_done = [
        e
        for e in streamed
        if e["type"] in ("response.output_audio_transcript.done", "response.audio_transcript.done")
    ]
    assert (
        transcript_done[0]["transcript"] == f"[offline echo of {len(heard) / 48000:.1f} s of audio]"
    )
    assert_all_valid(driven.log, dialect)


def test_silence_and_quiet_noise_start_nothing():
    driven = Driven()
    quiet = struct.pack("<4800h", *[(-1) ** n * 20 for n in range(4800)])  # about -64 dBFS
    out = driven.send(*appends(silence(3000) + quiet * 5))
    assert [t for t in types(out) if t.startswith("input_audio_buffer")] == []
    assert "response.created" not in types(out)


def test_the_threshold_maps_to_rms_in_decibels():
    assert threshold_rms(0.5) == pytest.approx(32768 * 10 ** (-40 / 20))
    assert threshold_rms(0.0) == pytest.approx(32768 * 10 ** (-70 / 20))
    assert threshold_rms(1.0) == pytest.approx(32768 * 10 ** (-10 / 20))
    # A sine at -37 dBFS RMS is speech at 0.5 (-40 dBFS) and not at 0.6 (-34 dBFS).
    amplitude = 32768 * 10 ** (-37 / 20) * math.sqrt(2)
    tone = struct.pack(
        "<24000h",
        *[round(amplitude * math.sin(2 * math.pi * 440 * n / 24000)) for n in range(24000)],
    )
    assert any(isinstance(c, SpeechStarted) for c in EnergyVad({"threshold": 0.5}).feed(tone))
    assert EnergyVad({"threshold": 0.6}).feed(tone) == []


def test_speech_stops_after_the_silence_duration_and_is_reported_where_it_ended():
    vad = EnergyVad({"threshold": 0.5, "silence_duration_ms": 200, "prefix_padding_ms": 100})
    loud = struct.pack("<2h", 8000, -8000) * (24 * 300 // 2)  # 300 ms
    changes = vad.feed(silence(400) + loud + silence(190))
    assert changes == [SpeechStarted(300, 400)]
    changes = vad.feed(silence(20))
    assert changes == [SpeechStopped(700, 700 + 200)]
    assert FRAME_MS == 20


@pytest.mark.parametrize("dialect", [Dialect.GA, Dialect.BETA])
def test_barge_in_cancels_the_active_answer_with_turn_detected(speech, dialect):
    pcm, _, _ = speech
    driven = Driven(dialect)
    driven.send({"type": "conversation.item.create", "item": _user_text("Tell me a long story")})
    driven.send({"type": "response.create"})
    driven.tick(3)  # the answer is streaming
    out = driven.send(*appends(silence(200) + pcm + silence(TAIL_MS)))
    kinds = types(out)
    assert kinds.index("input_audio_buffer.speech_started") < kinds.index("response.done")
    done = next(e for e in out if e["type"] == "response.done")["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    # Then the new speech is answered.
    assert kinds.index("input_audio_buffer.committed") < len(kinds) - 1
    assert "response.created" in kinds[kinds.index("input_audio_buffer.committed") :]
    driven.run()
    assert_all_valid(driven.log, dialect)


def test_interrupt_response_off_lets_the_answer_finish(speech):
    pcm, _, _ = speech
    driven = Driven()
    turn_detection(driven, {"type": "server_vad", "interrupt_response": False})
    driven.send({"type": "conversation.item.create", "item": _user_text("Go on")})
    driven.send({"type": "response.create"})
    driven.tick(2)
    out = driven.send(*appends(pcm + silence(TAIL_MS)))
    assert "input_audio_buffer.speech_started" in types(out)
    assert "response.done" not in types(out)
    assert "response.created" not in types(out)  # one at a time: the answer still runs


def test_manual_mode_detects_nothing_and_waits_for_the_commit(speech):
    pcm, _, _ = speech
    driven = Driven()
    turn_detection(driven, None)
    out = driven.send(*appends(silence(LEAD_MS) + pcm + silence(TAIL_MS)))
    assert out == []
    out = driven.send({"type": "input_audio_buffer.commit"})
    assert types(out)[0] == "input_audio_buffer.committed"
    assert "response.created" not in types(out)
    out = driven.send({"type": "response.create"})
    streamed = driven.run()
    committed_audio = silence(LEAD_MS) + pcm + silence(TAIL_MS)
    assert spoken(streamed) == committed_audio
    assert_all_valid(driven.log, Dialect.GA)


@pytest.mark.parametrize("dialect", [Dialect.GA, Dialect.BETA])
def test_input_transcription_says_plainly_it_is_offline(speech, dialect):
    pcm, _, _ = speech
    driven = Driven(dialect)
    if dialect is Dialect.GA:
        driven.session_update(audio={"input": {"transcription": {"model": "whisper-1"}}})
    else:
        driven.session_update(input_audio_transcription={"model": "whisper-1"})
    out = driven.send(*appends(pcm + silence(TAIL_MS)))
    completed = one(out, "conversation.item.input_audio_transcription.completed")
    committed = one(out, "input_audio_buffer.committed")
    assert completed["item_id"] == committed["item_id"]
    (user,) = [i for i in driven.state.items if i["id"] == committed["item_id"]]
    seconds = len(base64.b64decode(user["content"][0]["audio"])) / 48000
    assert completed["transcript"] == f"[offline: no transcription of {seconds:.1f} s of audio]"
    assert user["content"][0]["transcript"] == completed["transcript"]
    driven.run()
    assert_all_valid(driven.log, dialect)


def test_semantic_vad_is_treated_as_server_vad_offline(speech):
    pcm, _, _ = speech
    driven = Driven()
    turn_detection(driven, {"type": "semantic_vad", "eagerness": "high"})
    out = driven.send(*appends(pcm + silence(TAIL_MS)))
    assert "input_audio_buffer.speech_stopped" in types(out)
    assert "response.created" in types(out)


def test_text_input_with_audio_output_still_beeps():
    driven = Driven()
    driven.send({"type": "conversation.item.create", "item": _user_text("Say hi")})
    driven.send({"type": "response.create"})
    streamed = driven.run()
    transcript = [e for e in streamed if e["type"] == "response.output_audio_transcript.done"]
    assert "offline echo" not in transcript[0]["transcript"]
    assert spoken(streamed)


def _user_text(text: str) -> Event:
    return {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": text}],
    }


def test_an_idle_timeout_after_the_answer_played_commits_the_silence_and_answers(speech):
    """``idle_timeout_ms``: no speech for that long after the answer finished playing (its
    response.done plus its audio, in input audio time) -> ``timeout_triggered`` with the
    silent stretch, committed as the user's item, and an answer."""
    pcm, _, _ = speech
    driven = Driven()
    idle = 1200
    turn_detection(driven, {"type": "server_vad", "idle_timeout_ms": idle})
    lead = silence(LEAD_MS) + pcm + silence(TAIL_MS)
    out = driven.send(*appends(lead))
    assert "input_audio_buffer.timeout_triggered" not in types(out)  # speech came first
    streamed = driven.run()
    answer_ms = len(spoken(streamed)) // 48  # the echo plays this long after response.done
    # Input stops while the answer streams (run() appends nothing), so the answer ends
    # playing at len(lead) + answer_ms; the timeout falls idle_timeout_ms later.
    played_until = len(lead) // 48 + answer_ms
    wait = silence(answer_ms + idle - CHUNK_MS)
    out = driven.send(*appends(wait))
    assert "input_audio_buffer.timeout_triggered" not in types(out)  # not yet
    out = driven.send(*appends(silence(2 * CHUNK_MS)))
    triggered = one(out, "input_audio_buffer.timeout_triggered")
    assert triggered["audio_start_ms"] == played_until
    idle_ms = triggered["audio_end_ms"] - triggered["audio_start_ms"]
    assert idle <= idle_ms < idle + FRAME_MS  # at the end of the 20 ms frame that reached it
    kinds = types(out)
    assert kinds.index("input_audio_buffer.timeout_triggered") < kinds.index(
        "input_audio_buffer.committed"
    )
    committed = one(out, "input_audio_buffer.committed")
    assert committed["item_id"] == triggered["item_id"]
    (user,) = [i for i in driven.state.items if i["id"] == triggered["item_id"]]
    assert base64.b64decode(user["content"][0]["audio"]) == silence(idle_ms)  # the silence
    assert "response.created" in kinds[kinds.index("input_audio_buffer.committed") :]
    driven.run()
    assert_all_valid(driven.log, Dialect.GA)


def test_no_idle_timeout_while_an_answer_runs_nor_without_the_setting():
    driven = Driven()
    turn_detection(driven, {"type": "server_vad", "idle_timeout_ms": 500})
    driven.send({"type": "conversation.item.create", "item": _user_text("Tell me a long story")})
    driven.send({"type": "response.create"})
    driven.tick(2)  # the answer is streaming: silence meanwhile is not the user's pause
    out = driven.send(*appends(silence(3000)))
    assert "input_audio_buffer.timeout_triggered" not in types(out)
    plain = Driven()
    turn_detection(plain, {"type": "server_vad"})
    assert "input_audio_buffer.timeout_triggered" not in types(plain.send(*appends(silence(5000))))
    # Without an answer yet, the count starts at the first audio: 500 ms of it.
    fresh = Driven()
    turn_detection(fresh, {"type": "server_vad", "idle_timeout_ms": 500})
    out = fresh.send(*appends(silence(600)))
    triggered = one(out, "input_audio_buffer.timeout_triggered")
    assert (triggered["audio_start_ms"], triggered["audio_end_ms"]) == (0, 500)
    fresh.run()
    assert_all_valid(fresh.log, Dialect.GA)
