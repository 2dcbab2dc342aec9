"""The sans-I/O client core with plain dicts: queue, matching, retries, timers, restore."""

from __future__ import annotations

import json
import weakref

import pytest

from rt_notebook.errors import RealtimeConnectionError, RealtimeError, ServerError
from rt_notebook.protocol.client import REQUEST_TAG, ClientCore
from rt_notebook.protocol.events import Dialect
from rt_notebook.protocol.turns import Request, State, Timing, Turn

TIMING = Timing(
    cancel_timeout=10,
    idle_timeout=30,
    backoff_initial=1,
    backoff_max=8,
    max_attempts=3,
    renew_margin=100,
)


def feed(core, *events, now=0.0):
    for given in events:
        event = given
        if event.get("previous_item_id") == "<last>":
            # Appended, as a server does: after the last item of the conversation.
            items = core.view().items
            event = {**event, "previous_item_id": items[-1].id if items else None}
        core.receive(json.dumps(event), core.generation, now)


# Events the core handed out that a test has not taken yet, per core.
_UNTAKEN: weakref.WeakKeyDictionary[ClientCore, list[dict]] = weakref.WeakKeyDictionary()


def outbox(core):
    """The events the core queued that the test has not taken yet (drains the core)."""
    untaken = _UNTAKEN.setdefault(core, [])
    untaken += core.events_to_send()
    return untaken


def take(core, kind=None):
    """Pop the sent events (of ``kind``)."""
    untaken = outbox(core)
    events = [e for e in untaken if kind is None or e["type"] == kind]
    untaken[:] = [e for e in untaken if e not in events]
    return events


def commands(core):
    """The socket commands the core asked for since the last call, by name."""
    return [command.value for command in core.commands_to_run()]


def user_item(item_id, text):
    return {
        "id": item_id,
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": [{"type": "input_text", "text": text}],
    }


def added(item, previous="<last>"):
    return {"type": "conversation.item.added", "previous_item_id": previous, "item": item}


def created(response_id, tag=None, conversation="conv_1", metadata=None):
    meta = metadata if metadata is not None else ({REQUEST_TAG: tag} if tag else {})
    return {
        "type": "response.created",
        "response": {
            "id": response_id,
            "status": "in_progress",
            "metadata": meta,
            "conversation_id": conversation,
        },
    }


def answer(response_id, item_id, text, status="completed"):
    item = {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text}],
    }
    return [
        {
            "type": "response.output_item.added",
            "response_id": response_id,
            "item": {**item, "status": "in_progress", "content": []},
        },
        added({**item, "status": "in_progress", "content": []}),
        {
            "type": "response.output_text.delta",
            "response_id": response_id,
            "item_id": item_id,
            "delta": text,
        },
        {
            "type": "response.done",
            "response": {
                "id": response_id,
                "status": status,
                "output": [item] if status == "completed" else [],
            },
        },
    ]


def ready(config=None, expires_at=None, timing=TIMING):
    core = ClientCore(Dialect.GA, timing, seed=7)
    if config:
        core.start_fresh(config)
    core.open(0.0)
    assert commands(core) == ["open"]
    assert core.state is State.CONNECTING
    commands(core)
    session = {"id": "sess_1", **({"expires_at": expires_at} if expires_at else {})}
    feed(core, {"type": "session.created", "session": session})
    if config:
        (update,) = take(core, "session.update")
        assert update["session"] == config
        feed(core, {"type": "session.updated", "session": {"id": "sess_1", **config}})
    assert core.state is State.READY
    return core


def ask(core, item_id, text, now=0.0):
    request = Request(
        "item", {"type": "conversation.item.create", "item": user_item(item_id, text)}, key=item_id
    )
    turn = Turn([request], {})
    core.submit(turn, now)
    return turn


def finished(core):
    return [*core.finished_requests(), *core.finished_turns()]


def run_turn(core, turn, response_id, answer_id, text, now=0.0):
    """The server side of one in-conversation turn (items already sent)."""
    (item_event,) = take(core, "conversation.item.create")
    feed(core, added(item_event["item"]), now=now)
    (create,) = take(core, "response.create")
    assert create["response"]["metadata"][REQUEST_TAG] == turn.tag
    feed(core, created(response_id, turn.tag), *answer(response_id, answer_id, text), now=now)


# Queue and matching --------------------------------------------------------------------


def test_queued_turns_keep_their_items_unsent_until_their_turn():
    core = ready()
    first = ask(core, "item_q1", "question one")
    second = ask(core, "item_q2", "question two")
    sent = take(core)
    assert [e["type"] for e in sent] == ["conversation.item.create"]
    assert sent[0]["item"]["id"] == "item_q1"
    feed(core, added(sent[0]["item"]))
    (create,) = take(core)
    assert create["type"] == "response.create"
    assert create["response"]["metadata"][REQUEST_TAG] == first.tag
    assert outbox(core) == []  # the second question waits
    feed(core, created("resp_1", first.tag), *answer("resp_1", "item_a1", "one"))
    assert first.status == "completed"
    assert first.response_id == "resp_1"
    run_turn(core, second, "resp_2", "item_a2", "two")
    assert second.status == "completed"
    assert second.response_id == "resp_2"
    texts = [i.text for i in core.view().items]
    assert texts == ["question one", "one", "question two", "two"]
    assert set(finished(core)) >= {first, second}


def test_server_started_response_never_steals_a_waiting_turn():
    core = ready()
    turn = ask(core, "item_q", "mine")
    feed(core, added(take(core)[0]["item"]))
    take(core, "response.create")
    # Server VAD starts a response of its own (no tag), then ours is refused and retried.
    feed(core, created("resp_vad", metadata={}))
    assert turn.response_id is None
    feed(core, *answer("resp_vad", "item_v", "vad answer"))
    assert turn.status is None  # still waiting
    feed(core, created("resp_mine", turn.tag), *answer("resp_mine", "item_m", "my answer"))
    assert turn.response_id == "resp_mine"
    assert turn.status == "completed"


@pytest.mark.parametrize(
    "error",
    [
        {
            "code": "conversation_already_has_active_response",
            "message": "Conversation already "
            "has an active response in progress: resp_x. Wait until the response is finished.",
        },
        {"code": None, "message": "Conversation already has an active response"},  # beta
    ],
)
def test_active_response_error_retries_after_that_response(error):
    core = ready()
    feed(core, created("resp_other", metadata={}))  # someone else's response
    turn = Turn([], {})
    core.submit(turn, 0)
    assert take(core) == []  # the conversation is busy: queued
    feed(core, *answer("resp_other", "item_o", "other"))
    (create,) = take(core)
    # A race: another response started before ours arrived.
    feed(core, created("resp_race", metadata={}))
    feed(
        core,
        {
            "type": "error",
            "error": {**error, "type": "invalid_request_error", "event_id": create["event_id"]},
        },
    )
    assert turn.error is None
    assert take(core) == []
    feed(core, *answer("resp_race", "item_r", "race"))
    (again,) = take(core)
    assert again["type"] == "response.create"
    assert again["event_id"] != create["event_id"]
    feed(core, created("resp_t", turn.tag), *answer("resp_t", "item_t", "mine"))
    assert turn.status == "completed"


def test_an_error_fails_the_request_that_caused_it_and_the_queue_moves_on():
    core = ready()
    bad = ask(core, "item_bad", "misplaced")
    good = ask(core, "item_good", "fine")
    (event,) = take(core)
    feed(
        core,
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": "x",
                "message": "no",
                "event_id": event["event_id"],
            },
        },
    )
    assert isinstance(bad.error, ServerError)
    assert isinstance(bad.items[0].error, ServerError)
    run_turn(core, good, "resp_g", "item_ga", "ok")
    assert good.status == "completed"


def test_other_errors_fail_nothing():
    core = ready()
    turn = ask(core, "item_1", "q")
    feed(core, {"type": "error", "error": {"message": "something", "event_id": "event_unknown"}})
    feed(core, {"type": "error", "error": {"message": "something else"}})
    assert turn.error is None
    assert len(core.view().errors) == 2


def test_a_message_without_response_waits_for_the_active_turn():
    core = ready()
    turn = ask(core, "item_q", "question")
    feed(core, added(take(core)[0]["item"]))
    take(core, "response.create")
    note = Request(
        "item", {"type": "conversation.item.create", "item": user_item("item_n", "n")}, key="item_n"
    )
    core.add_item(note, 0)
    assert take(core) == []
    feed(core, created("resp_1", turn.tag), *answer("resp_1", "item_a", "answer"))
    (sent,) = take(core)
    assert sent["item"]["id"] == "item_n"
    feed(core, added(sent["item"], "item_a"))
    assert note.result == "item_n"
    assert [i.id for i in core.view().items] == ["item_q", "item_a", "item_n"]


def test_an_idle_session_adds_items_at_once_and_matches_them_by_id():
    core = ready()
    one = Request(
        "item", {"type": "conversation.item.create", "item": user_item("item_1", "a")}, key="item_1"
    )
    two = Request(
        "item", {"type": "conversation.item.create", "item": user_item("item_2", "b")}, key="item_2"
    )
    core.add_item(one, 0)
    core.add_item(two, 0)
    sent = take(core)
    assert [e["item"]["id"] for e in sent] == ["item_1", "item_2"]
    feed(core, added(sent[1]["item"]))  # acknowledgements in any order
    assert two.result == "item_2"
    assert one.result is None
    feed(core, added(sent[0]["item"]))
    assert one.result == "item_1"


def test_session_updates_go_one_at_a_time_and_match_in_order():
    core = ready()
    first = Request("update", {"type": "session.update", "session": {"instructions": "a"}})
    second = Request("update", {"type": "session.update", "session": {"instructions": "b"}})
    core.request(first)
    core.request(second)
    (sent,) = take(core)
    assert sent["session"] == {"instructions": "a"}
    feed(core, {"type": "session.updated", "session": {"instructions": "a"}})
    assert first.result == {"instructions": "a"}
    assert second.result is None
    (sent,) = take(core)
    feed(core, {"type": "error", "error": {"message": "bad", "event_id": sent["event_id"]}})
    assert isinstance(second.error, ServerError)
    # The refused update changed nothing: a restore sends what the server accepted.
    assert core.accepted_settings() == {"instructions": "a"}
    assert core.pending_settings() == []
    # An unsolicited session.updated (another client) resolves nothing.
    third = Request("update", {"type": "session.update", "session": {"voice": "x"}})
    feed(core, {"type": "session.updated", "session": {}})
    core.request(third)
    assert third.result is None
    assert take(core)[0]["session"] == {"voice": "x"}


def test_delete_retrieve_truncate_are_matched_by_item_id():
    core = ready()
    feed(core, added(user_item("item_1", "x")))
    delete = Request(
        "delete", {"type": "conversation.item.delete", "item_id": "item_1"}, key="item_1"
    )
    core.request(delete)
    assert take(core)[0]["type"] == "conversation.item.delete"
    feed(core, {"type": "conversation.item.deleted", "item_id": "item_other"})
    assert delete.result is None
    feed(core, {"type": "conversation.item.deleted", "item_id": "item_1"})
    assert delete.result == "item_1"


def test_out_of_band_turns_run_beside_the_active_one():
    core = ready()
    turn = ask(core, "item_q", "q")
    feed(core, added(take(core)[0]["item"]))
    take(core, "response.create")
    feed(core, created("resp_main", turn.tag))
    side = Turn([], {"conversation": "none"}, out_of_band=True)
    core.submit(side, 0)
    (create,) = take(core)
    assert create["response"]["metadata"][REQUEST_TAG] == side.tag
    feed(core, created("resp_side", side.tag, conversation=None))
    feed(
        core,
        {
            "type": "response.done",
            "response": {
                "id": "resp_side",
                "status": "completed",
                "metadata": {REQUEST_TAG: side.tag},
                "output": [],
            },
        },
    )
    assert side.status == "completed"
    assert turn.status is None


# Cancel -------------------------------------------------------------------------------


def test_cancel_of_a_queued_turn_sends_nothing():
    core = ready()
    first = ask(core, "item_1", "one")
    second = ask(core, "item_2", "two")
    take(core)
    core.cancel(second, 0)
    assert second.status == "cancelled"
    assert outbox(core) == []
    run_turn_after_sent(core, first)
    assert outbox(core) == []  # the cancelled turn's item never goes


def run_turn_after_sent(core, turn):
    feed(core, added(user_item(turn.items[0].key, "x")))
    take(core, "response.create")
    feed(
        core,
        created("resp_" + turn.tag, turn.tag),
        *answer("resp_" + turn.tag, "i" + turn.tag, "a"),
    )


def test_cancel_before_response_created_cancels_once_it_is_named():
    core = ready()
    turn = ask(core, "item_1", "one")
    feed(core, added(take(core)[0]["item"]))
    take(core)
    core.cancel(turn, 0)
    assert outbox(core) == []
    feed(core, created("resp_1", turn.tag))
    (cancel,) = take(core)
    assert (cancel["type"], cancel["response_id"]) == ("response.cancel", "resp_1")
    feed(core, *answer("resp_1", "item_a", "", status="cancelled"))
    assert turn.status == "cancelled"


def test_a_server_that_ignores_cancel_is_given_up_and_the_connection_recycled():
    core = ready()
    turn = ask(core, "item_1", "one")
    feed(core, added(take(core)[0]["item"]))
    take(core)
    feed(core, created("resp_1", turn.tag), now=1)
    core.cancel(turn, 2.0)
    (cancel,) = take(core)
    assert cancel == {**cancel, "type": "response.cancel", "response_id": "resp_1"}
    assert core.next_deadline() == 12.0
    core.tick(11.9)
    assert turn.status is None
    feed(core, {"type": "rate_limits.updated", "rate_limits": []}, now=11.95)
    core.tick(12.0)
    assert turn.status == "cancelled"
    assert commands(core) == ["close", "open"]
    assert core.state is State.RECONNECTING
    # The next turn runs on the new connection.
    commands(core)
    later = ask(core, "item_2", "two", now=12)
    feed(core, {"type": "session.created", "session": {"id": "sess_2"}}, now=12.1)
    restored = take(core, "conversation.item.create")
    assert [e["item"]["id"] for e in restored] == ["item_1"]
    feed(core, added(restored[0]["item"]))
    assert core.state is State.READY
    run_turn(core, later, "resp_2", "item_a2", "two")
    assert later.status == "completed"


def test_idle_gap_gives_up_but_long_streaming_answers_are_never_cut():
    core = ready()
    turn = ask(core, "item_1", "one")
    feed(core, added(take(core)[0]["item"]))
    take(core)
    feed(core, created("resp_1", turn.tag), now=0)
    feed(
        core,
        {
            "type": "response.output_item.added",
            "response_id": "resp_1",
            "item": {"id": "item_a", "type": "message", "role": "assistant"},
        },
    )
    for second in range(1, 200):  # 200 s of streaming, each gap below the idle limit
        deadline = core.next_deadline()
        assert deadline is not None
        assert deadline > second - 1
        core.tick(second - 0.5)
        feed(
            core,
            {
                "type": "response.output_text.delta",
                "response_id": "resp_1",
                "item_id": "item_a",
                "delta": "w ",
            },
            now=second,
        )
    assert turn.status is None
    assert turn.error is None
    core.tick(199 + 29.9)
    assert turn.error is None
    core.tick(199 + 30)
    assert "sent nothing for 30 s" in str(turn.error)
    assert commands(core)[-2:] == ["close", "open"]


# Hostile frames -----------------------------------------------------------------------

HOSTILE = [
    b"\x00\xff not json",
    "{",
    "[]",
    "42",
    "null",
    '{"type": 5}',
    '{"no": "type"}',
    '{"type": "made.up.event"}',
    '{"type": "session.updated", "session": [1]}',
    '{"type": "conversation.item.added", "item": [1, 2]}',
    '{"type": "conversation.item.added", "item": {"id": 7}}',
    '{"type": "conversation.item.added", "item": {"id": "i", "content": "text"}}',
    '{"type": "conversation.item.added", "item": {"id": "i", "content": [3]}}',
    '{"type": "conversation.item.added", "item": {"id": "i", "role": ["user"]}}',
    '{"type": "response.output_text.delta", "item_id": "item_a", "delta": 5}',
    '{"type": "response.output_text.delta", "item_id": ["x"], "delta": "d"}',
    '{"type": "response.created", "response": "resp"}',
    '{"type": "response.created", "response": {"id": "r", "metadata": {"a": 1}}}',
    '{"type": "response.done", "response": {"id": "r", "output": {"x": 1}}}',
    '{"type": "response.done", "response": {"id": "r", "output": [{"id": 3}]}}',
    '{"type": "error", "error": "bad"}',
    '{"type": "error", "error": {"event_id": 5}}',
    '{"type": "response.output_text.done", "item_id": "item_a", "text": 5}',
    '{"type": "conversation.item.deleted", "item_id": {"a": 1}}',
    '{"type": "rate_limits.updated", "rate_limits": "x"}',
    "[" * 100000,
    # Frames orjson (the decoder) and json.loads both refuse, each in its own way.
    '{"type": "error", "error": {}',
    b'{"type": "error", "error": {"message": "\xff"}}',  # not UTF-8
    '{"type": "error", "error": {"code": 1' + "0" * 30 + "}}",  # a big int where a string goes
    '{"type": "error", "error": {"message": NaN}}',
]


@pytest.mark.parametrize("frame", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_frames_are_protocol_errors_not_crashes(frame):
    core = ready()
    turn = ask(core, "item_1", "one")
    feed(core, added(take(core)[0]["item"]))
    take(core)
    feed(core, created("resp_1", turn.tag))
    before = [i.as_dict() for i in core.view().items]
    event, changes = core.receive(frame, core.generation, 1.0)
    assert event is None
    assert changes == []
    assert len(core.protocol_errors()) == 1
    assert [i.as_dict() for i in core.view().items] == before
    feed(core, *answer("resp_1", "item_a", "fine"))
    assert turn.status == "completed"


def test_binary_frames_and_old_sockets_are_refused():
    core = ready()
    core.receive(b'{"type": "session.updated", "session": {}}', core.generation, 0, binary=True)
    assert "binary" in core.protocol_errors()[-1]
    event, _ = core.receive('{"type": "session.updated", "session": {}}', core.generation - 1, 0)
    assert event is None


def test_odd_but_valid_fields_never_break_the_mirror_readers():
    core = ready()
    feed(
        core,
        added(
            {
                "id": "item_x",
                "type": None,
                "role": None,
                "content": [{"type": "input_text", "text": None}, {"transcript": "heard"}],
            }
        ),
    )
    feed(core, {"type": "response.output_text.done", "item_id": "item_x", "text": None})
    feed(
        core,
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "item_x",
            "transcript": None,
        },
    )
    (item,) = core.view().items
    assert item.as_dict()["text"] == ""
    assert item.type == "message"


# Reconnect and restore ----------------------------------------------------------------


def conversation_of(core):
    return [(i.id, i.role, i.text) for i in core.view().items]


def test_a_drop_mid_answer_restores_the_conversation_and_asks_again():
    config = {"type": "realtime", "instructions": "be brief"}
    core = ready(config)
    first = ask(core, "item_q1", "first")
    run_turn(core, first, "resp_1", "item_a1", "first answer")
    second = ask(core, "item_q2", "second")
    third = ask(core, "item_q3", "third")  # queued: its item stays unsent
    feed(core, added(take(core)[0]["item"]))
    take(core)
    feed(core, created("resp_2", second.tag), *answer("resp_2", "item_p", "partial")[:3])
    assert [i.id for i in core.view().items][-1] == "item_p"
    core.socket_closed(core.generation, "the connection failed", now=5)
    assert core.state is State.RECONNECTING
    assert commands(core) == ["close"]  # the dead socket's tasks stop
    commands(core)
    assert 5 + 0.5 <= core.next_deadline() <= 5 + 1
    core.tick(core.next_deadline())
    assert commands(core) == ["open"]
    commands(core)
    feed(core, {"type": "session.created", "session": {"id": "sess_2"}}, now=7)
    sent = take(core)
    assert sent[0]["type"] == "session.update"
    assert sent[0]["session"] == config
    assert [e["item"]["id"] for e in sent[1:]] == ["item_q1", "item_a1", "item_q2"]
    assert sent[2]["item"]["content"] == [{"type": "output_text", "text": "first answer"}]
    assert core.status().restored == 3
    assert core.state is State.RECONNECTING
    feed(core, {"type": "session.updated", "session": config})
    previous = None
    for event in sent[1:]:
        feed(core, added(event["item"], previous))
        previous = event["item"]["id"]
    assert core.state is State.READY
    assert core.status().attempt == 0
    (again,) = take(core)
    assert again["type"] == "response.create"
    assert again["response"]["metadata"][REQUEST_TAG] == second.tag
    feed(core, created("resp_3", second.tag), *answer("resp_3", "item_a2", "second answer"))
    assert second.status == "completed"
    assert second.response_id == "resp_3"
    run_turn(core, third, "resp_4", "item_a3", "third answer")
    assert conversation_of(core) == [
        ("item_q1", "user", "first"),
        ("item_a1", "assistant", "first answer"),
        ("item_q2", "user", "second"),
        ("item_a2", "assistant", "second answer"),
        ("item_q3", "user", "third"),
        ("item_a3", "assistant", "third answer"),
    ]


def drop_and_restore(core, now=5):
    """Drop the socket, reconnect, and answer the restore as a server does; return the
    mirror's position rebuilds during the restore and the restored item ids."""
    core.socket_closed(core.generation, "the connection failed", now=now)
    core.tick(core.next_deadline())
    commands(core)
    feed(core, {"type": "session.created", "session": {"id": "sess_2"}}, now=now + 2)
    sent = take(core, "conversation.item.create")
    rebuilds = core.view().position_rebuilds
    previous = None
    for event in sent:
        feed(core, added(event["item"], previous))
        previous = event["item"]["id"]
    return core.view().position_rebuilds - rebuilds, [e["item"]["id"] for e in sent]


def test_a_long_restore_rebuilds_the_positions_at_most_once():
    """Each restored item is already in place: it stays, and no lookup rebuilds the whole
    position map (once per item made a restore quadratic in the conversation's length)."""
    core = ready()
    ids = [f"item_{n}" for n in range(2000)]
    for item_id in ids:
        feed(core, added(user_item(item_id, item_id)))
    rebuilds, restored = drop_and_restore(core)
    assert restored == ids
    assert rebuilds <= 1
    assert core.state is State.READY
    assert [i.id for i in core.view().items] == ids
    assert [core.view().index_of(i) for i in ids] == list(range(2000))


def test_an_item_left_out_of_the_restore_moves_behind_the_restored_ones():
    """An unfinished item in the middle is not re-created: the restored items close up in
    front of it, without a rebuild per item, and every position stays right."""
    core = ready()
    ids = [f"item_{n}" for n in range(500)]
    for item_id in ids:
        wire = user_item(item_id, item_id)
        if item_id == "item_100":
            wire["status"] = "in_progress"
        feed(core, added(wire))
    rebuilds, restored = drop_and_restore(core)
    kept = [i for i in ids if i != "item_100"]
    assert restored == kept
    assert rebuilds <= 1
    order = [i.id for i in core.view().items]
    assert order == [*kept, "item_100"]
    assert [core.view().index_of(i) for i in order] == list(range(500))


def test_an_answer_interrupted_twice_fails_clearly():
    core = ready()
    turn = ask(core, "item_q", "q")
    feed(core, added(take(core)[0]["item"]))
    for attempt in range(2):
        take(core)
        feed(core, created(f"resp_{attempt}", turn.tag))
        core.socket_closed(core.generation, "dropped", now=attempt)
        core.tick(core.next_deadline())
        feed(core, {"type": "session.created", "session": {}})
        for event in take(core, "conversation.item.create"):
            feed(core, added(event["item"]))
    assert isinstance(turn.error, RealtimeConnectionError)
    assert "twice" in str(turn.error)


def test_an_answer_that_called_a_tool_is_not_requested_again():
    core = ready()
    turn = ask(core, "item_q", "q")
    feed(core, added(take(core)[0]["item"]))
    take(core)
    call = {
        "id": "item_c",
        "type": "function_call",
        "status": "completed",
        "call_id": "call_1",
        "name": "f",
        "arguments": "{}",
    }
    feed(
        core,
        created("resp_1", turn.tag),
        {"type": "response.output_item.done", "response_id": "resp_1", "item": call},
    )
    core.socket_closed(core.generation, "dropped", now=0)
    assert "tool" in str(turn.error)


def test_function_calls_outputs_and_audio_items_are_restored_in_order():
    core = ready()
    feed(
        core,
        added(
            {
                "id": "item_s",
                "type": "message",
                "role": "system",
                "content": [{"type": "input_text", "text": "sys"}],
            }
        ),
        added(
            {
                "id": "item_u",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_audio", "transcript": "spoken words"}],
            },
            "item_s",
        ),
        added(
            {
                "id": "item_v",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_audio"}],
            },
            "item_u",
        ),
        added(
            {
                "id": "item_c",
                "type": "function_call",
                "status": "completed",
                "call_id": "call_1",
                "name": "add",
                "arguments": '{"a": 1}',
            },
            "item_v",
        ),
        added(
            {"id": "item_o", "type": "function_call_output", "call_id": "call_1", "output": "2"},
            "item_c",
        ),
    )
    core.renew(10)
    assert commands(core) == ["close", "open"]
    feed(core, {"type": "session.created", "session": {}}, now=10)
    items = [e["item"] for e in take(core, "conversation.item.create")]
    assert [i["id"] for i in items] == ["item_s", "item_u", "item_v", "item_c", "item_o"]
    assert items[1]["content"][0] == {"type": "input_text", "text": "spoken words"}
    assert "no transcript" in items[2]["content"][0]["text"]
    assert items[3] == {
        "id": "item_c",
        "type": "function_call",
        "call_id": "call_1",
        "name": "add",
        "arguments": '{"a": 1}',
    }
    assert items[4] == {
        "id": "item_o",
        "type": "function_call_output",
        "call_id": "call_1",
        "output": "2",
    }
    for item in items:
        feed(core, added(item), now=11)
    assert core.state is State.READY
    assert core.status().renewed_at == 11


def test_requests_made_while_reconnecting_wait_for_the_restore():
    core = ready()
    feed(core, added(user_item("item_1", "one")))
    core.socket_closed(core.generation, "dropped", 0)
    later = Request(
        "item",
        {"type": "conversation.item.create", "item": user_item("item_2", "two")},
        key="item_2",
    )
    core.add_item(later, 0)
    update = Request("update", {"type": "session.update", "session": {"instructions": "x"}})
    core.request(update)
    assert outbox(core) == []
    core.tick(core.next_deadline())
    feed(core, {"type": "session.created", "session": {}})
    # The restore first; a setting not accepted yet is not part of it.
    (restored,) = take(core)
    assert restored["item"]["id"] == "item_1"
    feed(core, added(restored["item"]))
    update_event, new = take(core)
    assert update_event["session"] == {"instructions": "x"}  # settings before anything else
    assert new["item"]["id"] == "item_2"
    feed(core, {"type": "session.updated", "session": {"instructions": "x"}})
    assert update.result == {"instructions": "x"}
    assert core.accepted_settings() == {"instructions": "x"}


def test_backoff_grows_and_gives_up_with_a_clear_error():
    core = ready()
    turn = ask(core, "item_1", "one")
    delays = []
    now = 0.0
    for _ in range(3):
        core.socket_closed(core.generation, "refused", now)
        deadline = core.next_deadline()
        delays.append(deadline - now)
        now = deadline
        core.tick(now)
        assert commands(core)[-1] == "open"
    assert delays[0] < delays[2] <= 8
    core.socket_closed(core.generation, "refused", now)
    assert core.state is State.CLOSED
    assert "gave up reconnecting after 3 attempts" in str(turn.error)


def test_a_lifetime_shorter_than_the_margin_renews_half_way():
    core = ClientCore(Dialect.GA, TIMING)
    core.open(0)
    feed(core, {"type": "session.created", "session": {"expires_at": 1030}}, now=1000)
    assert core.next_deadline() == 1015.0


def test_renewal_waits_for_the_active_response():
    core = ready(expires_at=1000.0)
    assert core.next_deadline() == 900.0
    turn = ask(core, "item_1", "one", now=899)
    feed(core, added(take(core)[0]["item"]), now=899)
    take(core)
    feed(core, created("resp_1", turn.tag), now=899.5)
    core.tick(900.0)
    assert commands(core) == []
    assert core.state is State.READY
    feed(core, *answer("resp_1", "item_a", "done"), now=901)
    core.tick(901)
    assert commands(core) == ["close", "open"]
    assert core.state is State.RECONNECTING


def test_a_first_connect_that_fails_fails_its_caller():
    core = ClientCore(Dialect.GA, TIMING)
    core.open(0)
    core.socket_closed(core.generation, "refused", 0)
    assert core.state is State.CLOSED
    assert core.status().reason == "refused"
    turn = Turn([], {})
    core.submit(turn, 0)
    assert isinstance(turn.error, RealtimeError)


def test_close_fails_everything_pending():
    core = ready()
    first = ask(core, "item_1", "one")
    second = ask(core, "item_2", "two")
    core.close()
    assert isinstance(first.error, RealtimeConnectionError)
    assert isinstance(second.error, RealtimeConnectionError)
    assert commands(core) == ["close"]


def test_an_unacknowledged_session_update_is_given_up_and_the_next_one_goes():
    core = ready()
    lost = Request("update", {"type": "session.update", "session": {"instructions": "a"}})
    core.request(lost, 100.0)
    take(core)
    later = Request("update", {"type": "session.update", "session": {"instructions": "b"}})
    core.request(later, 101.0)
    assert outbox(core) == []  # one in flight
    feed(core, {"type": "rate_limits.updated", "rate_limits": []}, now=120)  # other traffic
    assert core.next_deadline() == 130.0
    core.tick(130.0)
    assert "no acknowledgement of session.update" in str(lost.error)
    (sent,) = take(core)
    assert sent["session"] == {"instructions": "b"}


def test_a_turn_whose_items_are_never_acknowledged_fails_and_the_queue_moves_on():
    core = ready()
    stuck = ask(core, "item_1", "one", now=50)
    waiting = ask(core, "item_2", "two", now=50)
    take(core)
    core.tick(79.9)
    assert stuck.error is None
    core.tick(80.0)
    assert "did not acknowledge the items" in str(stuck.error)
    assert commands(core) == ["close", "open"]
    commands(core)
    feed(core, {"type": "session.created", "session": {}}, now=80)
    run_turn(core, waiting, "resp_2", "item_a2", "two", now=81)
    assert waiting.status == "completed"


def test_cancel_all_spares_plain_messages_and_never_leaves_a_waiter_hanging():
    core = ready()
    running = ask(core, "item_1", "one")
    feed(core, added(take(core)[0]["item"]))
    take(core)
    feed(core, created("resp_1", running.tag))
    note = Request(
        "item",
        {"type": "conversation.item.create", "item": user_item("item_n", "n")},
        key="item_n",
    )
    core.add_item(note, 0)
    queued = ask(core, "item_2", "two")
    core.cancel_all(1.0)
    assert queued.status == "cancelled"
    assert isinstance(queued.items[0].error, RealtimeError)  # its waiter is told
    assert note.error is None  # a plain message still goes, after the running answer
    feed(core, *answer("resp_1", "item_a", "", status="cancelled"))
    (sent,) = take(core, "conversation.item.create")
    assert sent["item"]["id"] == "item_n"


# Session settings: accepted only when the server says so --------------------------------


def update(core, session, now=0.0):
    request = Request("update", {"type": "session.update", "session": session})
    core.request(request, now)
    return request


def refuse(core, event, message="Invalid value"):
    feed(
        core,
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": "invalid_value",
                "message": message,
                "event_id": event["event_id"],
            },
        },
    )


def drop_and_reopen(core):
    core.socket_closed(core.generation, "dropped", 0)
    core.tick(core.next_deadline())
    commands(core)
    feed(core, {"type": "session.created", "session": {"id": "sess_2", "instructions": "default"}})


def test_an_update_is_pending_until_the_server_acknowledges_it():
    core = ready({"type": "realtime", "instructions": "a", "tools": [{"name": "lookup"}]})
    asked = update(core, {"type": "realtime", "reasoning": {"effort": "low"}})
    (_sent,) = take(core, "session.update")
    assert core.accepted_settings() == {
        "type": "realtime",
        "instructions": "a",
        "tools": [{"name": "lookup"}],
    }
    assert core.pending_settings() == [{"type": "realtime", "reasoning": {"effort": "low"}}]
    feed(core, {"type": "session.updated", "session": {"reasoning": {"effort": "low"}}})
    assert asked.result == {"reasoning": {"effort": "low"}}
    assert core.accepted_settings()["reasoning"] == {"effort": "low"}
    assert core.pending_settings() == []


def test_a_refused_update_keeps_the_accepted_settings_and_is_not_restored():
    config = {"type": "realtime", "instructions": "a", "tools": [{"name": "lookup"}]}
    core = ready(config)
    asked = update(core, {"type": "realtime", "tool_choice": "sometimes"})
    (sent,) = take(core)
    refuse(core, sent, "Invalid value: 'sometimes'.")
    assert isinstance(asked.error, ServerError)
    assert "sometimes" in str(asked.error)
    assert core.accepted_settings() == config
    drop_and_reopen(core)
    (restore,) = take(core, "session.update")
    assert restore["session"] == config  # no tool_choice: the server refused it
    feed(core, {"type": "session.updated", "session": config})
    assert core.state is State.READY
    assert core.settings_loss() is None


def test_an_update_refused_during_a_reconnect_leaves_the_restored_settings():
    config = {"type": "realtime", "instructions": "a"}
    core = ready(config)
    core.socket_closed(core.generation, "dropped", 0)
    asked = update(core, {"type": "realtime", "truncation": "sometimes"})
    core.tick(core.next_deadline())
    feed(core, {"type": "session.created", "session": {"id": "sess_2"}})
    (restore,) = take(core)
    assert restore["session"] == config  # the pending update waits for the restore
    feed(core, {"type": "session.updated", "session": config})
    assert core.state is State.READY
    (sent,) = take(core)
    assert sent["session"] == {"type": "realtime", "truncation": "sometimes"}
    refuse(core, sent)
    assert isinstance(asked.error, ServerError)
    assert core.accepted_settings() == config


def test_an_update_in_flight_when_the_connection_drops_goes_again_after_the_restore():
    core = ready({"type": "realtime", "instructions": "a"})
    asked = update(core, {"type": "realtime", "instructions": "b"})
    take(core)
    drop_and_reopen(core)
    (restore,) = take(core)
    assert restore["session"]["instructions"] == "a"  # not acknowledged: not restored
    feed(core, {"type": "session.updated", "session": restore["session"]})
    (again,) = take(core)
    assert again["session"]["instructions"] == "b"
    feed(core, {"type": "session.updated", "session": {"instructions": "b"}})
    assert asked.result == {"instructions": "b"}
    assert core.accepted_settings()["instructions"] == "b"


def test_two_updates_are_pending_one_behind_the_other():
    core = ready()
    first = update(core, {"type": "realtime", "instructions": "a"})
    second = update(core, {"type": "realtime", "truncation": "disabled"})
    (sent,) = take(core)
    assert core.pending_settings() == [
        {"type": "realtime", "instructions": "a"},
        {"type": "realtime", "truncation": "disabled"},
    ]
    refuse(core, sent)
    assert first.error is not None
    (sent,) = take(core)
    assert sent["session"]["truncation"] == "disabled"
    feed(core, {"type": "session.updated", "session": {"truncation": "disabled"}})
    assert second.result is not None
    assert core.accepted_settings() == {"type": "realtime", "truncation": "disabled"}


def test_an_unsolicited_session_updated_changes_the_accepted_settings():
    core = ready({"type": "realtime", "instructions": "a"})
    reported = {
        "id": "sess_1",
        "expires_at": 99,
        "instructions": "a",
        "audio": {"output": {"voice": "alloy", "speed": 1.0}},
    }
    feed(core, {"type": "session.updated", "session": reported})
    changed = {**reported, "expires_at": 100, "audio": {"output": {"voice": "marin", "speed": 1.0}}}
    feed(core, {"type": "session.updated", "session": changed})
    accepted = core.accepted_settings()
    assert accepted["audio"]["output"]["voice"] == "marin"
    assert accepted["instructions"] == "a"
    assert "expires_at" not in accepted
    assert "id" not in accepted
    drop_and_reopen(core)
    (restore,) = take(core, "session.update")
    assert restore["session"]["audio"]["output"]["voice"] == "marin"


def test_a_refused_restore_says_which_settings_were_lost():
    config = {"type": "realtime", "instructions": "a", "tools": [{"name": "lookup"}]}
    core = ready(config)
    drop_and_reopen(core)
    (restore,) = take(core, "session.update")
    refuse(core, restore, "this model does not take tools")
    assert core.state is State.READY  # the conversation goes on, with the defaults
    lost = core.settings_loss()
    assert lost is not None
    assert lost.names == ("instructions", "tools")
    assert "instructions, tools" in lost.describe()
    assert "does not take tools" in lost.describe()
    assert core.accepted_settings() == {}


def test_closing_fails_pending_updates_and_keeps_the_accepted_settings():
    core = ready({"type": "realtime", "instructions": "a"})
    asked = update(core, {"type": "realtime", "instructions": "b"})
    core.close()
    assert isinstance(asked.error, RealtimeConnectionError)
    assert core.accepted_settings() == {"type": "realtime", "instructions": "a"}
    assert core.pending_settings() == []


def test_a_setting_of_another_kind_replaces_the_old_one_whole():
    core = ready(
        {
            "type": "realtime",
            "tool_choice": {"type": "function", "name": "lookup"},
            "truncation": {"type": "retention_ratio", "retention_ratio": 0.5},
            "audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 0.9}}},
        }
    )
    update(
        core,
        {
            "type": "realtime",
            "tool_choice": {"type": "mcp", "server_label": "docs"},
            "truncation": {"type": "retention_ratio", "retention_ratio": 0.8},
            "audio": {"input": {"turn_detection": {"type": "semantic_vad"}}},
        },
    )
    take(core)
    feed(core, {"type": "session.updated", "session": {}})
    accepted = core.accepted_settings()
    assert accepted["tool_choice"] == {"type": "mcp", "server_label": "docs"}
    assert accepted["truncation"] == {"type": "retention_ratio", "retention_ratio": 0.8}
    assert accepted["audio"]["input"]["turn_detection"] == {"type": "semantic_vad"}


def test_the_core_hands_out_typed_outputs_through_methods_that_clear_them():
    from rt_notebook.protocol.client import Command

    core = ClientCore(Dialect.GA, TIMING, seed=1)
    core.open(0.0)
    assert core.commands_to_run() == [Command.OPEN]
    assert core.commands_to_run() == []  # taken once
    feed(core, {"type": "session.created", "session": {"id": "sess_1"}})
    assert core.state is State.READY
    turn = ask(core, "item_q", "question")
    assert core.has_output()
    (create,) = core.events_to_send()
    assert create["type"] == "conversation.item.create"
    assert core.events_to_send() == []
    feed(core, added(user_item("item_q", "question")))
    (request,) = core.finished_requests()
    assert request.result == "item_q"
    assert core.finished_turns() == []  # the answer is still to come
    (response_create,) = core.events_to_send()
    assert response_create["type"] == "response.create"
    feed(core, created("resp_1", turn.tag), *answer("resp_1", "item_a", "an answer"))
    assert core.finished_requests() == []
    assert core.finished_turns() == [turn]  # a finished turn, apart from requests
    feed(core, created("resp_vad", metadata={}))
    (started,) = core.server_started_turns()
    assert started.by_server
    assert core.server_started_turns() == []
    core.receive("not json", core.generation, 1.0)
    assert len(core.protocol_errors()) == 1
    assert core.protocol_errors() == []
    assert not core.has_output()
    assert core.view().response_text("resp_1") == "an answer"
