"""The Session's client core end to end: the real openai SDK against the embedded server.

Concurrent turns, concurrent connects, drops mid-answer and between turns, session expiry,
renewal and a soak of drops. Timers and backoff are multiples of ``tests.timing.UNIT``, so a
busy machine only needs a larger ``RT_TEST_TIME_SCALE``.
The server-side conversation after a restore is rebuilt from what the server itself sent on
the new connection (a recording), not from the client's mirror.
"""

from __future__ import annotations

import json
import socket
import threading

import pytest

from rt_notebook.client.session import Session, Timing
from rt_notebook.protocol.conversation import Conversation
from rt_notebook.server import EmbeddedServer
from tests.timing import PROCESS_WAIT, UNIT, WAIT, wait_until, within


def timing(**overrides):
    values = {
        "cancel_timeout": 40 * UNIT,
        "idle_timeout": 200 * UNIT,
        "backoff_initial": UNIT,
        "backoff_max": 4 * UNIT,
        "max_attempts": 8,
        "renew_margin": 0.0,
    }
    values.update(overrides)
    return Timing(**values)


def new_session(server, **options):
    options.setdefault("timing", timing())
    return Session(
        base_url=server.base_url,
        websocket_base_url=server.websocket_base_url,
        api_key=server.token,
        **options,
    )


def texts(session):
    return [(item.role, item.text) for item in session.items]


def server_conversation(session, path):
    """The conversation as the server reported it on the latest connection (recorded)."""
    session.stop_recording()  # flushes the file
    received = [
        json.loads(line)["data"]
        for line in path.read_text().splitlines()
        if json.loads(line)["direction"] == "received"
    ]
    starts = [i for i, event in enumerate(received) if event.get("type") == "session.created"]
    mirror = Conversation()
    for event in received[starts[-1] :]:
        mirror.apply(event)
    return [(item.role, item.text) for item in mirror.items]


@pytest.fixture(scope="module")
def fast():
    with EmbeddedServer(pace=0.0) as server:
        yield server


@pytest.fixture
def session(fast):
    session = new_session(fast).connect()
    yield session
    session.close()


# Turns and connects ---------------------------------------------------------------------


def test_four_threads_times_25_asks_each_answer_belongs_to_its_question(session):
    failures = []

    def asker(thread):
        for n in range(25):
            question = f"thread {thread} question {n}"
            result = session.ask(question).wait(WAIT)
            if result.text != f"Echo: {question}":
                failures.append((question, result.text))

    threads = [threading.Thread(target=asker, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    codes = [error.get("code") for error in session.errors]
    assert "conversation_already_has_active_response" not in codes
    assert len(session.items) == 200
    # Each question is directly followed by its own answer.
    pairs = texts(session)
    for (role, question), (answer_role, answer) in zip(pairs[::2], pairs[1::2], strict=True):
        assert (role, answer_role, answer) == ("user", "assistant", f"Echo: {question}")


def test_background_style_turns_and_plain_messages_interleave_in_order(session):
    # Two "background cells" plus a thread of add_message calls while answers stream.
    first = session.ask("background one")
    second = session.ask("background two")
    notes = [session.add_message(f"note {n}") for n in range(3)]
    assert first.wait(WAIT).text == "Echo: background one"
    assert second.wait(WAIT).text == "Echo: background two"
    order = [text for _, text in texts(session)]
    assert order[:4] == [
        "background one",
        "Echo: background one",
        "background two",
        "Echo: background two",
    ]
    assert [session.item(n).text for n in notes] == ["note 0", "note 1", "note 2"]


def test_20_times_8_concurrent_connects_open_one_websocket_each_time(fast):
    for _ in range(20):
        session = new_session(fast)
        before = fast.connections_opened
        barrier = threading.Barrier(8)
        errors = []

        def connect(session=session, barrier=barrier, errors=errors):
            barrier.wait()
            try:
                session.connect(timeout=WAIT)
            except Exception as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=connect) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert fast.connections_opened - before == 1
        session.close()
    wait_until(lambda: fast.open_connections == 0, "every socket to close")


def test_a_timed_out_connect_leaves_no_socket_and_no_task():
    # A TCP server that accepts and never answers the websocket handshake.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    closed = threading.Event()

    def serve():
        connection, _ = listener.accept()
        while connection.recv(4096):
            pass
        closed.set()  # the client closed its end
        connection.close()

    threading.Thread(target=serve, daemon=True).start()
    session = Session(websocket_base_url=f"ws://127.0.0.1:{port}/v1", api_key="unused-key-123")
    with pytest.raises(Exception, match=r"no session\.created"):
        session.connect(timeout=10 * UNIT)
    assert closed.wait(WAIT), "the half-open socket was left open"
    assert session.status.state == "closed"
    # No task may be left behind (cancelled ones leave the set on the loop's next turn).
    wait_until(lambda: session.driver.tasks() == set(), "no task")
    listener.close()


def test_the_key_stays_in_the_sdk_client():
    from rt_notebook import connect

    secret = "sk-test-0123456789abcdefSECRET"
    server = EmbeddedServer(pace=0.0, token=secret).start()
    session = connect(
        "key-test",
        base_url=server.base_url,
        websocket_base_url=server.websocket_base_url,
        api_key=secret,
        timing=timing(),
    )
    try:
        assert session.ask("hello").wait(WAIT).text == "Echo: hello"
        assert secret not in repr(vars(session))
        assert secret not in repr(session.options)
        assert secret not in repr(session.endpoint)
        session._on_raw(json.dumps({"type": "error", "error": {"message": f"bad key {secret}"}}))
        assert secret not in json.dumps(session.errors)
        assert secret not in json.dumps(session.events)
    finally:
        session.close()
        server.stop()


def test_the_sdks_own_reconnect_and_send_queue_are_off(session):
    manager = session._driver.transport.connection_manager()
    assert manager._AsyncRealtimeConnectionManager__on_reconnecting is None


# Drops, expiry, renewal -----------------------------------------------------------------


@pytest.fixture
def paced():
    with EmbeddedServer(pace=UNIT / 10) as server:
        yield server


def test_a_drop_mid_answer_restores_and_asks_again(paced, tmp_path):
    session = new_session(paced, instructions="Be brief.").connect()
    path = tmp_path / "events.jsonl"
    session.record(path)
    try:
        assert session.ask("first question").wait(WAIT).text == "Echo: first question"
        before = texts(session)
        paced.schedule_drop(after_deltas=2)
        long = " ".join(f"w{n}" for n in range(30))
        result = session.ask(long).wait(WAIT)
        assert result.text == f"Echo: {long}"
        assert paced.connections_opened == 2
        after = texts(session)
        assert after == [*before, ("user", long), ("assistant", f"Echo: {long}")]
        assert server_conversation(session, path) == after
        assert session.status.restored == 3  # two items before, and the question
        # Nothing went ahead of the restore: settings and items, then the request again.
        sent = [
            json.loads(line)["data"]
            for line in path.read_text().splitlines()
            if json.loads(line)["direction"] == "sent"
        ]
        tail = [event["type"] for event in sent[-5:]]
        assert tail == ["session.update", *["conversation.item.create"] * 3, "response.create"]
        assert sent[-5]["session"]["instructions"] == "Be brief."
    finally:
        session.close()


def test_a_drop_between_turns_is_invisible(paced, tmp_path):
    session = new_session(paced).connect()
    path = tmp_path / "events.jsonl"
    session.record(path)
    try:
        session.ask("one").wait(WAIT)
        before = texts(session)
        assert paced.drop_connections() == 1
        wait_until(lambda: paced.connections_opened == 2, "the reconnect")
        result = session.ask("two").wait(WAIT)
        assert result.text == "Echo: two"
        assert texts(session) == [*before, ("user", "two"), ("assistant", "Echo: two")]
        assert server_conversation(session, path) == texts(session)
    finally:
        session.close()


def test_a_restore_of_a_long_conversation_rebuilds_no_position_map_per_item(fast):
    """Every restored item is already in the mirror, in place: the restore leaves it there
    (rebuilding the whole position map per item made it quadratic: 11 s at 2,000 items)."""
    session = new_session(fast).connect()
    try:
        for n in range(300):
            session.add_message(f"message {n}")
        before = texts(session)
        with session.driver.reading() as conversation:
            rebuilds = conversation.position_rebuilds
        assert fast.drop_connections() == 1
        result = session.ask("after the drop").wait(WAIT)
        assert result.text == "Echo: after the drop"
        assert session.status.restored == 300
        assert conversation.position_rebuilds - rebuilds <= 1
        assert texts(session) == [*before, ("user", "after the drop"), result_item(result)]
    finally:
        session.close()


def result_item(result):
    return ("assistant", result.text)


def test_renewal_before_the_servers_limit_avoids_the_expiry(tmp_path):
    with EmbeddedServer(pace=0.0, max_session_seconds=40 * UNIT) as server:
        session = new_session(server).connect()
        path = tmp_path / "events.jsonl"
        session.record(path)
        try:
            session.ask("before renewal").wait(WAIT)
            before = texts(session)
            wait_until(lambda: session.status.renewed_at is not None, "the renewal")
            assert server.connections_opened == 2
            assert session.errors == []  # no session_expired: renewed half-way
            assert server_conversation(session, path) == before
            assert session.ask("after").wait(WAIT).text == "Echo: after"
        finally:
            session.close()


def test_session_expiry_moves_the_conversation_to_a_new_session(tmp_path):
    with EmbeddedServer(pace=0.0, max_session_seconds=20 * UNIT) as server:
        session = new_session(server, timing=timing(renew_before_expiry=False)).connect()
        path = tmp_path / "events.jsonl"
        session.record(path)
        try:
            session.ask("before expiry").wait(WAIT)
            before = texts(session)
            wait_until(lambda: server.connections_opened >= 2, "the session to expire")
            assert any(e.get("code") == "session_expired" for e in session.errors)
            result = session.ask("after expiry").wait(WAIT)
            assert result.text == "Echo: after expiry"
            assert texts(session)[: len(before)] == before
            assert server_conversation(session, path) == texts(session)
        finally:
            session.close()


def test_renewal_between_responses(fast, tmp_path):
    session = new_session(fast, timing=timing(max_age=10 * UNIT)).connect()
    path = tmp_path / "events.jsonl"
    session.record(path)
    try:
        session.ask("before renewal").wait(WAIT)
        before = texts(session)
        wait_until(lambda: session.status.renewed_at is not None, "a renewal")
        assert "renewed at" in session.status.describe()
        assert server_conversation(session, path) == before
        assert session.ask("after renewal").wait(WAIT).text == "Echo: after renewal"
    finally:
        session.close()


def test_reset_after_close_starts_an_empty_conversation(session):
    session.ask("remembered?").wait(WAIT)
    session.close()
    session.connect()
    assert session.items == []


# CPU-bound: 100 reconnects each restore the whole conversation (10,000 items created and
# validated in all); 70-130 s on a 2-core machine at load 11, so over the default limit.
@pytest.mark.timeout(within(600))
def test_soak_of_100_drops_loses_no_item(tmp_path):
    with EmbeddedServer(pace=0.0) as server:
        session = new_session(server).connect()
        path = tmp_path / "events.jsonl"
        try:
            expected = []
            for n in range(100):
                if n % 2:
                    server.schedule_drop(after_deltas=1)  # mid-answer
                result = session.ask(f"soak {n}").wait(WAIT)
                assert result.text == f"Echo: soak {n}"
                expected += [("user", f"soak {n}"), ("assistant", f"Echo: soak {n}")]
                if n % 2 == 0:
                    # Counted before the drop: read after it, a client that reconnects
                    # at once (its backoff is one unit) may be counted already.
                    opened = server.connections_opened
                    server.drop_connections()  # between turns
                    wait_until(
                        lambda opened=opened: (
                            (
                                session.status.state == "ready"
                                and server.connections_opened == opened + 1
                            )
                            or server.connections_opened > opened + 1
                        ),
                        "the reconnect",
                    )
            assert texts(session) == expected
            session.record(path)
            opened = server.connections_opened
            server.drop_connections()
            session.ask("final").wait(WAIT)  # waits for the restore, then runs
            assert server.connections_opened == opened + 1
            assert server_conversation(session, path) == texts(session)
            assert len(texts(session)) == 202
        finally:
            session.close()
        wait_until(lambda: server.open_connections == 0, "every socket to close")


def test_after_reconnecting_gave_up_a_later_connect_restores_the_conversation(tmp_path):
    server = EmbeddedServer(pace=0.0).start()
    port, token = server.port, server.token
    session = new_session(server, timing=timing(max_attempts=2))
    try:
        session.connect()
        session.ask("kept across an outage").wait(WAIT)
        before = texts(session)
        server.stop()
        wait_until(lambda: session.status.state == "closed", "reconnecting to give up")
        assert "gave up reconnecting after 2 attempts" in session.status.describe()
        server = EmbeddedServer(pace=0.0, port=port, token=token).start()
        session.connect()
        assert texts(session) == before
        assert session.status.restored == 2
        assert session.ask("back").wait(WAIT).text == "Echo: back"
    finally:
        session.close()
        server.stop()


def test_a_standalone_server_killed_and_started_again(tmp_path):
    """The server process dies mid-conversation and comes back on its fixed port and token:
    the Session reconnects by itself and the conversation goes on."""
    import signal
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = "standalone-token-0123456789"
    command = [
        sys.executable,
        "-m",
        "rt_notebook.server",
        "--port",
        str(port),
        "--token",
        token,
        "--pace",
        "0",
    ]

    processes = []

    def start():
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        processes.append(process)
        assert process.stdout is not None
        process.stdout.readline()  # it prints once it listens
        return process

    process = start()
    session = Session(
        base_url=f"http://127.0.0.1:{port}/v1",
        websocket_base_url=f"ws://127.0.0.1:{port}/v1",
        api_key=token,
        timing=timing(max_attempts=20),
    )
    try:
        # A fresh server process imports the SDK's models on its first event.
        session.connect(timeout=PROCESS_WAIT)
        session.ask("before the kill").wait(WAIT)
        before = texts(session)
        process.send_signal(signal.SIGKILL)
        process.wait(WAIT)
        wait_until(lambda: session.status.state == "reconnecting", "the drop to be noticed")
        process = start()
        result = session.ask("after the restart").wait(PROCESS_WAIT)  # a fresh process again
        assert result.text == "Echo: after the restart"
        assert texts(session)[:2] == before
        assert session.status.restored == 2
    finally:
        session.close()
        for each in processes:
            each.kill()
            each.wait(WAIT)
            each.stdout.close()
