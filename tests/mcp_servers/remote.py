"""A real remote MCP server for the tests: the ``mcp`` SDK's server API over Streamable HTTP.

``python remote.py PORT`` serves on 127.0.0.1:PORT/mcp. The embedded Realtime server
reaches it as the service would reach a remote MCP server (``{"type": "mcp",
"server_url": ...}``). Its tools cover what the server must survive: a plain tool, one that
checks a secret header (and never repeats it), one that never answers, one that kills its
own process mid-call, hostile output, a hostile name, and an input schema that is invalid.
"""

from __future__ import annotations

import os
import sys
import time

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("remote-demo")
# The header value the ``secret`` tool expects (the tests pass it as a session tool header).
EXPECTED = os.environ.get("REMOTE_DEMO_SECRET", "")


@server.tool()
def add(a: int, b: int) -> str:
    """Add two integers."""
    return f"sum is {a + b}"


@server.tool()
def secret(ctx: Context) -> str:
    """Say whether the request carried the expected X-Token header (never its value)."""
    given = (ctx.headers or {}).get("x-token", "")
    return "header ok" if EXPECTED and given == EXPECTED else "header missing"


@server.tool()
def hang() -> str:
    """Never answer (within any test's patience)."""
    time.sleep(3600)
    return "woke"


@server.tool()
def crash() -> str:
    """Kill the server process mid-call."""
    os._exit(3)


@server.tool()
def hostile() -> str:
    """Answer with markup that must never become HTML."""
    return '<img src=x onerror="alert(1)"><script>alert(2)</script> **bold**'


def _named() -> str:
    """A tool whose name is markup."""
    return "named ran"


def _broken(x: int) -> str:
    """A tool whose input schema is invalid."""
    return "broken ran"


server.add_tool(_named, name='<b onmouseover="alert(3)">x</b>')
server.add_tool(_broken, name="broken")
server._tool_manager.get_tool("broken").parameters = {
    "type": "object",
    "properties": {"x": {"type": "nonsense"}},
}

if __name__ == "__main__":
    server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
