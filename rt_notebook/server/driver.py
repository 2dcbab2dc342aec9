""":mod:`asyncio` driver of the embedded Realtime server, built on :mod:`websockets`.

The protocol lives in :class:`~rt_notebook.server.state.ConnectionState`; this module only
moves frames. For each connection two coroutines share one state:

- the *receiver* reads frames, hands them to the state and sends the errors it returns at
  once (so validation errors overtake earlier acknowledgements, as on the service), then
  wakes the pump;
- the *pump* applies queued events (:meth:`~ConnectionState.process`) and, while responses
  are active, advances them one tick every ``pace`` seconds
  (:meth:`~ConnectionState.advance`). Input that arrives between ticks is applied at once,
  so a ``response.cancel`` lands mid-stream. With ``pace`` 0 ticks run back to back and
  the pump yields to the event loop every :data:`UNPACED_BURST` ticks, so input still gets
  in within a few deltas. A client that reads slowly slows the pump down (websockets'
  write flow control), it does not make the server buffer without bound.

Faults for tests of reconnection: with ``max_session_seconds`` a connection ends as the
service ends a session after 60 minutes (``session_expired``, then close 1001), and the
:class:`~rt_notebook.server.connections.ConnectionRegistry` of the config aborts connections
like a network drop, at once or after some deltas of the next response.

websockets does the rest: the opening handshake, ping/pong keepalive (its defaults),
permessage-deflate when the client offers it, and closing handshakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Iterable
from http import HTTPStatus

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from rt_notebook.protocol.events import Dialect, Event
from rt_notebook.server.admission import ENDPOINT, Rejected, admit, is_endpoint
from rt_notebook.server.connections import ConnectionRegistry
from rt_notebook.server.errors import error_event
from rt_notebook.server.responders import Responder
from rt_notebook.server.state import ConnectionState

__all__ = ["DriverConfig", "start_server"]

logger = logging.getLogger("rt_notebook.server")

# input_audio_buffer.append may carry 15 MiB of base64 audio.
MAX_FRAME_BYTES = 20 * 1024 * 1024
SERVER_HEADER = "rt-notebook-offline-realtime"
UNPACED_BURST = 8  # with pace 0, ticks between two yields to the event loop
# A scheduled drop lets the frames already written reach the client first, for so long.
DROP_FLUSH_LIMIT_S = 2.0
# The deltas a scheduled drop counts: text, transcripts, function arguments (both dialects).
COUNTED_DELTAS = frozenset(
    {
        "response.output_text.delta",
        "response.output_audio_transcript.delta",
        "response.text.delta",
        "response.audio_transcript.delta",
        "response.function_call_arguments.delta",
    }
)


@dataclasses.dataclass(frozen=True)
class DriverConfig:
    """What every connection of one server shares."""

    token: str
    responder: Responder
    dialect: Dialect | None = None  # None: GA unless the client sends the beta header
    pace: float = 0.02  # seconds between ticks of a streaming response
    max_session_seconds: float | None = None  # None: 60 minutes, announced, not enforced
    connections: ConnectionRegistry = dataclasses.field(default_factory=ConnectionRegistry)


async def start_server(config: DriverConfig, host: str = "127.0.0.1", port: int = 0) -> Server:
    """Start serving ``ws://host:port/v1/realtime`` on the running loop; return the server."""

    async def handler(connection: ServerConnection) -> None:
        config.connections.add(connection)
        try:
            await _serve_connection(connection, config)
        finally:
            config.connections.discard(connection)

    return await serve(
        handler,
        host,
        port,
        process_request=_only_the_endpoint,
        max_size=MAX_FRAME_BYTES,
        server_header=SERVER_HEADER,
        # A server restarted on its fixed port binds at once, even while the connections of
        # the previous run linger in TIME_WAIT (asyncio's default on POSIX, said out loud).
        reuse_address=True,
    )


def _only_the_endpoint(connection: ServerConnection, request: Request) -> Response | None:
    if is_endpoint(request.path):
        return None
    return connection.respond(
        HTTPStatus.NOT_FOUND, f"Not found. The Realtime endpoint is {ENDPOINT}.\n"
    )


async def _serve_connection(connection: ServerConnection, config: DriverConfig) -> None:
    request = connection.request
    assert request is not None  # set once the handshake succeeded
    verdict = admit(request.path, request.headers, token=config.token, dialect=config.dialect)
    if isinstance(verdict, Rejected):
        with contextlib.suppress(ConnectionClosed):
            await connection.send(_encode(error_event(verdict.error)))
            await connection.close(verdict.close_code, verdict.error.close_reason)
        return
    state = ConnectionState(
        model=verdict.model,
        dialect=verdict.dialect,
        responder=config.responder,
        now=time.time(),
        max_session_seconds=config.max_session_seconds,
        on_responder_error=lambda exc: logger.error("responder failed", exc_info=exc),
    )
    await _Link(connection, state, config).run()


class _Link:
    """Moves frames between one websockets connection and its :class:`ConnectionState`."""

    def __init__(
        self, connection: ServerConnection, state: ConnectionState, config: DriverConfig
    ) -> None:
        self.connection = connection
        self.state = state
        self.pace = config.pace
        self.max_session_seconds = config.max_session_seconds
        self.connections = config.connections
        # Set by the receiver when the state has queued events; cleared by the pump.
        self.wake = asyncio.Event()
        # Deltas left before a scheduled drop, once this connection claimed one.
        self.drop_countdown: int | None = None
        self.pump_task: asyncio.Task[None] | None = None
        self.expiry_task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        await self.send(self.state.start())
        self.pump_task = asyncio.create_task(self.pump())
        expiry = None
        if self.max_session_seconds is not None:
            expiry = asyncio.get_running_loop().call_later(self.max_session_seconds, self._expire)
        try:
            async for message in self.connection:
                if isinstance(message, str):
                    await self.send(self.state.receive_text(message))
                else:
                    await self.send(self.state.receive_bytes(message))
                if self.state.pending:
                    self.wake.set()
        except ConnectionClosed:
            pass
        finally:
            if expiry is not None:
                expiry.cancel()
            self.pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pump_task
            if self.expiry_task is not None:
                await self.expiry_task  # the closing handshake it started ends by itself

    def _expire(self) -> None:
        self.expiry_task = asyncio.create_task(self._end_session())

    async def _end_session(self) -> None:
        """The session's maximum duration is over: stop streaming, say so, close 1001."""
        assert self.pump_task is not None
        self.pump_task.cancel()
        events, code, reason = self.state.expire()
        with contextlib.suppress(ConnectionClosed):
            await self.send(events)
            await self.connection.close(code, reason)

    async def pump(self) -> None:
        try:
            await self._pump()
        except ConnectionClosed:
            pass
        except Exception:
            logger.exception("embedded server: connection state failed")
            await self.connection.close(1011, "internal error")

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        unyielded = 0  # back-to-back ticks since the pump last let the receiver run
        while True:
            self.wake.clear()
            await self.send(self.state.process())
            if not self.state.streaming:
                if not self.state.pending:
                    await self.wake.wait()
                continue
            if loop.time() >= next_tick:
                await self.send(self.state.advance())
                next_tick = loop.time() + self.pace
            if self.state.pending:
                continue
            wait = next_tick - loop.time()
            if wait <= 0:
                # Unpaced streaming still lets the receiver in (a cancel lands within a few
                # deltas), but not after every tick: a loop turn costs as much as a delta.
                unyielded += 1
                if unyielded >= UNPACED_BURST:
                    unyielded = 0
                    await asyncio.sleep(0)
            else:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), wait)

    async def send(self, events: Iterable[Event]) -> None:
        for event in events:
            await self.connection.send(_encode(event))
            if self.drop_countdown is not None or event["type"] == "response.created":
                self._count_towards_drop(event["type"])
                if self.drop_countdown == 0:
                    await self._drop()

    def _count_towards_drop(self, event_type: str) -> None:
        if self.drop_countdown is None:
            self.drop_countdown = self.connections.claim_drop()
        elif event_type in COUNTED_DELTAS:
            self.drop_countdown -= 1

    async def _drop(self) -> None:
        """Abort the connection like a network failure once what was written is out."""
        self.drop_countdown = None
        # A zero high-water mark makes websockets' flow control wait for an empty buffer.
        self.connection.transport.set_write_buffer_limits(high=0)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.connection.drain(), DROP_FLUSH_LIMIT_S)
        self.connections.abort(self.connection)
        await self.connection.wait_closed()  # the next send raises ConnectionClosed


def _encode(event: Event) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))
