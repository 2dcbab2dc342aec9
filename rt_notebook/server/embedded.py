"""Background-thread runner of the embedded server: its own thread, its own asyncio loop.

:class:`EmbeddedServer` is what notebooks, tutorials and tests use. It starts the
:mod:`~rt_notebook.server.driver` on a daemon thread with a fresh event loop, so it works
from a Jupyter cell (whose loop is already running) and from plain scripts alike::

    with EmbeddedServer() as server:  # GA, like the service
        client = AsyncOpenAI(
            api_key=server.token,
            base_url=server.base_url,
            websocket_base_url=server.websocket_base_url,  # beta clients need it
        )
        async with client.realtime.connect(model="gpt-realtime-2.1") as connection:
            ...
    with EmbeddedServer(dialect="beta") as server:  # for old beta clients only
        ...  # client.beta.realtime.connect(model="gpt-4o-realtime-preview")

Like the service, a GA server (the default) refuses beta clients (the ``OpenAI-Beta:
realtime=v1`` header): an ``error`` with code ``beta_api_shape_disabled``, then close 4000.

(The SDK's beta client turns ``http://`` base URLs into ``wss://``; ``websocket_base_url``
keeps it on ``ws://``.) The token is random per instance unless given, and never appears
in ``repr()``.

For tests of reconnection: ``max_session_seconds`` ends every session as the service does
after 60 minutes; :meth:`EmbeddedServer.drop_connections` and
:meth:`EmbeddedServer.schedule_drop` break connections like a network failure;
:attr:`EmbeddedServer.connections_opened` and :attr:`EmbeddedServer.open_connections`
count websockets.
"""

from __future__ import annotations

import asyncio
import os
import threading
from types import TracebackType

from rt_notebook.protocol.events import Dialect
from rt_notebook.server.admission import ENDPOINT, is_loopback, new_token
from rt_notebook.server.connections import ConnectionRegistry
from rt_notebook.server.driver import DriverConfig, start_server
from rt_notebook.server.live import LiveResponder
from rt_notebook.server.responders import Responder, echo_words_for, make_responder

__all__ = ["EmbeddedServer", "parse_dialect"]

_START_TIMEOUT_S = 30.0


def parse_dialect(dialect: Dialect | str | None) -> Dialect | None:
    """``"ga"`` or ``"beta"`` gives that dialect; ``None`` or ``"auto"`` gives ``None``
    (GA, or beta for clients that ask for it)."""
    if dialect is None or isinstance(dialect, Dialect):
        return dialect
    if dialect == "auto":
        return None
    try:
        return Dialect(dialect)
    except ValueError:
        raise ValueError(f"dialect must be 'ga', 'beta', 'auto' or None, not {dialect!r}") from None


class EmbeddedServer:
    """An offline Realtime-protocol server on loopback, run in a background thread.

    ``port=0`` picks a free port (read :attr:`port` or :attr:`url` after :meth:`start`).
    ``responder`` is ``"echo"``, ``"scripted"`` (with ``script=`` a JSON script path) or a
    :class:`~rt_notebook.server.responders.Responder`, or a live backend such as
    :class:`~rt_notebook.server.chat_backend.ChatResponder` (a local model). ``dialect`` is
    ``"ga"`` (the default: like the service, beta clients are refused), ``"beta"`` (for old
    beta clients and Azure deployments that still speak it) or ``"auto"`` (GA, or beta for
    clients that send ``OpenAI-Beta: realtime=v1``; ``None`` too). ``pace`` is the pause
    between streamed deltas in seconds (0 streams as fast as possible).
    ``max_session_seconds`` ends each connection that long after it opened, as the service
    does after 60 minutes: an ``error`` with code ``session_expired``, then close 1001
    (``None``: no limit is enforced; ``session.created`` announces 60 minutes either way).
    ``compression`` accepts permessage-deflate when a client offers it (off: on loopback it
    only costs CPU at both ends).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        responder: str | Responder | LiveResponder = "echo",
        dialect: Dialect | str | None = Dialect.GA,
        pace: float = 0.02,
        script: str | os.PathLike[str] | None = None,
        max_session_seconds: float | None = None,
        compression: bool = False,
    ) -> None:
        if pace < 0:
            raise ValueError(f"pace must be >= 0 seconds, not {pace}")
        if max_session_seconds is not None and not max_session_seconds > 0:
            raise ValueError(f"max_session_seconds must be > 0, not {max_session_seconds}")
        if not is_loopback(host) and not token:
            raise ValueError(
                f"host {host!r} serves beyond this machine: choose a token (token=...)"
            )
        self.host = host
        self.token = token or new_token()
        # An echo streams for two minutes at most at this pace (no limit at pace 0).
        self.responder: Responder | LiveResponder = (
            responder
            if isinstance(responder, LiveResponder)
            else make_responder(responder, script, echo_max_words=echo_words_for(pace))
        )
        self.dialect = parse_dialect(dialect)
        self.pace = pace
        self.max_session_seconds = max_session_seconds
        self.compression = compression
        self._connections = ConnectionRegistry()
        self._requested_port = port
        # Set while running: the actual port, the server's loop and its stop signal.
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    # Lifecycle

    def start(self) -> EmbeddedServer:
        """Start serving; return ``self`` once the port is bound. Raises if already running."""
        if self._thread is not None:
            raise RuntimeError("EmbeddedServer is already running")
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, name="rt-notebook-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            raise RuntimeError("EmbeddedServer did not start in time")
        error = self._take_startup_error()
        if error is not None:
            self._thread.join()
            self._thread = None
            raise error
        return self

    def _take_startup_error(self) -> BaseException | None:
        # A method, not an attribute read: the thread sets it after start() reset it.
        error, self._startup_error = self._startup_error, None
        return error

    def stop(self, timeout: float = 10.0) -> None:
        """Close every connection (code 1001) and stop the thread. Safe to call twice."""
        thread, loop, stop_requested = self._thread, self._loop, self._stop_requested
        if thread is None:
            return
        if loop is not None and stop_requested is not None:
            loop.call_soon_threadsafe(stop_requested.set)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError("EmbeddedServer did not stop in time")
        self._thread = self._loop = self._stop_requested = None
        self._port = None

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # Faults and counts for tests of reconnection (any thread)

    def drop_connections(self) -> int:
        """Abort every open connection now, like a network drop (no close frame).

        Returns how many were open. They count as closed when this returns.
        """
        loop = self._loop
        if loop is None:
            return 0
        if threading.current_thread() is self._thread:
            return self._connections.abort_all()

        async def abort_all() -> int:
            return self._connections.abort_all()

        return asyncio.run_coroutine_threadsafe(abort_all(), loop).result(_START_TIMEOUT_S)

    def schedule_drop(self, after_deltas: int) -> None:
        """Abort the connection of the next response that starts once it sent this many deltas.

        Deltas are text, transcript and function-argument deltas; with 0 the connection
        drops right after ``response.created``. The frames written before are flushed
        first, so the client receives exactly that many deltas. One drop per call; if that
        response ends with fewer deltas, the count goes on into the connection's next one.
        """
        self._connections.schedule_drop(after_deltas)

    def ignore_client_events(self, *types: str) -> None:
        """Leave client events of these types unanswered on every connection, like a
        server that stalls (``"*"``: all of them, e.g. the restore after a reconnect;
        ``"response.cancel"``: a cancel never confirmed). No argument: answer again.
        ``session.created`` still greets each new connection."""
        self._connections.ignore_client_events(frozenset(types))

    @property
    def connections_opened(self) -> int:
        """WebSocket connections accepted since this server was created."""
        return self._connections.opened

    @property
    def open_connections(self) -> int:
        """WebSocket connections open now."""
        return self._connections.open

    # Addresses

    @property
    def running(self) -> bool:
        return self._port is not None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("EmbeddedServer is not running; call start() or use `with`")
        return self._port

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT/v1/realtime`` (add ``?model=...`` to connect by hand)."""
        return f"ws://{self._netloc}{ENDPOINT}"

    @property
    def websocket_base_url(self) -> str:
        """``ws://127.0.0.1:PORT/v1``: ``AsyncOpenAI(websocket_base_url=...)``."""
        return f"ws://{self._netloc}/v1"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: ``AsyncOpenAI(base_url=..., api_key=server.token)``."""
        return f"http://{self._netloc}/v1"

    @property
    def _netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __repr__(self) -> str:
        where = self.url if self.running else "not running"
        dialect = self.dialect.value if self.dialect is not None else "auto"
        return (
            f"EmbeddedServer({where}, responder={self.responder.name!r}, "
            f"dialect={dialect!r}, pace={self.pace})"
        )

    # The server thread

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        config = DriverConfig(
            token=self.token,
            responder=self.responder,
            dialect=self.dialect,
            pace=self.pace,
            max_session_seconds=self.max_session_seconds,
            compression=self.compression,
            connections=self._connections,
        )
        try:
            server = await start_server(config, self.host, self._requested_port)
        except BaseException as exc:  # reported to start()'s caller, not lost in the thread
            self._startup_error = exc
            self._ready.set()
            return
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        self._port = int(next(iter(server.sockets)).getsockname()[1])
        self._ready.set()
        try:
            await self._stop_requested.wait()
        finally:
            server.close()
            await server.wait_closed()
