"""Tools, I/O: one MCP server, connected with the official ``mcp`` SDK on its own thread and
loop.

The SDK is async (anyio). Each server gets a daemon thread running its own asyncio loop,
so a server that hangs or floods cannot stall the Session's I/O thread, and a tool call
from a runner worker is handed to that loop with ``run_coroutine_threadsafe`` and waited
for with a timeout. Transports: stdio (a subprocess; its stderr goes to a temporary file
whose last line explains a crash) and Streamable HTTP (``url``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from ...errors import RealtimeError, scrub
from ...protocol.mcp import result_text

if TYPE_CHECKING:
    from mcp import ClientSession
    from mcp import types as mcp_types

__all__ = ["MCPConnection", "MCPServerError", "MCPToolError", "ServerSpec", "require_sdk"]

log = logging.getLogger("rt_notebook")

MISSING_SDK = (
    "MCP servers need the official mcp SDK: pip install 'rt-notebook[mcp]' (or pip install mcp)"
)


class MCPServerError(RealtimeError):
    """An MCP server could not be started, or failed (crashed, hung) during a call."""


class MCPToolError(RealtimeError):
    """An MCP tool ran and reported an error (``isError``)."""


def require_sdk() -> None:
    """Raise a one-line :class:`MCPServerError` when the ``mcp`` SDK is not installed."""
    try:
        import mcp  # noqa: F401
    except ImportError:
        raise MCPServerError(MISSING_SDK) from None
    # The SDK logs a server's bad line with a traceback; with no logging set up, Python's
    # last-resort handler would print it into the cell under our one-line error. A user's
    # own logging configuration still receives the SDK's records (they propagate).
    sdk_log = logging.getLogger("mcp")
    if not any(isinstance(h, logging.NullHandler) for h in sdk_log.handlers):
        sdk_log.addHandler(logging.NullHandler())


@dataclass(frozen=True)
class ServerSpec:
    """How to reach one MCP server: a command (stdio) or a URL (Streamable HTTP)."""

    label: str
    command: tuple[str, ...] = ()
    url: str | None = None
    # Credentials may be here: never shown (repr) and registered as secrets by the caller.
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    cwd: str | None = None

    def describe(self) -> str:
        """Where the server is, for people (no env, no headers)."""
        return scrub(self.url if self.url is not None else " ".join(self.command))


class MCPConnection:
    """One running connection to an MCP server, on its own thread and loop.

    :meth:`start` blocks until the server answered ``initialize`` and listed its tools (or
    raises a one-line :class:`MCPServerError`); :meth:`call` is safe from any thread;
    ``on_tools_changed(tools)`` is called on a short-lived thread of its own with the new
    listing whenever the server sends ``notifications/tools/list_changed``.
    """

    def __init__(
        self,
        spec: ServerSpec,
        on_tools_changed: Callable[[list[mcp_types.Tool]], None] | None = None,
    ) -> None:
        self.spec = spec
        self._on_tools_changed = on_tools_changed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: ClientSession | None = None
        self._main_task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        # Settled once: the first listing, or why the server could not start.
        self._ready: concurrent.futures.Future[list[mcp_types.Tool]] = concurrent.futures.Future()
        self._closed = threading.Event()  # the connection ended (stopped, crashed, failed)
        self._thread: threading.Thread | None = None
        self._stderr: IO[str] | None = None  # a stdio server's stderr, while it runs
        self._last_stderr = ""  # its tail, once the file is closed

    def __repr__(self) -> str:
        state = "closed" if self._closed.is_set() else "open"
        return f"<MCPConnection {self.spec.label!r} {state}>"

    @property
    def alive(self) -> bool:
        """Whether the server is connected (started and not closed since)."""
        return self._ready.done() and not self._closed.is_set()

    # Public methods, for any thread ----------------------------------------------------

    def start(self, timeout: float) -> list[mcp_types.Tool]:
        """Start the server, ``initialize`` it and list its tools, within ``timeout`` s."""
        require_sdk()
        self._thread = threading.Thread(
            target=self._run, name=f"rt_notebook-mcp-{self.spec.label}", daemon=True
        )
        self._thread.start()
        try:
            return self._ready.result(timeout)
        except concurrent.futures.TimeoutError:
            why = (
                f"MCP server {self.spec.label!r} ({self.spec.describe()}) did not answer "
                f"initialize within {timeout:g} s{self._stderr_tail()}"
            )
            self.stop()
            raise MCPServerError(why) from None
        except MCPServerError:
            self.stop()
            raise

    def call(self, name: str, arguments: Mapping[str, Any], timeout: float) -> str:
        """Call tool ``name`` and return its text; raise :class:`MCPServerError` when the
        server fails or hangs, :class:`MCPToolError` when the tool reports an error."""
        loop = self._loop
        if loop is None or not self.alive:
            raise MCPServerError(f"MCP server {self.spec.label!r} is not running")
        future = asyncio.run_coroutine_threadsafe(self._call(name, dict(arguments)), loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()  # the SDK tells the server the request is cancelled
            raise MCPServerError(
                f"MCP server {self.spec.label!r} did not answer {name} within {timeout:g} s"
            ) from None

    def stop(self, timeout: float = 5.0) -> None:
        """End the connection (a stdio server's process stops); waits at most ``timeout``."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stop.set)
                if self._main_task is not None and not self._ready.done():
                    loop.call_soon_threadsafe(self._main_task.cancel)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._closed.set()

    # Internals: the connection's own thread and loop ----------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported through _ready, never lost
            self._fail(f"failed: {type(exc).__name__}: {exc}")
        finally:
            self._fail("stopped before it was ready")
            self._last_stderr = self._stderr_tail()
            if self._stderr is not None:
                self._stderr.close()
            self._closed.set()

    async def _main(self) -> None:
        from mcp import ClientSession

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._main_task = asyncio.current_task()
        try:
            async with self._transport() as (read, write):
                session = ClientSession(read, write, message_handler=self._on_message)
                async with session:
                    await session.initialize()
                    tools = await self._list(session)
                    self._session = session
                    if not self._ready.done():
                        self._ready.set_result(tools)
                    await self._stop.wait()
        except asyncio.CancelledError:
            self._fail("was stopped while starting")
        except Exception as exc:
            self._fail(f"failed: {_describe(exc)}")

    @contextlib.asynccontextmanager
    async def _transport(self) -> AsyncIterator[tuple[Any, Any]]:
        if self.spec.url is not None:
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            client = create_mcp_http_client(headers=dict(self.spec.headers) or None)
            async with client, streamable_http_client(self.spec.url, http_client=client) as streams:
                yield streams[0], streams[1]
            return
        from mcp.client.stdio import StdioServerParameters, stdio_client

        command, *args = self.spec.command
        parameters = StdioServerParameters(
            command=command, args=args, env=dict(self.spec.env) or None, cwd=self.spec.cwd
        )
        # Closed by _run when the connection ends (its last line kept for messages).
        self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        async with stdio_client(parameters, errlog=self._stderr) as streams:
            yield streams[0], streams[1]

    async def _list(self, session: ClientSession) -> list[mcp_types.Tool]:
        from mcp import types

        tools: list[types.Tool] = []
        cursor: str | None = None
        while True:
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            tools += page.tools
            cursor = page.next_cursor
            if not cursor or len(tools) > 10_000:
                return tools

    async def _on_message(self, message: Any) -> None:
        from mcp import types

        if isinstance(message, Exception):
            # A line that is not JSON-RPC: before initialize answers, the server is not MCP.
            self._fail(f"sent something that is not MCP JSON-RPC: {_offending_line(message)}")
            if self._stop is not None and self._session is None:
                self._stop.set()
                if self._main_task is not None:
                    self._main_task.cancel()
            return
        if isinstance(message, types.ToolListChangedNotification) and self._session is not None:
            asyncio.get_running_loop().create_task(self._relist(self._session))

    async def _relist(self, session: ClientSession) -> None:
        try:
            tools = await self._list(session)
        except Exception as exc:
            log.warning(
                "rt_notebook: MCP server %r: listing tools failed: %s", self.spec.label, exc
            )
            return
        if self._on_tools_changed is not None:
            # On a thread of its own: re-registering sends session.update, which waits.
            threading.Thread(
                target=self._on_tools_changed,
                args=(tools,),
                name=f"rt_notebook-mcp-{self.spec.label}-tools",
                daemon=True,
            ).start()

    async def _call(self, name: str, arguments: dict[str, Any]) -> str:
        from mcp import types
        from mcp.shared.exceptions import MCPError

        session = self._session
        if session is None:
            raise MCPServerError(f"MCP server {self.spec.label!r} is not running")
        try:
            result = await session.call_tool(name, arguments)
        except MCPError as exc:
            if exc.error.code == types.CONNECTION_CLOSED:
                self._closed.set()
                if self._stop is not None:
                    self._stop.set()
                raise MCPServerError(
                    f"MCP server {self.spec.label!r} stopped (its connection closed); it "
                    f"starts again on the next call{self._stderr_tail()}"
                ) from None
            raise MCPToolError(scrub(f"MCP error {exc.error.code}: {exc.error.message}")) from None
        except Exception as exc:
            raise MCPServerError(
                f"MCP server {self.spec.label!r} failed during the call: {_describe(exc)}"
            ) from None
        if not isinstance(result, types.CallToolResult):
            raise MCPToolError(f"{name} did not return a tool result")
        text = result_text(result.content, result.structured_content)
        if result.is_error:
            raise MCPToolError(text or f"{name} failed")
        return text

    def _fail(self, why: str) -> None:
        if not self._ready.done():
            with contextlib.suppress(concurrent.futures.InvalidStateError):
                self._ready.set_exception(
                    MCPServerError(
                        f"MCP server {self.spec.label!r} ({self.spec.describe()}) {why}"
                        f"{self._stderr_tail()}"
                    )
                )

    def _stderr_tail(self) -> str:
        """The last line the server wrote to stderr, as ``: …`` (or nothing)."""
        stream = self._stderr
        if stream is None or stream.closed:
            return self._last_stderr
        try:
            stream.flush()
            stream.seek(0)
            lines = [line.strip() for line in stream.read()[-4000:].splitlines() if line.strip()]
        except (OSError, ValueError):
            return ""
        return f"; its last stderr line: {scrub(lines[-1])[:200]}" if lines else ""


def _offending_line(exc: Exception) -> str:
    """The line a server sent that failed to parse (pydantic keeps it), quoted and cut."""
    errors = getattr(exc, "errors", None)
    try:
        line = errors()[0].get("input") if callable(errors) else None
    except Exception:
        line = None
    text = line if isinstance(line, str) else str(exc).split("\n", 1)[0]
    return repr(scrub(text)[:120])


def _describe(exc: BaseException) -> str:
    inner = getattr(exc, "exceptions", None)  # an anyio task group's ExceptionGroup
    if inner:
        return _describe(inner[0])
    return scrub(f"{type(exc).__name__}: {exc}")[:300]
