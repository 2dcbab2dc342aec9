""":mod:`asyncio` MCP client of the embedded server (I/O): lists and calls MCP tools.

The connection state (:mod:`rt_notebook.server.remote_mcp`, sans-I/O) asks for a listing or
a call; the driver runs these coroutines and hands the answer back. Each request opens its
own Streamable HTTP session with the official ``mcp`` SDK (``rt-notebook[mcp]``), within
:data:`MCP_TIMEOUT` seconds. Only loopback URLs are reached: the embedded server runs
offline, so a remote server on the network is refused, not connected to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from rt_notebook.protocol.events import Event
from rt_notebook.redaction import scrub
from rt_notebook.server.remote_mcp import McpOutcome

__all__ = ["MCP_TIMEOUT", "McpUnavailableError", "call_tool", "list_tools", "loopback_problem"]

# Seconds a listing or a call may take (initialize included).
MCP_TIMEOUT = 30.0


class McpUnavailableError(Exception):
    """A listing or call could not be made (the reason is safe to show)."""


def loopback_problem(url: str) -> str | None:
    """Why ``url`` may not be reached offline, or ``None`` for a loopback URL."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https"):
        return f"the embedded server reaches http(s) MCP servers only, not {parts.scheme!r}"
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return f"the embedded server reaches loopback MCP servers only (127.0.0.1), not {host!r}"


async def list_tools(url: str, headers: Mapping[str, str]) -> list[Event]:
    """The server's tools as the ``mcp_list_tools`` item lists them (name, description,
    input_schema, annotations); raises :class:`McpUnavailableError`."""

    async def listing(session: Any) -> list[Event]:
        tools: list[Event] = []
        cursor: str | None = None
        from mcp import types

        while True:
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            for tool in page.tools:
                entry: Event = {
                    "name": tool.name,
                    "input_schema": tool.input_schema,
                    "description": tool.description,
                }
                if tool.annotations is not None:
                    entry["annotations"] = tool.annotations.model_dump(exclude_none=True)
                tools.append(entry)
            cursor = page.next_cursor
            if not cursor or len(tools) > 1000:
                return tools

    tools: list[Event] = await _with_session(url, headers, listing)
    return tools


async def call_tool(
    url: str, headers: Mapping[str, str], name: str, arguments: Mapping[str, Any]
) -> McpOutcome:
    """Call tool ``name``: its output, or the ``mcp_call`` error that says what failed."""
    from mcp.shared.exceptions import MCPError

    from ..protocol.mcp import result_text

    async def calling(session: Any) -> McpOutcome:
        result = await session.call_tool(name, dict(arguments))
        text = result_text(result.content, result.structured_content)
        if result.is_error:
            return McpOutcome(error={"type": "tool_execution_error", "message": text[:2000]})
        return McpOutcome(output=text)

    try:
        outcome: McpOutcome = await _with_session(url, headers, calling)
    except McpUnavailableError as exc:
        cause = exc.__cause__
        if isinstance(cause, MCPError):
            code = int(getattr(cause.error, "code", -32603))
            return McpOutcome(error={"type": "protocol_error", "code": code, "message": str(exc)})
        return McpOutcome(error={"type": "http_error", "code": 502, "message": str(exc)})
    return outcome


async def _with_session(url: str, headers: Mapping[str, str], work: Any) -> Any:
    problem = loopback_problem(url)
    if problem is not None:
        raise McpUnavailableError(problem)
    try:
        from mcp import ClientSession
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client
    except ImportError:
        raise McpUnavailableError(
            "remote MCP servers need the mcp SDK: pip install 'rt-notebook[mcp]'"
        ) from None

    async def run() -> Any:
        client = create_mcp_http_client(headers=dict(headers) or None)
        async with (
            client,
            streamable_http_client(url, http_client=client) as streams,
            ClientSession(streams[0], streams[1]) as session,
        ):
            await session.initialize()
            return await work(session)

    try:
        return await asyncio.wait_for(run(), MCP_TIMEOUT)
    except TimeoutError:
        raise McpUnavailableError(
            f"the MCP server did not answer within {MCP_TIMEOUT:g} s"
        ) from None
    except Exception as exc:
        raise McpUnavailableError(_describe(exc)) from _innermost(exc)


def _innermost(exc: BaseException) -> BaseException:
    inner = getattr(exc, "exceptions", None)  # an anyio task group's ExceptionGroup
    return _innermost(inner[0]) if inner else exc


def _describe(exc: BaseException) -> str:
    found = _innermost(exc)
    text = scrub(f"{type(found).__name__}: {found}")[:300]
    return json.dumps(text)[1:-1] if "\n" in text else text
