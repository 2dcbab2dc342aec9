"""The client core's input audio with plain dicts: appends, commits matched in order, turns
that answer a commit, responses the server starts, drops, hostile VAD frames."""

from __future__ import annotations

import base64
import json
import os
import random

import pytest

from rt_notebook.errors import RealtimeConnectionError, ServerError
from rt_notebook.protocol import payloads
from rt_notebook.protocol.client import REQUEST_TAG, ClientCore
from rt_notebook.protocol.events import Dialect
from rt_notebook.protocol.turns import Request, State, Turn
from tests.test_client_core import added, answer, ask, created, feed, finished, outbox, ready, take
from tests.test_fuzz import TIMING as FUZZ_TIMING
from tests.test_fuzz import FakeServer, clean_turn, mutate
from tests.test_fuzz import ask as fuzz_ask


def commit_request():
    return Request("commit", {"type": "input_audio_buffer.commit"})


def user_audio_item(item_id):
    return {
        "id": item_id,
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": [{"type": "input_audio", "transcript": None}],
    }


def committed(item_id):
    return {"type": "input_audio_buffer.committed", "previous_item_id": None, "item_id": item_id}


# Appends -------------------------------------------------------------------------------


def test_append_events_split_whole_samples_under_the_limit():
    pcm = bytes(range(256)) * 100  # 25,600 bytes
    events = payloads.append_events(pcm, max_chars=1000)
    assert all(len(e["audio"]) <= 1000 for e in events)
    assert len(events) == -(-len(pcm) // 750)
    decoded = [base64.b64decode(e["audio"]) for e in events]
    assert all(len(chunk) % 2 == 0 for chunk in decoded)
    assert b"".join(decoded) == pcm
    assert payloads.append_events(b"") == []


def test_appends_go_out_when_ready_and_are_dropped_and_counted_otherwise():
    core = ready()
    events = payloads.append_events(b"\x01\x00" * 10)
    assert core.append_audio(events, 20)
    assert take(core) == events
    core.socket_closed(core.generation, "network", 1.0)
    assert core.state is State.RECONNECTING
    assert not core.append_audio(payloads.append_events(b"\x02\x00" * 5), 10)
    assert outbox(core) == []
    assert core.audio_dropped() == 10


# Commits -------------------------------------------------------------------------------


def test_a_commit_with_a_turn_asks_once_committed_and_the_item_is_the_turns():
    core = ready()
    request = commit_request()
    turn = Turn([request], {})
    core.commit_audio(request, turn, 0.0)
    (commit,) = take(core)
    assert commit["type"] == "input_audio_buffer.commit"
    assert take(core, "response.create") == []
    feed(core, committed("item_a"), added(user_audio_item("item_a")))
    assert request.key == request.result == "item_a"
    (create,) = take(core, "response.create")
    assert create["response"]["metadata"][REQUEST_TAG] == turn.tag
    feed(core, created("resp_1", turn.tag), *answer("resp_1", "item_b", "heard you"))
    assert turn.status == "completed"


def test_a_commit_waits_its_turn_behind_a_running_one_but_is_sent_at_once():
    core = ready()
    first = ask(core, "item_q", "question")
    feed(core, added(take(core)[0]["item"]))
    take(core, "response.create")
    feed(core, created("resp_1", first.tag))
    request = commit_request()
    turn = Turn([request], {})
    core.commit_audio(request, turn, 0.0)
    assert [e["type"] for e in take(core)] == ["input_audio_buffer.commit"]
    feed(core, committed("item_a"), added(user_audio_item("item_a")))
    assert take(core, "response.create") == []  # the running turn goes first
    feed(core, *answer("resp_1", "item_r", "first answer"))
    (create,) = take(core, "response.create")
    assert create["response"]["metadata"][REQUEST_TAG] == turn.tag


def test_an_empty_commit_fails_its_turn_and_the_queue_moves_on():
    core = ready()
    request = commit_request()
    turn = Turn([request], {})
    core.commit_audio(request, turn, 0.0)
    (commit,) = take(core)
    later = ask(core, "item_l", "later")
    assert take(core) == []  # waits behind the commit's turn
    error = {
        "type": "invalid_request_error",
        "code": "input_audio_buffer_commit_empty",
        "message": "buffer too small",
        "event_id": commit["event_id"],
    }
    feed(core, {"type": "error", "error": error})
    assert isinstance(request.error, ServerError)
    assert request.error.code == "input_audio_buffer_commit_empty"
    assert isinstance(turn.error, ServerError)
    assert [e["type"] for e in take(core)] == ["conversation.item.create"]
    assert later.status is None


def test_server_vad_commits_are_not_taken_for_ours():
    core = ready()
    feed(core, {"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": "x"})
    request = commit_request()
    core.commit_audio(request, None, 0.0)
    stopped = {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 900}
    feed(core, {**stopped, "item_id": "item_v"})
    feed(core, committed("item_v"))  # the server's own commit, announced by speech_stopped
    assert request.result is None
    feed(core, committed("item_mine"))
    assert request.result == "item_mine"


def test_an_idle_timeout_commit_is_not_taken_for_ours():
    core = ready()
    request = commit_request()
    core.commit_audio(request, None, 0.0)
    timeout = {"type": "input_audio_buffer.timeout_triggered", "audio_start_ms": 0}
    feed(core, {**timeout, "audio_end_ms": 5000, "item_id": "item_idle"})
    feed(core, committed("item_idle"))  # the server's own commit of the silence
    assert request.result is None
    feed(core, committed("item_mine"))
    assert request.result == "item_mine"


def test_a_vad_commit_that_never_came_does_not_eat_ours():
    core = ready()
    stopped = {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 900}
    feed(core, {**stopped, "item_id": "item_lost"})  # its committed never arrives
    request = commit_request()
    core.commit_audio(request, None, 0.0)
    feed(core, committed("item_mine"))
    assert request.result == "item_mine"


def test_a_commit_made_while_not_ready_fails_at_once():
    core = ready()
    core.socket_closed(core.generation, "network", 1.0)
    request = commit_request()
    turn = Turn([request], {})
    core.commit_audio(request, turn, 1.0)
    assert isinstance(request.error, RealtimeConnectionError)
    assert isinstance(turn.error, RealtimeConnectionError)
    assert outbox(core) == []


def test_a_drop_fails_the_pending_commit_and_its_turn():
    core = ready()
    request = commit_request()
    turn = Turn([request], {})
    core.commit_audio(request, turn, 0.0)
    take(core)
    core.socket_closed(core.generation, "network", 1.0)
    assert isinstance(request.error, RealtimeConnectionError)
    assert "input audio" in str(request.error)
    assert turn.error is not None
    assert core.pending() == 0


# Responses the server starts --------------------------------------------------------------


def test_a_server_started_response_becomes_a_watched_turn():
    core = ready()
    feed(core, created("resp_vad", metadata={}))
    (turn,) = core.server_started_turns()
    assert turn.by_server
    assert turn.response_id == "resp_vad"
    mine = ask(core, "item_q", "mine")
    assert take(core) == []  # queued behind the server's response
    feed(core, *answer("resp_vad", "item_v", "vad answer"))
    assert turn.status == "completed"
    assert turn in finished(core)
    assert [e["type"] for e in take(core)] == ["conversation.item.create"]
    assert mine.response_id is None


def test_a_server_started_response_can_be_cancelled_and_cancel_all_includes_it():
    core = ready()
    feed(core, created("resp_vad", metadata=None))
    (turn,) = core.server_started_turns()
    core.cancel_all(1.0)
    (cancel,) = take(core)
    assert cancel == {
        "type": "response.cancel",
        "response_id": "resp_vad",
        "event_id": cancel["event_id"],
    }
    feed(
        core,
        {"type": "response.done", "response": {"id": "resp_vad", "status": "cancelled"}},
    )
    assert turn.status == "cancelled"


def test_out_of_band_and_tagged_responses_are_not_server_turns():
    core = ready()
    feed(core, created("resp_oob", conversation=None))
    feed(core, created("resp_old", tag="req_finished_long_ago"))
    assert core.server_started_turns() == []


def test_a_drop_fails_the_server_started_response():
    core = ready()
    feed(core, created("resp_vad", metadata={}))
    (turn,) = core.server_started_turns()
    core.socket_closed(core.generation, "network", 1.0)
    assert isinstance(turn.error, RealtimeConnectionError)
    assert core.view().active_response_id is None


def test_beta_dialect_server_response_and_commit():
    core = ready()
    core.dialect = Dialect.BETA
    request = commit_request()
    core.commit_audio(request, None, 0.0)
    feed(core, committed("item_b"))
    assert request.result == "item_b"


# Hostile frames ----------------------------------------------------------------------------

HOSTILE = [
    {"type": "input_audio_buffer.committed"},
    {"type": "input_audio_buffer.committed", "item_id": None},
    {"type": "input_audio_buffer.committed", "item_id": 5, "previous_item_id": []},
    {"type": "input_audio_buffer.speech_started", "audio_start_ms": "soon", "item_id": {}},
    {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": -5},
    {"type": "input_audio_buffer.cleared", "extra": "\ud800"},
    {"type": "input_audio_buffer.timeout_triggered"},
    {"type": "conversation.item.input_audio_transcription.completed", "item_id": 3},
    {"type": "conversation.item.input_audio_transcription.completed", "transcript": None},
    {"type": "conversation.item.input_audio_transcription.delta", "item_id": "x", "delta": 7},
    {"type": "conversation.item.input_audio_transcription.failed", "error": "boom"},
    {"type": "response.created", "response": {"id": "resp_h", "conversation_id": 5}},
    {"type": "response.created", "response": {"id": 7, "metadata": "x"}},
    {"type": "response.done", "response": {"id": "resp_nobody", "status": 3}},
]


@pytest.mark.parametrize("frame", HOSTILE, ids=lambda f: f["type"])
def test_hostile_vad_frames_are_no_crash_and_commits_still_match(frame):
    core = ready()
    request = commit_request()
    core.commit_audio(request, None, 0.0)
    core.receive(json.dumps(frame), core.generation, 0.0)
    feed(core, committed("item_ok"))
    assert request.result == "item_ok"
    assert core.state is State.READY


# Fuzz: mutated server-VAD turns -------------------------------------------------------------

VAD_SEQUENCES = int(os.environ.get("RT_FUZZ_VAD", "1000"))


class VadServer(FakeServer):
    """The fuzz's well-behaved server, which also commits the input audio buffer."""

    def answer(self, event, hostile):
        if event["type"] == "input_audio_buffer.commit":
            self.responses += 1
            item_id = f"item_commit_{self.responses}"
            self.feed(committed(item_id), added(user_audio_item(item_id), None))
        else:
            super().answer(event, hostile)


def vad_turn(n):
    """What the server sends for one hands-free utterance and its automatic answer."""
    item_id = f"item_vad_{n}"
    answer_frames = clean_turn("unused", f"resp_vad_{n}", "vad answer")
    answer_frames[0]["response"]["metadata"] = None  # the server's own: no tag of ours
    return [
        {"type": "input_audio_buffer.speech_started", "audio_start_ms": 0, "item_id": item_id},
        {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 900, "item_id": item_id},
        committed(item_id),
        added(user_audio_item(item_id), None),
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": item_id,
            "content_index": 0,
            "transcript": "[offline]",
        },
        *answer_frames,
    ]


def test_fuzzed_vad_turns_never_crash_never_hang_and_the_next_turns_work():
    rng = random.Random(1129)
    for n in range(VAD_SEQUENCES):
        core = ClientCore(Dialect.GA, FUZZ_TIMING, seed=n)
        server = VadServer(core)
        core.open(0)
        server.serve()
        for frame in mutate(rng, vad_turn(n)):
            server.feed(frame)
        announced = list(core.server_started_turns())
        server.serve()
        if core.state is State.CLOSED:
            core.open(server.now)
            server.serve()
        clean = fuzz_ask(core, server, f"clean {n}")
        request = commit_request()
        spoken = Turn([request], {})
        core.commit_audio(request, spoken, server.now)
        server.serve()
        assert clean.status == "completed", (n, clean.error)
        assert spoken.status == "completed", (n, spoken.error)
        assert request.result == f"item_commit_{server.responses - 2}"
        # Every response the server started ended, one way or another.
        assert all(turn.status is not None or turn.error for turn in announced), n
