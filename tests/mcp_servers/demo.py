"""A real MCP server for the tests, written with the ``mcp`` SDK's server API (MCPServer).

Run over stdio (``python demo.py``) or Streamable HTTP on loopback
(``python demo.py --http PORT``). Its tools cover what the client must survive: a plain
tool, a slow one, one that kills its own process mid-call, hostile text, and one that
adds a tool and tells the client its list changed. ``--hostile`` adds a tool with a
hostile name and one whose input schema is invalid; ``--garbage`` prints a line that is
not JSON-RPC before serving; ``--mute`` never answers (it reads and drops stdin).
"""

from __future__ import annotations

import os
import sys
import time

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("demo")


@server.tool()
def add(a: int, b: int) -> str:
    """Add two integers."""
    return f"sum is {a + b}"


@server.tool()
def slow(seconds: float) -> str:
    """Sleep, then answer."""
    time.sleep(seconds)
    return f"slept {seconds}"


@server.tool()
def crash() -> str:
    """Kill the server process mid-call."""
    os._exit(3)


@server.tool()
def hostile() -> str:
    """Answer with markup that must never become HTML."""
    return '<img src=x onerror="alert(1)"><script>alert(2)</script> **bold**'


@server.tool()
async def grow(ctx: Context) -> str:
    """Add a tool named extra and say the list changed."""

    def extra() -> str:
        """A tool added at run time."""
        return "extra here"

    server.add_tool(extra)
    await ctx.session.send_tool_list_changed()
    return "grown"


def _hostile_tools() -> None:
    def named() -> str:
        """A tool whose name is markup."""
        return "named ran"

    def broken(x: int) -> str:
        """A tool whose input schema is invalid."""
        return "broken ran"

    server.add_tool(named, name='<img src=x onerror="alert(1)">')
    server.add_tool(broken)
    server.add_tool(named, name="z__add")  # offered as h__z__add, as is add of "h__z"
    # An input schema that is not a valid JSON schema: "nonsense" is no JSON type.
    server._tool_manager.get_tool("broken").parameters = {
        "type": "object",
        "properties": {"x": {"type": "nonsense"}},
    }


if __name__ == "__main__":
    if "--hostile" in sys.argv:
        _hostile_tools()
    if "--garbage" in sys.argv:
        sys.stdout.write("this is not JSON-RPC <b>at all</b>\n")
        sys.stdout.flush()
    if "--mute" in sys.argv:
        # A server that prints its credentials: the client must not repeat them.
        token = os.environ.get("DEMO_TOKEN", "")
        sys.stderr.write(f"mute server: reading and never answering (token {token})\n")
        sys.stderr.flush()
        for _line in sys.stdin:
            pass
    elif len(sys.argv) > 2 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
