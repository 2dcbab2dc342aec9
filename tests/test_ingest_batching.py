"""The reader's batching: frames read in one loop step share one clock reading; the step's
first frame reaches subscribers at once and its later deltas in as few calls as the
held-back limit allows; every change once and in order.

The unit tests run the driver's reader path (``on_frame(..., batched=True)``) on the I/O
thread, one loop step per ``step()`` call, exactly as the reader does with frames that were
already buffered; they count subscriber calls and clock readings, never time. The last test
streams a real answer from the embedded server.
"""

from __future__ import annotations

import json
import math
import threading
import time

import pytest

from rt_notebook.client import driver as _driver
from rt_notebook.client.driver import HOLD_LIMIT
from rt_notebook.client.session import Session
from rt_notebook.protocol.conversation import ItemDelta
from tests.timing import WAIT


def response_start(response_id="r1", item_id="a1"):
    item = {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress"}
    return [
        {"type": "response.created", "response": {"id": response_id, "conversation_id": "c"}},
        {"type": "response.output_item.added", "response_id": response_id, "item": item},
    ]


def delta(text, response_id="r1", item_id="a1"):
    return {
        "type": "response.output_text.delta",
        "response_id": response_id,
        "item_id": item_id,
        "delta": text,
    }


@pytest.fixture
def fed():
    """A Session never opened, with a subscriber recording every call's changes."""
    session = Session(websocket_base_url="ws://127.0.0.1:9/v1", api_key="unit-test-key")
    calls: list[list] = []
    session.subscribe(lambda _session, changes: calls.append(list(changes)))
    yield session, calls
    session.close()


def step(session, *events):
    """Feed ``events`` as the reader does with frames buffered together: one loop step.
    Returns once the step has ended (its end is scheduled before the second call)."""
    driver = session._driver

    def run():
        for event in events:
            driver.on_frame(json.dumps(event), batched=True)

    session._io.call(run).result(WAIT)
    session._io.call(lambda: None).result(WAIT)


def deltas_in(calls):
    return [c.delta for call in calls for c in call if type(c) is ItemDelta]


def test_deltas_of_one_step_reach_subscribers_in_two_calls(fed):
    session, calls = fed
    step(session, *response_start())
    assert len(calls) == 2  # response.created, output_item.added: never held
    words = [f" w{n}" for n in range(10)]
    step(session, *(delta(w) for w in words))
    assert len(calls) == 4  # the first at once (no added latency), the other nine together
    assert [c.delta for c in calls[2]] == words[:1]
    assert [c.delta for c in calls[3]] == words[1:]
    assert session.response_text("r1") == "".join(words)


def test_a_lone_delta_is_delivered_before_the_reader_waits(fed):
    # Goal: the first delta on screen at once. A step's first frame never waits for the
    # step's end: it is delivered inside on_frame, as before batching.
    session, calls = fed
    step(session, *response_start())
    driver = session._driver
    during: list[int] = []

    def run():
        driver.on_frame(json.dumps(delta("first")), batched=True)
        during.append(len(calls))

    session._io.call(run).result(WAIT)
    assert during == [3]
    assert deltas_in(calls) == ["first"]


def test_a_long_burst_is_delivered_every_hold_limit_deltas(fed):
    session, calls = fed
    step(session, *response_start())
    count = 2 * HOLD_LIMIT + 2
    step(session, *(delta(f" w{n}") for n in range(count)))
    delta_calls = calls[2:]
    assert len(delta_calls) == 1 + math.ceil((count - 1) / HOLD_LIMIT) == 4
    assert [len(call) for call in delta_calls] == [1, HOLD_LIMIT, HOLD_LIMIT, 1]
    assert deltas_in(calls) == [f" w{n}" for n in range(count)]


def test_each_step_reads_the_clock_once(fed, monkeypatch):
    session, _ = fed
    reads = {"time": 0, "monotonic": 0}

    class CountingTime:
        def time(self):
            reads["time"] += 1
            return time.time()

        def monotonic(self):
            reads["monotonic"] += 1
            return time.monotonic()

    monkeypatch.setattr(_driver, "time", CountingTime())
    step(session, *response_start(), *(delta(f" w{n}") for n in range(50)))
    assert reads == {"time": 1, "monotonic": 1}
    # The timeline folds the step's deltas into one run, stamped with the step's time.
    run = session.session_timeline().entries[-1]
    assert (run.type, run.count, run.last_at) == ("response.output_text.delta", 50, run.at)
    step(session, delta(" more"), delta(" and more"))
    assert reads == {"time": 2, "monotonic": 2}
    assert session.session_timeline().entries[-1].count == 52


def test_held_deltas_go_before_a_later_change_of_the_same_step(fed):
    session, calls = fed
    step(
        session,
        *response_start(),
        delta("a"),
        delta("b"),
        {"type": "response.output_text.done", "response_id": "r1", "item_id": "a1", "text": "ab"},
        delta("c"),
    )
    kinds = [[type(c).__name__ for c in call] for call in calls]
    assert kinds == [
        ["ResponseCreated"],
        ["ItemAdded"],
        ["ItemDelta", "ItemDelta"],
        ["ItemUpdated"],
        ["ItemDelta"],
    ]


def test_a_flush_delivers_held_deltas_before_resolving_anything(fed):
    # Futures resolve in flush(): a stream's reader must have had every delta by then.
    session, calls = fed
    step(session, *response_start())
    driver = session._driver
    during: list[int] = []

    def run():
        for word in ("a", "b"):
            driver.on_frame(json.dumps(delta(word)), batched=True)
        during.append(len(calls))
        driver.flush()
        during.append(len(calls))

    session._io.call(run).result(WAIT)
    session._io.call(lambda: None).result(WAIT)
    assert during == [3, 4]  # "a" at once (the step's first frame), "b" by the flush
    assert deltas_in(calls) == ["a", "b"]
    assert len(calls) == 4  # nothing delivered twice at the step's end


def test_a_subscriber_added_mid_step_gets_only_later_deltas(fed):
    session, calls = fed
    step(session, *response_start())
    late: list[list] = []
    driver = session._driver

    def run():
        for word in ("a", "b", "c"):
            driver.on_frame(json.dumps(delta(word)), batched=True)
        # As a view subscribing now would: the text so far read in the same critical
        # section, later deltas delivered.
        with driver.lock:
            late.append(["so far: " + session.response_text("r1")])
            session.subscribe(lambda _s, changes: late.append(list(changes)))
        for word in ("d", "e"):
            driver.on_frame(json.dumps(delta(word)), batched=True)

    session._io.call(run).result(WAIT)
    session._io.call(lambda: None).result(WAIT)
    assert deltas_in(calls) == ["a", "b", "c", "d", "e"]
    assert [[c.delta for c in call] for call in calls[2:]] == [["a"], ["b", "c"], ["d", "e"]]
    assert late[0] == ["so far: abc"]
    assert deltas_in(late[1:]) == ["d", "e"]


def test_frames_fed_by_hand_are_delivered_one_by_one(fed):
    session, calls = fed
    for event in (*response_start(), delta("a"), delta("b")):
        session._on_raw(json.dumps(event))
    assert len(calls) == 4


def test_a_streamed_answer_reaches_subscribers_whole_before_it_finishes(
    offline_server, make_session
):
    session = make_session(offline_server)
    seen: list[str] = []
    at_done: list[int] = []
    lock = threading.Lock()

    def on_changes(_session, changes):
        with lock:
            seen.extend(c.delta for c in changes if type(c) is ItemDelta and c.field == "text")

    session.subscribe(on_changes)
    words = " ".join(f"w{n}" for n in range(2000))
    handle = session.ask(words)
    # On the I/O thread, when the future resolves: every delta was delivered before.
    handle.add_done_callback(lambda _: at_done.append(len(seen)))
    result = handle.wait(WAIT)
    assert result.status == "completed"
    assert "".join(seen) == result.text
    assert at_done == [len(seen)]
