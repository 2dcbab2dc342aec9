"""Session input audio against the embedded server, through the real openai SDK: appends
arrive byte for byte, split under the limit, contiguous per call across threads; commits
answer as turns; an empty commit fails clearly; appends during a reconnect are dropped."""

from __future__ import annotations

import base64
import json
import os
import threading
import time

import pytest

from rt_notebook.client.session import Session, Timing
from rt_notebook.errors import ConfigurationError, RealtimeConnectionError, ServerError
from rt_notebook.protocol import payloads
from rt_notebook.server import EmbeddedServer
from tests.timing import UNIT, WAIT


def wait_for(predicate, what):
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(UNIT / 10)


@pytest.fixture
def manual(offline_server, make_session):
    """A Session with turn detection off: it commits by itself."""
    session = make_session(offline_server)
    session.set_turn_detection(None)
    return session


def committed_audio(session, commit):
    """Commit (``commit()`` does it) and return the PCM the server holds for the item."""
    seen = []
    stop = session.listen(seen.append)
    try:
        commit()
        wait_for(
            lambda: any(e["type"] == "input_audio_buffer.committed" for e in seen), "committed"
        )
        (item_id,) = [e["item_id"] for e in seen if e["type"] == "input_audio_buffer.committed"]
        session.retrieve_item(item_id, timeout=WAIT)
        (retrieved,) = [e for e in seen if e["type"] == "conversation.item.retrieved"]
    finally:
        stop()
    return base64.b64decode(retrieved["item"]["content"][0]["audio"])


def test_appended_bytes_arrive_exactly_odd_sizes_included(manual):
    pieces = [bytes([i % 251]) * (1000 + i) for i in range(40)]  # odd and even sizes
    for piece in pieces:
        manual.append_audio(piece)
    whole = b"".join(pieces)
    got = committed_audio(manual, lambda: manual.commit_audio(respond=False, timeout=WAIT))
    usable = len(whole) - len(whole) % 2
    assert got == whole[:usable]
    # The odd byte left over waits for the next call, then goes first.
    manual.append_audio(b"\x07" * 4801)
    got = committed_audio(manual, lambda: manual.commit_audio(respond=False, timeout=WAIT))
    assert got == (whole[usable:] + b"\x07" * 4801)[: (len(whole) - usable + 4801) // 2 * 2]


def test_a_large_append_is_split_under_the_services_limit(manual, tmp_path):
    pcm = os.urandom(12 * 1024 * 1024)  # 16 MiB of base64: over one event's 15 MiB
    record = tmp_path / "events.jsonl"
    manual.record(record)
    manual.append_audio(pcm)
    got = committed_audio(manual, lambda: manual.commit_audio(respond=False, timeout=WAIT))
    manual.stop_recording()
    assert got == pcm
    sizes = []
    with record.open() as stream:
        for line in stream:
            entry = json.loads(line)
            if entry["data"]["type"] == "input_audio_buffer.append":
                sizes.append(len(entry["data"]["audio"]))
    assert len(sizes) == 2
    assert max(sizes) <= payloads.MAX_APPEND_AUDIO_CHARS
    assert not any(e["type"] == "error" for e in manual.events)


def test_two_threads_appending_keep_each_calls_bytes_together(manual, monkeypatch):
    # A small limit, so each call is split into several events that could interleave.
    monkeypatch.setattr(payloads, "MAX_APPEND_AUDIO_CHARS", 800)
    calls, size = 60, 3000
    barrier = threading.Barrier(2)

    def appender(thread):
        barrier.wait()
        for n in range(calls):
            manual.append_audio(bytes([thread * 100 + n % 100]) * size)

    threads = [threading.Thread(target=appender, args=(t,)) for t in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    got = committed_audio(manual, lambda: manual.commit_audio(respond=False, timeout=WAIT))
    assert len(got) == 2 * calls * size
    blocks = [got[i : i + size] for i in range(0, len(got), size)]
    assert all(block == block[:1] * size for block in blocks), "a call's bytes were split"
    for thread in (0, 1):
        mine = [block[0] for block in blocks if block[0] // 100 == thread]
        assert mine == [thread * 100 + n % 100 for n in range(calls)]


def test_commit_answers_as_a_turn_with_the_committed_item(manual):
    before = manual.item_count
    manual.append_audio(b"\x10\x00" * 24_000)  # 0.5 s
    handle = manual.commit_audio(timeout=WAIT)
    assert handle is not None
    result = handle.wait(WAIT)
    assert result.status == "completed"
    assert result.text
    (item_id,) = handle.item_ids
    assert item_id.startswith("item_")
    assert manual.item_ids()[before] == item_id
    assert manual.item(item_id).role == "user"
    assert manual.items[before + 1].response_id == result.id


def test_commit_of_an_empty_buffer_fails_clearly_and_the_session_goes_on(manual):
    manual.append_audio(b"\x00\x00" * 100)  # about 4 ms: under the 100 ms minimum
    with pytest.raises(ServerError) as caught:
        manual.commit_audio(timeout=WAIT)
    assert caught.value.code == "input_audio_buffer_commit_empty"
    assert "buffer too small" in str(caught.value)
    assert manual.pending_responses == 0
    assert manual.ask("still there?").wait(WAIT).status == "completed"


def test_clear_empties_the_buffer(manual):
    manual.append_audio(b"\x01\x00" * 24_000)
    manual.clear_audio()
    with pytest.raises(ServerError):
        manual.commit_audio(respond=False, timeout=WAIT)


def test_settings_are_checked_before_anything_is_sent(manual):
    with pytest.raises(ConfigurationError, match="treshold"):
        manual.set_turn_detection("server_vad", treshold=0.5)
    with pytest.raises(ConfigurationError):
        manual.set_turn_detection("sever_vad")
    with pytest.raises(ConfigurationError):
        manual.set_input_transcription("")
    with pytest.raises(ConfigurationError):
        manual.commit_audio(respond=False, modalities=["audio"])
    with pytest.raises(TypeError):
        manual.append_audio("not bytes")


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_turn_detection_and_transcription_reach_the_session(request, make_session, dialect):
    server = request.getfixturevalue("beta_server" if dialect == "beta" else "offline_server")
    session = make_session(server, dialect=dialect)
    confirmed = session.set_turn_detection("server_vad", threshold=0.7, silence_duration_ms=300)
    detection = (
        confirmed["audio"]["input"]["turn_detection"]
        if dialect == "ga"
        else confirmed["turn_detection"]
    )
    assert detection["type"] == "server_vad"
    assert detection["threshold"] == 0.7
    assert detection["silence_duration_ms"] == 300
    confirmed = session.set_turn_detection("semantic_vad", eagerness="low")
    detection = (
        confirmed["audio"]["input"]["turn_detection"]
        if dialect == "ga"
        else confirmed["turn_detection"]
    )
    assert detection["type"] == "semantic_vad"
    confirmed = session.set_input_transcription("whisper-1")
    transcription = (
        confirmed["audio"]["input"]["transcription"]
        if dialect == "ga"
        else confirmed["input_audio_transcription"]
    )
    assert transcription["model"] == "whisper-1"
    session.set_turn_detection(None)
    session.set_input_transcription(None)
    config = session.session_config
    if dialect == "ga":
        assert config["audio"]["input"]["turn_detection"] is None
        assert config["audio"]["input"]["transcription"] is None
    else:
        assert config["turn_detection"] is None
        assert config["input_audio_transcription"] is None
    assert not session.errors


def timing():
    # A long first backoff: the test appends while the Session is surely reconnecting.
    return Timing(
        cancel_timeout=40 * UNIT,
        idle_timeout=200 * UNIT,
        backoff_initial=40 * UNIT,
        backoff_max=40 * UNIT,
        renew_margin=0.0,
    )


def test_appends_during_a_reconnect_are_dropped_and_counted():
    with EmbeddedServer(pace=0.0) as server:
        session = Session(
            base_url=server.base_url,
            websocket_base_url=server.websocket_base_url,
            api_key=server.token,
            timing=timing(),
        ).connect()
        try:
            session.set_turn_detection(None)
            session.append_audio(b"\x01\x00" * 24_000)  # lost with the connection
            wait_for(lambda: server.open_connections == 1, "the connection")
            assert server.drop_connections() == 1
            wait_for(lambda: session.status.state == "reconnecting", "the drop to be noticed")
            session.append_audio(b"\x02\x00" * 1000)
            with pytest.raises(RealtimeConnectionError, match="input audio"):
                session.commit_audio(timeout=WAIT)
            wait_for(lambda: session.status.state == "ready", "the reconnect")
            assert session.input_audio_dropped == 2000
            session.append_audio(b"\x03\x00" * 24_000)
            # The settings came back with the restore: turn detection is still off.
            got = committed_audio(
                session, lambda: session.commit_audio(respond=False, timeout=WAIT)
            )
            assert got == b"\x03\x00" * 24_000
        finally:
            session.close()


def test_vad_and_transcription_events_reach_listeners(manual):
    seen = []
    stop = manual.listen(lambda e: seen.append(e["type"]))
    try:
        manual.set_input_transcription("whisper-1")
        manual.append_audio(b"\x10\x00" * 24_000)
        manual.commit_audio(respond=False, timeout=WAIT)
        wait_for(lambda: "conversation.item.added" in seen, "the committed item")
    finally:
        stop()
    assert "input_audio_buffer.committed" in seen


def test_audio_flows_while_an_answer_streams(paced_server, make_session):
    session = make_session(paced_server)
    session.set_turn_detection(None)
    running = session.ask("a long answer " * 300)
    wait_for(lambda: running.response_id is not None, "the answer to start")
    session.append_audio(b"\x05\x00" * 12_000)  # not held behind the running turn
    assert session.commit_audio(respond=False, timeout=WAIT) is None
    assert not running.done()  # committed while the answer was still streaming
    running.cancel()
    assert running.wait(WAIT).status == "cancelled"
    user = [i for i in session.items if i.role == "user"]
    assert len(user) == 2
