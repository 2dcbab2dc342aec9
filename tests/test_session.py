"""The Session against the embedded server through the real openai SDK on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from rt_notebook import RealtimeConnectionError, ServerError
from rt_notebook.client.session import Timing
from rt_notebook.frontends.transcript import load_recording
from tests.timing import WAIT, wait_until, within


def test_text_turn_streams_into_the_mirror(session):
    handle = session.ask("Hello **world**")
    result = handle.wait(WAIT)
    assert result.status == "completed"
    assert "Hello **world**" in result.text
    assert result.usage["total_tokens"] > 0
    assert [(i.role, i.type) for i in session.items] == [
        ("user", "message"),
        ("assistant", "message"),
    ]
    assert session.items[1].text == result.text
    assert result.time_to_first_delta is not None


def test_beta_dialect_turn(beta_server, make_session):
    session = make_session(beta_server, dialect="beta")
    try:
        result = session.ask("beta hello").wait(WAIT)
        assert "beta hello" in result.text
        assert session.items[-1].role == "assistant"
    finally:
        session.close()


def test_responses_are_queued_never_conflicting(session):
    session.add_message("one")
    handles = []
    lock = threading.Lock()

    def fire():
        handle = session.create_response()
        with lock:
            handles.append(handle)

    threads = [threading.Thread(target=fire) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results = [h.wait(WAIT) for h in handles]
    assert [r.status for r in results] == ["completed"] * 5
    assert len({r.id for r in results}) == 5
    codes = [e.get("code") for e in session.errors]
    assert "conversation_already_has_active_response" not in codes


def test_messages_from_many_threads_all_arrive(session):
    texts = [f"message {n}" for n in range(20)]
    threads = [threading.Thread(target=session.add_message, args=(t,)) for t in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(i.text for i in session.items) == sorted(texts)


def test_server_error_fails_the_request_that_caused_it(session):
    with pytest.raises(ServerError) as caught:
        session.add_message("misplaced", after="item_missing")
    assert caught.value.code is not None
    assert session.ask("still works").wait(WAIT).status == "completed"


def test_cancel_mid_stream(paced_server, make_session):
    session = make_session(paced_server)
    try:
        streaming = threading.Event()
        handle = None

        def on_changes(_session, _changes):
            if handle is not None and handle.text:
                streaming.set()

        unsubscribe = session.subscribe(on_changes)
        handle = session.ask(" ".join(f"w{n}" for n in range(300)))
        on_changes(session, [])  # in case the first delta came before `handle` was bound
        assert streaming.wait(WAIT), "the answer never started streaming"
        unsubscribe()
        handle.cancel()
        result = handle.wait(WAIT)
        assert result.status == "cancelled"
        assert len(result.text.split()) < 300
        assert session.ask("after cancel").wait(WAIT).status == "completed"
    finally:
        session.close()


def test_cancel_of_a_queued_request_never_sends_it(paced_server, make_session):
    session = make_session(paced_server)
    try:
        running = session.ask(" ".join(["long"] * 100))
        queued = session.create_response()
        queued.cancel()
        assert queued.wait(within(10)).status == "cancelled"
        assert queued.response_id is None
        running.cancel()
        assert running.wait(WAIT).status == "cancelled"
    finally:
        session.close()


def test_out_of_band_response_runs_beside_the_conversation(paced_server, make_session):
    session = make_session(paced_server)
    try:
        main = session.ask(" ".join(["main"] * 60))
        side = session.create_response(
            conversation="none",
            input=[
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "side question"}],
                }
            ],
            metadata={"cell": "c1"},
        )
        side_result = side.wait(WAIT)
        assert side_result.out_of_band
        assert side_result.metadata == {"cell": "c1"}
        assert "side question" in side_result.text
        assert main.wait(WAIT).status == "completed"
        item_ids = {i.id for i in session.items}
        assert not any(item.id in item_ids for item in side_result.items)
    finally:
        session.close()


def test_handle_can_be_awaited(session):
    async def run():
        return await session.ask("awaited")

    result = asyncio.run(run())
    assert "awaited" in result.text


def test_record_and_rebuild_transcript(session, tmp_path):
    path = tmp_path / "events.jsonl"
    session.record(path)
    session.ask("recorded turn").wait(WAIT)
    session.stop_recording()
    lines = path.read_text().splitlines()
    directions = {json.loads(line)["direction"] for line in lines}
    assert directions == {"sent", "received"}
    rebuilt = load_recording(lines)
    assert [i.text for i in rebuilt.items][-2] == "recorded turn"
    assert rebuilt.items[-1].text == session.items[-1].text


def test_wrong_key_fails_clearly_without_leaking_it(offline_server):
    from rt_notebook.client.session import Session

    secret = "sk-wrong-0123456789abcdefghij"
    session = Session(websocket_base_url=offline_server.websocket_base_url, api_key=secret)
    with pytest.raises(RealtimeConnectionError) as caught:
        session.connect(timeout=within(10))
    assert secret not in str(caught.value)
    assert secret not in repr(session)


def test_insert_at_root_and_after(session):
    first = session.add_message("first")
    last = session.add_message("last")
    session.add_message("zeroth", after="root")
    session.add_message("middle", after=first)
    assert [i.text for i in session.items] == ["zeroth", "first", "middle", "last"]
    session.delete_item(last)
    assert [i.text for i in session.items] == ["zeroth", "first", "middle"]


def test_server_going_away_fails_pending_requests_and_leaves_no_task(make_session):
    from rt_notebook.client.io_thread import IOThread
    from rt_notebook.server import EmbeddedServer

    server = EmbeddedServer(pace=0.05).start()
    session = make_session(server, timing=Timing(backoff_initial=0.01, max_attempts=2))
    io = IOThread.get()

    driver = session._driver
    owners = (session, driver)

    def tasks_of_this_session():
        """Every live task that works for this Session: its driver's opening, reading and
        writing tasks (their coroutines' ``self``), and any other coroutine holding the
        Session or its driver (a closer, a helper)."""
        names = []
        for task in asyncio.all_tasks(io.loop):
            frame = getattr(task.get_coro(), "cr_frame", None)
            if frame is not None and any(
                any(value is owner for owner in owners) for value in frame.f_locals.values()
            ):
                names.append(task.get_coro().__qualname__)
        return names

    # While connected, the check sees the driver's reader and writer: it can fail.
    assert {"Driver._read", "Driver._write"} <= set(io.call(tasks_of_this_session).result())
    handle = session.ask(" ".join(["long"] * 200))
    server.stop()  # the connection drops mid-answer, and reconnecting fails
    with pytest.raises(RealtimeConnectionError, match="gave up reconnecting after 2 attempts"):
        handle.wait(WAIT)
    assert not session.connected
    assert session.status.state == "closed"
    # Cancelled tasks end on the loop's next steps: wait for that, never for a time.
    wait_until(lambda: io.call(tasks_of_this_session).result() == [], "the session's tasks to end")
    assert driver.tasks() == set()
