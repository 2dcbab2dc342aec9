"""Faults for tests of reconnection, through the real ``openai`` SDK: session expiry, drops, counts.

Every event received is validated strictly against the SDK's models (``Client.next``). Waits
synchronise on events (a frame, a closed connection); the only polling is for a server-side
counter to settle, bounded by one scalable time unit.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Iterator

import pytest
from server_helpers import Client, run, sdk_client, text_mode, types, user_text
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from rt_notebook.protocol.events import Dialect, Event
from rt_notebook.server import EmbeddedServer
from rt_notebook.server.errors import describe_duration, session_expired
from tests.timing import wait_until, within

LONG_TEXT = " ".join(f"word{n}" for n in range(40))


async def closed_by_server(client: Client) -> tuple[list[Event], ConnectionClosed]:
    """Receive until the connection closes; return the events and the close exception."""
    events: list[Event] = []
    while True:
        try:
            events.append(await client.next())
        except ConnectionClosed as closed:
            return events, closed


async def start_long_answer(client: Client) -> None:
    await text_mode(client)
    await client.send({"type": "conversation.item.create", "item": user_text(LONG_TEXT)})
    await client.send({"type": "response.create"})


def deltas(events: list[Event]) -> list[str]:
    text_deltas = ("response.output_text.delta", "response.text.delta")
    return [event["delta"] for event in events if event["type"] in text_deltas]


@pytest.fixture
def server() -> Iterator[EmbeddedServer]:
    """A fresh echo server with a small pace, so a fault lands mid-response (``auto``: the
    tests of both dialects use it)."""
    with EmbeddedServer(pace=0.01, dialect="auto") as fresh:
        yield fresh


# Session expiry


def test_expiry_wording_follows_the_duration() -> None:
    assert session_expired(3600).message == "Your session hit the maximum duration of 60 minutes."
    assert describe_duration(60) == "1 minute"
    assert describe_duration(1.5) == "1.5 seconds"
    assert describe_duration(1) == "1 second"
    assert session_expired(90).code == "session_expired"
    assert session_expired(90).type == "invalid_request_error"


def test_session_created_announces_sixty_minutes_by_default(server: EmbeddedServer) -> None:
    async def scenario() -> tuple[float, Event, float]:
        before = time.time()
        async with sdk_client(server) as client:
            return before, client.received[0], time.time()

    before, created, after = run(scenario())
    expires_at = created["session"]["expires_at"]
    assert int(before) + 3600 <= expires_at <= int(after) + 3600


@pytest.mark.parametrize("dialect", [Dialect.GA, Dialect.BETA])
def test_a_session_ends_at_its_maximum_duration_like_the_service(dialect: Dialect) -> None:
    seconds = within(2)
    reason = f"Your session hit the maximum duration of {describe_duration(seconds)}."

    async def scenario() -> tuple[float, float, Event, list[Event], ConnectionClosed]:
        before = time.time()
        async with sdk_client(expiring, dialect) as client:
            after = time.time()
            await start_long_answer(client)  # still streaming when the session expires
            events, closed = await closed_by_server(client)
            return before, after, client.received[0], events, closed

    # 40 words at 0.2 s a delta: 8 s of streaming, longer than the session.
    with EmbeddedServer(pace=0.2, max_session_seconds=seconds, dialect=dialect) as expiring:
        before, after, created, events, closed = run(scenario())
    expires_at = created["session"]["expires_at"]
    assert math.floor(before + seconds) <= expires_at <= math.floor(after + seconds)
    error = events[-1]
    assert error["type"] == "error"
    assert error["error"]["code"] == "session_expired"
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["message"] == reason
    assert "response.done" not in types(events)  # cut mid-stream: nothing after the error
    assert deltas(events)
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (1001, reason)


def test_expires_at_follows_max_session_seconds() -> None:
    with EmbeddedServer(max_session_seconds=3600) as server:

        async def scenario() -> Event:
            async with sdk_client(server) as client:
                return client.received[0]

        created = run(scenario())
    assert created["session"]["expires_at"] - time.time() == pytest.approx(3600, abs=5)


# Drops


def test_drop_connections_aborts_every_connection_without_a_close_frame(
    server: EmbeddedServer,
) -> None:
    dropped: list[int] = []

    async def scenario() -> list[ConnectionClosed]:
        async with sdk_client(server) as first, sdk_client(server) as second:
            assert server.open_connections == 2
            # From another thread, as a test would while the clients wait.
            dropper = threading.Thread(target=lambda: dropped.append(server.drop_connections()))
            dropper.start()
            results = [await closed_by_server(client) for client in (first, second)]
            dropper.join()
            return [closed for _, closed in results]

    closes = run(scenario())
    assert dropped == [2]
    for closed in closes:
        assert isinstance(closed, ConnectionClosedError)
        assert closed.rcvd is None  # no close frame: a network drop, not a goodbye
    assert server.open_connections == 0
    assert server.connections_opened == 2
    assert server.drop_connections() == 0


def test_the_server_serves_new_connections_after_a_drop(server: EmbeddedServer) -> None:
    async def scenario() -> str:
        async with sdk_client(server) as client:
            server.drop_connections()
            await closed_by_server(client)
        async with sdk_client(server) as client:
            await text_mode(client)
            await client.send({"type": "conversation.item.create", "item": user_text("again")})
            await client.send({"type": "response.create"})
            events = await client.until("response.done")
            return "".join(deltas(events))

    assert run(scenario()) == "Echo: again"
    assert server.connections_opened == 2


@pytest.mark.parametrize("dialect", [Dialect.GA, Dialect.BETA])
@pytest.mark.parametrize("after", [0, 3])
def test_schedule_drop_cuts_the_next_response_after_that_many_deltas(
    server: EmbeddedServer, dialect: Dialect, after: int
) -> None:
    async def scenario() -> tuple[list[Event], ConnectionClosed, list[Event]]:
        async with sdk_client(server, dialect) as client:
            await text_mode(client)
            server.schedule_drop(after_deltas=after)
            await start_long_answer(client)
            events, closed = await closed_by_server(client)
        async with sdk_client(server, dialect) as client:
            await start_long_answer(client)  # one drop per call: this one completes
            return events, closed, await client.until("response.done")

    events, closed, next_answer = run(scenario())
    assert "response.created" in types(events)
    assert len(deltas(events)) == after
    assert "response.done" not in types(events)
    assert isinstance(closed, ConnectionClosedError)
    assert closed.rcvd is None
    assert "".join(deltas(next_answer)) == f"Echo: {LONG_TEXT}"
    wait_until(lambda: server.open_connections == 0, "the server to count the close")


def test_schedule_drop_rejects_a_negative_count(server: EmbeddedServer) -> None:
    with pytest.raises(ValueError, match="after_deltas"):
        server.schedule_drop(-1)


# Counts


def test_connection_counts_under_concurrent_connects(server: EmbeddedServer) -> None:
    async def one(ready: asyncio.Barrier) -> None:
        async with sdk_client(server):
            await ready.wait()  # every connection is open at once here
            assert server.open_connections == 8

    async def scenario() -> None:
        ready = asyncio.Barrier(8)
        await asyncio.gather(*(one(ready) for _ in range(8)))

    run(scenario())
    assert server.connections_opened == 8
    wait_until(lambda: server.open_connections == 0, "the server to count the close")


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="max_session_seconds"):
        EmbeddedServer(max_session_seconds=0)
    with pytest.raises(ValueError, match="max_session_seconds"):
        EmbeddedServer(max_session_seconds=-5)


def test_concurrent_drops_count_each_connection_once(server: EmbeddedServer) -> None:
    counts: list[int] = []
    lock = threading.Lock()

    def drop() -> None:
        dropped = server.drop_connections()
        with lock:
            counts.append(dropped)

    async def scenario() -> None:
        async with (
            sdk_client(server) as a,
            sdk_client(server) as b,
            sdk_client(server) as c,
            sdk_client(server) as d,
        ):
            threads = [threading.Thread(target=drop) for _ in range(4)]
            for thread in threads:
                thread.start()
            for client in (a, b, c, d):
                _, closed = await closed_by_server(client)
                assert closed.rcvd is None
            for thread in threads:
                thread.join()

    run(scenario())
    assert sum(counts) == 4
    assert server.open_connections == 0
