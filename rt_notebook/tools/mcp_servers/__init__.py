"""MCP servers of a Session (public API): local servers' tools, remote servers the service runs.

* :mod:`.naming` (pure): the rule that names an MCP tool as a Realtime function.
* :mod:`.connection` (I/O): one server, connected with the official ``mcp`` SDK on its own
  thread and loop (stdio or Streamable HTTP).
* :mod:`.servers`: a Session's servers (``session.mcp``), their tools registered on its
  Toolbox.
* :mod:`.remote` (pure): a remote server the service runs, as the session's ``mcp`` tool.

The ``mcp`` SDK is optional (``pip install 'rt-notebook[mcp]'``) and imported on first use.
"""

from .connection import MCPConnection, MCPServerError, MCPToolError, ServerSpec
from .naming import exposed_name
from .remote import RemoteMCPServer
from .servers import MCPServer, MCPServers, MCPTool, mcp_servers

__all__ = [
    "MCPConnection",
    "MCPServer",
    "MCPServerError",
    "MCPServers",
    "MCPTool",
    "MCPToolError",
    "RemoteMCPServer",
    "ServerSpec",
    "exposed_name",
    "mcp_servers",
]
