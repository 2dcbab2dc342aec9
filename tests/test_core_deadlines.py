"""The client core never waits forever (plain dicts): every connection attempt has a
deadline, repeated expiries give up, errors name their cause, and a response.done that
carries the whole response completes its turn whatever came before it."""

from __future__ import annotations

from rt_notebook.errors import RealtimeConnectionError
from rt_notebook.protocol.client import REQUEST_TAG, ClientCore
from rt_notebook.protocol.events import Dialect
from rt_notebook.protocol.turns import Request, State, Timing, TurnState
from tests.test_client_core import (
    added,
    answer,
    ask,
    commands,
    created,
    feed,
    ready,
    run_turn,
    take,
)

TIMING = Timing(
    cancel_timeout=10,
    idle_timeout=30,
    backoff_initial=1,
    backoff_max=8,
    max_attempts=3,
    renew_margin=100,
    restore_timeout=20,
    max_expiries=3,
)
EXPIRED = {
    "type": "error",
    "error": {
        "type": "invalid_request_error",
        "code": "session_expired",
        "message": "Your session hit the maximum duration of 60 minutes.",
    },
}


def reopen(core, now):
    """Fire the retry timer; the core asks for a new socket."""
    commands(core)
    deadline = core.next_deadline()
    assert deadline is not None
    core.tick(max(now, deadline))
    assert commands(core) == ["open"]
    commands(core)
    return max(now, deadline)


def acknowledge_restore(core, now):
    for event in take(core):
        if event["type"] == "conversation.item.create":
            feed(core, added(event["item"]), now=now)
        elif event["type"] == "session.update":
            feed(core, {"type": "session.updated", "session": event["session"]}, now=now)


def test_a_restore_never_acknowledged_is_abandoned_retried_and_fails_the_waiting_turns():
    core = ready(timing=TIMING)
    first = ask(core, "item_q1", "first")
    run_turn(core, first, "resp_1", "item_a1", "first answer")
    core.socket_closed(core.generation, "the connection failed", now=1)
    waiting = ask(core, "item_q2", "second", now=1)  # queued behind the restore
    delete = Request("delete", {"type": "conversation.item.delete", "item_id": "item_q1"})
    core.request(delete, now=1)  # deferred until the restore
    now = reopen(core, 1)
    feed(core, {"type": "session.created", "session": {"id": "s2"}}, now=now)
    restore = take(core, "conversation.item.create")
    assert [e["item"]["id"] for e in restore] == ["item_q1", "item_a1"]
    assert core.state is State.RECONNECTING
    # The server swallows the restore: the attempt's deadline is armed, nothing else.
    deadline = core.next_deadline()
    assert deadline == now + TIMING.restore_timeout
    core.tick(deadline - 0.001)
    assert waiting.state is TurnState.QUEUED
    core.tick(deadline)
    assert commands(core) == ["close"]  # the silent socket is closed
    assert core.state is State.RECONNECTING
    assert core.status().attempt == 2
    assert "did not acknowledge the restored conversation within 20 s" in str(core.status().reason)
    assert isinstance(waiting.error, RealtimeConnectionError)
    message = str(waiting.error)
    assert "reconnecting (attempt 2)" in message
    assert str(delete.error) == message
    assert "\n" not in message
    # Another attempt, with backoff; this server answers and the Session works again.
    retry = core.next_deadline()
    assert retry > deadline
    now = reopen(core, deadline)
    feed(core, {"type": "session.created", "session": {"id": "s3"}}, now=now)
    acknowledge_restore(core, now)
    assert core.state is State.READY
    assert core.status().attempt == 0
    assert core.next_deadline() is None  # nothing timed while idle and ready
    third = ask(core, "item_q3", "third", now=now)
    run_turn(core, third, "resp_3", "item_a3", "third answer", now=now)
    assert third.status == "completed"
    assert [i.id for i in core.view().items] == ["item_q1", "item_a1", "item_q3", "item_a3"]


def test_a_socket_that_never_sends_session_created_is_abandoned_too():
    core = ready(timing=TIMING)
    core.socket_closed(core.generation, "dropped", now=0)
    now = reopen(core, 0)
    core.socket_opened(core.generation, now)
    core.tick(now + TIMING.restore_timeout)
    assert commands(core) == ["close"]
    assert "no session.created within 20 s" in str(core.status().reason)
    assert core.state is State.RECONNECTING


def test_attempts_that_all_time_out_give_up_after_max_attempts():
    core = ready(timing=TIMING)
    run_turn(core, ask(core, "item_q", "q"), "resp_1", "item_a", "a")
    turn = ask(core, "item_q2", "q2")
    core.socket_closed(core.generation, "dropped", now=0)
    now = 0.0
    for _ in range(TIMING.max_attempts):
        now = reopen(core, now)
        feed(core, {"type": "session.created", "session": {}}, now=now)
        now = core.next_deadline()
        core.tick(now)
    assert core.state is State.CLOSED
    assert "gave up reconnecting after 3 attempts" in str(core.status().reason)
    assert isinstance(turn.error, RealtimeConnectionError)
    assert core.next_deadline() is None


def test_a_first_connect_waits_as_long_as_its_caller_says():
    core = ClientCore(Dialect.GA, TIMING)
    core.open(0.0)
    assert core.next_deadline() is None  # connect(timeout=...) gives up, not the core
    core.tick(10 * TIMING.restore_timeout)
    assert core.state is State.CONNECTING


def expire(core, now):
    """The service's session ends: an error without event_id, then the close."""
    feed(core, EXPIRED, now=now)
    core.socket_closed(core.generation, "session_expired: Your session hit the maximum", now)


def test_expiries_in_a_row_without_a_completed_answer_give_up_with_one_line():
    core = ready(timing=TIMING)
    turns = []
    now = 0.0
    for n in range(TIMING.max_expiries - 1):
        turns.append(ask(core, f"item_q{n}", "q", now=now))
        expire(core, now)
        assert core.state is State.RECONNECTING
        now = reopen(core, now)
        feed(core, {"type": "session.created", "session": {}}, now=now)
        acknowledge_restore(core, now)
        assert core.state is State.READY
        assert core.status().attempt == 0  # the attempt counter starts over at each restore...
        take(core)
    expire(core, now)  # ...the expiry counter does not
    assert core.state is State.CLOSED
    assert commands(core)[-1] == "close"
    reason = str(core.status().reason)
    assert "session_expired" in reason
    assert "3 times in a row" in reason
    assert "\n" not in reason
    assert all(isinstance(t.error, RealtimeConnectionError) for t in turns)
    assert core.next_deadline() is None


def test_a_completed_answer_resets_the_expiry_count():
    core = ready(timing=TIMING)
    now = 0.0
    for n in range(TIMING.max_expiries + 2):
        turn = ask(core, f"item_q{n}", "q", now=now)
        run_turn(core, turn, f"resp_{n}", f"item_a{n}", "a", now=now)
        assert turn.status == "completed"
        expire(core, now)
        assert core.state is State.RECONNECTING
        now = reopen(core, now)
        feed(core, {"type": "session.created", "session": {}}, now=now)
        acknowledge_restore(core, now)
        assert core.state is State.READY


def test_an_answer_cut_twice_by_session_expired_says_the_session_expired():
    core = ready(timing=TIMING)
    turn = ask(core, "item_q", "q")
    feed(core, added(take(core)[0]["item"]))
    now = 0.0
    for attempt in range(2):
        (_create,) = take(core, "response.create")
        feed(core, created(f"resp_{attempt}", turn.tag), now=now)
        expire(core, now)
        if attempt == 0:
            now = reopen(core, now)
            feed(core, {"type": "session.created", "session": {}}, now=now)
            acknowledge_restore(core, now)
    message = str(turn.error)
    assert "session expired" in message
    assert "shorter than this answer" in message
    assert "dropped" not in message


def test_an_answer_cut_twice_by_drops_names_the_drop():
    core = ready(timing=TIMING)
    turn = ask(core, "item_q", "q")
    feed(core, added(take(core)[0]["item"]))
    for attempt in range(2):
        take(core)
        feed(core, created(f"resp_{attempt}", turn.tag))
        core.socket_closed(core.generation, "the server closed the connection (1006)", 0)
        if attempt == 0:
            reopen(core, 0)
            feed(core, {"type": "session.created", "session": {}})
            acknowledge_restore(core, 0)
    assert "dropped twice" in str(turn.error)
    assert "1006" in str(turn.error)


def test_a_response_done_before_its_response_created_completes_the_turn():
    core = ready(timing=TIMING)
    turn = ask(core, "item_q", "q")
    feed(core, added(take(core)[0]["item"]))
    (create,) = take(core, "response.create")
    assert create["response"]["metadata"][REQUEST_TAG] == turn.tag
    done = answer("resp_1", "item_a", "the whole answer")[-1]
    done["response"]["metadata"] = {REQUEST_TAG: turn.tag}
    feed(core, done)
    assert turn.status == "completed"
    assert turn.response_id == "resp_1"
    assert core.view().response_text("resp_1") == "the whole answer"
    feed(core, created("resp_1", turn.tag))  # late: changes nothing
    assert core.view().active_response_id is None
    nxt = ask(core, "item_q2", "q2")
    run_turn(core, nxt, "resp_2", "item_a2", "next")
    assert nxt.status == "completed"


def test_events_of_an_unknown_response_block_nothing():
    core = ready(timing=TIMING)
    feed(
        core,
        {
            "type": "response.output_text.delta",
            "response_id": "resp_ghost",
            "item_id": "item_ghost",
            "delta": "boo",
        },
        {"type": "response.done", "response": {"id": "resp_ghost", "status": "completed"}},
    )
    turn = ask(core, "item_q", "q")
    run_turn(core, turn, "resp_1", "item_a", "fine")
    assert turn.status == "completed"


def test_abandon_finishes_a_running_turn_as_cancelled_and_recycles_the_connection():
    core = ready(timing=TIMING)
    turn = ask(core, "item_q", "q")
    queued = ask(core, "item_q2", "q2")
    feed(core, added(take(core)[0]["item"]))
    take(core, "response.create")
    feed(core, created("resp_1", turn.tag), *answer("resp_1", "item_a", "partial")[:3])
    commands(core)
    core.abandon(turn, now=1)
    assert turn.status == "cancelled"
    assert [e["type"] for e in take(core)] == ["response.cancel"]  # asked, never confirmed
    assert commands(core) == ["close", "open"]  # the stubborn response goes with its socket
    assert core.state is State.RECONNECTING
    assert queued.state is TurnState.QUEUED  # the queue moves on once restored
    feed(core, {"type": "session.created", "session": {}}, now=1)
    acknowledge_restore(core, 1)
    assert core.state is State.READY
    run_turn(core, queued, "resp_2", "item_a2", "next", now=1)
    assert queued.status == "completed"


def test_abandon_of_a_queued_turn_sends_nothing():
    core = ready(timing=TIMING)
    running = ask(core, "item_q", "q")
    queued = ask(core, "item_q2", "q2")
    take(core)
    core.abandon(queued, now=0)
    assert queued.status == "cancelled"
    assert take(core) == []
    assert running.state is TurnState.ADDING


def test_an_answer_given_up_after_refused_events_names_them_not_silence():
    core = ready(timing=TIMING)
    turn = ask(core, "item_q", "q")
    feed(core, added(take(core)[0]["item"]))
    take(core, "response.create")
    feed(core, created("resp_1", turn.tag))
    core.receive('{"type": "response.done", "response": 7}', core.generation, 1.0)
    core.tick(core.next_deadline())
    message = str(turn.error)
    assert "nothing usable for 30 s" in message
    assert "response.done" in message
    assert "sent nothing" not in message
