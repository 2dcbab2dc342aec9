"""Local MCP servers through the kernel (public API): their tools as function tools.

* :mod:`.naming` (pure): the rule that names an MCP tool as a Realtime function.
* :mod:`.connection` (I/O): one server, connected with the official ``mcp`` SDK on its own
  thread and loop (stdio or Streamable HTTP).
* :mod:`.servers`: a Session's servers (``session.mcp``), their tools registered on its
  Toolbox.

The ``mcp`` SDK is optional (``pip install 'rt-notebook[mcp]'``) and imported on first use.
"""

from .connection import MCPConnection, MCPServerError, MCPToolError, ServerSpec
from .naming import exposed_name
from .servers import MCPServer, MCPServers, MCPTool

__all__ = [
    "MCPConnection",
    "MCPServer",
    "MCPServerError",
    "MCPServers",
    "MCPTool",
    "MCPToolError",
    "ServerSpec",
    "exposed_name",
]
