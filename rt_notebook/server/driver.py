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
from rt_notebook.server.errors import error_event
from rt_notebook.server.responders import Responder
from rt_notebook.server.state import ConnectionState

__all__ = ["DriverConfig", "start_server"]

logger = logging.getLogger("rt_notebook.server")

# input_audio_buffer.append may carry 15 MiB of base64 audio.
MAX_FRAME_BYTES = 20 * 1024 * 1024
SERVER_HEADER = "rt-notebook-offline-realtime"
UNPACED_BURST = 8  # with pace 0, ticks between two yields to the event loop


@dataclasses.dataclass(frozen=True)
class DriverConfig:
    """What every connection of one server shares."""

    token: str
    responder: Responder
    dialect: Dialect | None = None  # None: GA unless the client sends the beta header
    pace: float = 0.02  # seconds between ticks of a streaming response


async def start_server(config: DriverConfig, host: str = "127.0.0.1", port: int = 0) -> Server:
    """Start serving ``ws://host:port/v1/realtime`` on the running loop; return the server."""

    async def handler(connection: ServerConnection) -> None:
        await _serve_connection(connection, config)

    return await serve(
        handler,
        host,
        port,
        process_request=_only_the_endpoint,
        max_size=MAX_FRAME_BYTES,
        server_header=SERVER_HEADER,
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
        on_responder_error=lambda exc: logger.error("responder failed", exc_info=exc),
    )
    await _Link(connection, state, config.pace).run()


class _Link:
    """Moves frames between one websockets connection and its :class:`ConnectionState`."""

    def __init__(self, connection: ServerConnection, state: ConnectionState, pace: float) -> None:
        self.connection = connection
        self.state = state
        self.pace = pace
        # Set by the receiver when the state has queued events; cleared by the pump.
        self.wake = asyncio.Event()

    async def run(self) -> None:
        await self.send(self.state.start())
        pump = asyncio.create_task(self.pump())
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
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

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


def _encode(event: Event) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))
