"""Hands-free voice end to end: a Session (real openai SDK) appends real speech to the
embedded server, whose VAD commits it and answers; the answer reaches
``on_server_response`` as a handle that streams, finishes, cancels and truncates."""

from __future__ import annotations

import os
import queue
import time

import pytest

from rt_notebook.errors import ServerError
from tests.speech import make_speech, silence

UNIT = float(os.environ.get("RT_TEST_TIME_UNIT", "0.05"))
WAIT = 600 * UNIT
CHUNK = 4800  # 100 ms, as a microphone widget sends


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    return make_speech(tmp_path_factory.mktemp("speech"))


def wait_for(predicate, what):
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(UNIT / 10)


def speak(session, pcm):
    for start in range(0, len(pcm), CHUNK):
        session.append_audio(pcm[start : start + CHUNK])


def server_handles(session):
    handles: queue.SimpleQueue = queue.SimpleQueue()
    unsubscribe = session.on_server_response(handles.put)
    return handles, unsubscribe


def test_speech_is_answered_by_a_server_response_with_its_echo(
    offline_server, make_session, speech
):
    pcm, _, _ = speech
    session = make_session(offline_server, modalities=["audio"])
    session.set_turn_detection("server_vad", silence_duration_ms=400)
    session.set_input_transcription("whisper-1")
    events = []
    stop = session.listen(events.append)
    handles, unsubscribe = server_handles(session)
    try:
        speak(session, silence(500) + pcm + silence(1000))
        handle = handles.get(timeout=WAIT)
        heard = []
        session.subscribe_audio(handle, heard.append)
        result = handle.wait(WAIT)
    finally:
        stop()
        unsubscribe()
    assert handle.by_server
    assert result.status == "completed"
    kinds = [e["type"] for e in events]
    for kind in (
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.input_audio_transcription.completed",
    ):
        assert kind in kinds
    (committed,) = [e for e in events if e["type"] == "input_audio_buffer.committed"]
    started = next(e for e in events if e["type"] == "input_audio_buffer.speech_started")
    ended = next(e for e in events if e["type"] == "input_audio_buffer.speech_stopped")
    duration = (ended["audio_end_ms"] - started["audio_start_ms"]) * 48
    # The echo is the committed speech, byte for byte (and what subscribe_audio got).
    assert len(result.audio) == duration
    assert b"".join(heard) == result.audio
    assert result.text == f"[offline echo of {duration / 48000:.1f} s of audio]"
    # The mirror's user item got its (offline) transcript.
    user = session.item(committed["item_id"])
    assert user.role == "user"
    assert user.text == f"[offline: no transcription of {duration / 48000:.1f} s of audio]"


def test_an_ask_queued_behind_a_server_response_keeps_its_own_answer(
    paced_server, make_session, speech
):
    pcm, _, _ = speech
    session = make_session(paced_server)
    session.set_turn_detection("server_vad", silence_duration_ms=300)
    handles, unsubscribe = server_handles(session)
    try:
        speak(session, pcm + silence(600))
        vad = handles.get(timeout=WAIT)
        mine = session.ask("my own question")
        assert vad.wait(WAIT).status == "completed"
        result = mine.wait(WAIT)
    finally:
        unsubscribe()
    assert "my own question" in result.text
    assert result.id != vad.response_id
    assert mine.item_ids[0] in session.item_ids()


def test_stop_cancels_a_server_response_and_speech_barges_in(paced_server, make_session, speech):
    pcm, _, _ = speech
    session = make_session(paced_server, modalities=["audio"])
    session.set_turn_detection("server_vad", silence_duration_ms=300)
    handles, unsubscribe = server_handles(session)
    try:
        speak(session, pcm + silence(600))
        first = handles.get(timeout=WAIT)
        first.cancel()  # the Stop button
        assert first.wait(WAIT).status == "cancelled"
        speak(session, pcm + silence(600))
        second = handles.get(timeout=WAIT)
        wait_for(
            lambda: (
                session.item_audio_bytes(second.output_item_ids()[0]) > 0
                if second.output_item_ids()
                else False
            ),
            "the answer's first audio",
        )
        speak(session, pcm + silence(600))  # the user talks over the answer
        barged = second.wait(WAIT)
        third = handles.get(timeout=WAIT)
        third.wait(WAIT)
    finally:
        unsubscribe()
    assert barged.status == "cancelled"
    assert barged.status_details == {"type": "cancelled", "reason": "turn_detected"}
    assert third.by_server


def test_a_server_response_can_be_truncated(offline_server, make_session, speech):
    pcm, _, _ = speech
    session = make_session(offline_server, modalities=["audio"])
    session.set_turn_detection("server_vad", silence_duration_ms=300)
    handles, unsubscribe = server_handles(session)
    try:
        speak(session, pcm + silence(600))
        handle = handles.get(timeout=WAIT)
        result = handle.wait(WAIT)
    finally:
        unsubscribe()
    item_id = handle.truncate(200, timeout=WAIT)
    assert item_id == result.items[0].id
    assert session.item(item_id).status == "incomplete"
    assert len(result.audio) > 200 * 48
    assert session.item_audio_bytes(item_id) == 200 * 48  # what the user heard
    with pytest.raises(ServerError):  # past the end of what was played: refused
        handle.truncate(len(result.audio) // 48 + 1000, timeout=WAIT)
