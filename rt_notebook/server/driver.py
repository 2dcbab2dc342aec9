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
permessage-deflate when the server is configured for it, and closing handshakes.
Compression is off by default: on loopback it only costs CPU at both ends (deflating a delta
frame costs as much as building it), and a client that offers it simply goes on without.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from http import HTTPStatus

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from rt_notebook.protocol.events import Dialect, Event
from rt_notebook.server.admission import ENDPOINT, Rejected, admit, is_endpoint
from rt_notebook.server.connections import ConnectionRegistry
from rt_notebook.server.errors import error_event, server_error
from rt_notebook.server.live import LiveError, LiveResponder, live_failure
from rt_notebook.server.remote_mcp import ListTools, McpRequest
from rt_notebook.server.responders import Responder
from rt_notebook.server.shapes import EncodedEvent
from rt_notebook.server.state import ConnectionState

__all__ = ["DriverConfig", "start_server"]

logger = logging.getLogger("rt_notebook.server")

# input_audio_buffer.append may carry 15 MiB of base64 audio.
MAX_FRAME_BYTES = 20 * 1024 * 1024
SERVER_HEADER = "rt-notebook-offline-realtime"
# Characters of client frames the receiver takes before the pump has applied them; past
# this the receiver waits (websockets stops reading, TCP pushes back on the client).
MAX_UNAPPLIED_CHARS = 32 * 1024 * 1024
# Failures of the pump (a bug met by some client event) answered before the connection closes.
PUMP_FAILURES_LIMIT = 8
UNPACED_BURST = 16  # with pace 0, ticks written at once between two yields to the event loop
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
    responder: Responder | LiveResponder
    dialect: Dialect | None = Dialect.GA  # None: GA unless the client sends the beta header
    pace: float = 0.02  # seconds between ticks of a streaming response
    max_session_seconds: float | None = None  # None: 60 minutes, announced, not enforced
    compression: bool = False  # accept permessage-deflate when a client offers it
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
        compression="deflate" if config.compression else None,
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
        # Characters of client frames queued since the pump last applied the queue, and
        # the event the pump sets when it has (see run: a client that sends faster than
        # the pump applies, e.g. one that does not read, is not read either).
        self.unapplied = 0
        self.applied = asyncio.Event()
        # Deltas left before a scheduled drop, once this connection claimed one.
        self.drop_countdown: int | None = None
        self.pump_task: asyncio.Task[None] | None = None
        self.expiry_task: asyncio.Task[None] | None = None
        # Backend streams of live responses, by response id (see _sync_live).
        self.live_tasks: dict[str, asyncio.Task[None]] = {}
        # MCP listings and calls under way (see _sync_mcp).
        self.mcp_tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        await self.send(self.state.start())
        self.pump_task = asyncio.create_task(self.pump())
        expiry = None
        if self.max_session_seconds is not None:
            expiry = asyncio.get_running_loop().call_later(self.max_session_seconds, self._expire)
        try:
            async for message in self.connection:
                if self.connections.ignores(message):
                    continue  # a fault a test armed: the client's event goes unanswered
                await self.send(self._receive(message))
                if self.state.pending:
                    self.unapplied += len(message)
                    self.wake.set()
                if self.unapplied > MAX_UNAPPLIED_CHARS:
                    await self._wait_for_pump()
        except ConnectionClosed:
            pass
        finally:
            if expiry is not None:
                expiry.cancel()
            self.pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pump_task
            for task in [*self.live_tasks.values(), *self.mcp_tasks]:
                task.cancel()  # the client is gone: stop asking the backend
            if self.expiry_task is not None:
                await self.expiry_task  # the closing handshake it started ends by itself

    async def _wait_for_pump(self) -> None:
        """Until the pump has applied the queue, or has ended (cancelled, failed)."""
        assert self.pump_task is not None
        if self.pump_task.done():
            return
        self.applied.clear()
        applied = asyncio.ensure_future(self.applied.wait())
        try:
            await asyncio.wait({applied, self.pump_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            applied.cancel()

    def _receive(self, message: str | bytes) -> list[Event]:
        """The state's answer to one frame; a failure is answered, not fatal."""
        try:
            if isinstance(message, str):
                return self.state.receive_text(message)
            return self.state.receive_bytes(message)
        except Exception:
            logger.exception("embedded server: a client frame failed")
            return [error_event(server_error())]

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
        """Run :meth:`_pump`; a failure is answered with an ``error`` and the pump goes on
        (the failing event was taken off the queue), up to :data:`PUMP_FAILURES_LIMIT`
        failures on one connection: then its state is broken, and it closes with 1011."""
        failures = 0
        while True:
            try:
                await self._pump()
            except ConnectionClosed:
                return
            except Exception:
                logger.exception("embedded server: connection state failed")
                failures += 1
                if failures >= PUMP_FAILURES_LIMIT:
                    await self.connection.close(1011, "internal error")
                    return
                try:
                    await self.send([error_event(server_error())])
                except ConnectionClosed:
                    return

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        live = self.state.live
        while True:
            self.wake.clear()
            out = self.state.process()
            self.unapplied = 0
            self.applied.set()
            if live:
                self._sync_live()
            self._sync_mcp()
            # Waiting: every response waits for its live backend or an MCP server.
            if not self.state.streaming or self.state.waiting:
                await self.send(out)
                if not self.state.pending:
                    await self.wake.wait()
                continue
            if not self.pace:
                # Unpaced: a burst of ticks goes out in one write, then the receiver gets in
                # (a cancel lands within a burst; a loop turn costs as much as a delta).
                for _ in range(UNPACED_BURST):
                    out += self.state.advance()
                    state = self.state  # (advance() may have made every response wait)
                    if state.pending or not state.streaming or state.waiting:
                        break
                self._sync_mcp()
                await self.send(out)
                await asyncio.sleep(0)
                continue
            if loop.time() >= next_tick:
                out += self.state.advance()
                next_tick = loop.time() + self.pace
            self._sync_mcp()
            await self.send(out)
            if self.state.pending:
                continue
            wait = next_tick - loop.time()
            if wait > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), wait)

    def _sync_live(self) -> None:
        """Start the backend streams of new live responses; abort those of ended ones.

        Runs right after each ``process()``, so a ``response.cancel`` closes the backend's
        HTTP stream at once.
        """
        for response_id, prepared in self.state.take_live_starts():
            self.live_tasks[response_id] = asyncio.create_task(
                self._run_live(response_id, prepared)
            )
        if self.live_tasks:
            active = self.state.active_response_ids
            for response_id in [rid for rid in self.live_tasks if rid not in active]:
                self.live_tasks.pop(response_id).cancel()  # no-op when it had finished

    def _sync_mcp(self) -> None:
        """Make the MCP listings and calls the state asked for, each a task of its own."""
        for request in self.state.take_mcp_requests():
            task = asyncio.create_task(self._run_mcp(request))
            self.mcp_tasks.add(task)
            task.add_done_callback(self.mcp_tasks.discard)

    async def _run_mcp(self, request: McpRequest) -> None:
        """One listing or call (rt_notebook.server.mcp_client); the answer wakes the pump."""
        from rt_notebook.server import mcp_client

        if isinstance(request, ListTools):
            try:
                tools: list[Event] | None = await mcp_client.list_tools(
                    request.url, request.headers
                )
            except mcp_client.McpUnavailableError as exc:
                logger.warning("embedded server: listing MCP tools failed: %s", exc)
                tools = None
            self.state.mcp_listed(request.item_id, tools)
        else:
            outcome = await mcp_client.call_tool(
                request.url, request.headers, request.name, request.arguments
            )
            self.state.mcp_called(request.response_id, request.item_id, outcome)
        self.wake.set()

    async def _run_live(self, response_id: str, prepared: object) -> None:
        responder = self.state.responder
        assert isinstance(responder, LiveResponder)
        try:
            async for updates in responder.stream(prepared):
                self.state.feed(response_id, updates)
                self.wake.set()
        except LiveError as exc:
            self.state.fail(response_id, exc.info)
        except Exception as exc:  # a backend bug must not kill the connection
            logger.exception("live responder failed")
            self.state.fail(response_id, live_failure(exc))
        self.wake.set()

    async def send(self, events: list[Event]) -> None:
        """Send ``events`` in one write (a scheduled drop may cut them short)."""
        if not events:
            return
        if self.drop_countdown is None and not any(
            event["type"] == "response.created" for event in events
        ):
            await self._write(events)
            return
        cut = self._drop_point(events)
        if cut is None:
            await self._write(events)
            return
        await self._write(events[:cut])
        await self._drop()

    async def _write(self, events: list[Event]) -> None:
        connection = self.connection
        if len(events) == 1 or not _BATCHED_WRITES:
            for event in events:
                await connection.send(_encode(event))
            return
        # websockets frames each message (and compresses it if the client asked for
        # permessage-deflate); the frames of the batch then leave in one transport write
        # instead of one system call each. send_context() checks the state, then drains.
        async with connection.send_context():
            protocol = connection.protocol
            for event in events:
                protocol.send_text(_encode(event).encode())
            connection.transport.write(b"".join(protocol.data_to_send()))

    def _drop_point(self, events: list[Event]) -> int | None:
        """How many of ``events`` go out before a scheduled drop, if it falls among them."""
        for index, event in enumerate(events):
            self._count_towards_drop(event["type"])
            if self.drop_countdown == 0:
                return index + 1
        return None

    def _count_towards_drop(self, event_type: str) -> None:
        if self.drop_countdown is None:
            if event_type == "response.created":
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
    if type(event) is EncodedEvent:
        return event.text  # built from a template (streamed deltas)
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


# Batched writes use websockets' documented-in-source send_context(), protocol and transport;
# without them (another websockets version) each frame is sent on its own.
_BATCHED_WRITES = all(
    hasattr(ServerConnection, name) for name in ("send_context", "send_data", "drain")
)
