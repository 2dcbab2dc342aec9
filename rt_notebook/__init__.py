"""rt_notebook package: OpenAI Realtime conversations in Jupyter.

``%load_ext rt_notebook`` adds the ``%%realtime`` / ``%realtime`` magics;
:func:`connect` returns the kernel's :class:`Session` for use from plain Python.
Importing the package is cheap: the heavy parts load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .client import result_views, tool_host
from .errors import ConfigurationError, RealtimeConnectionError, RealtimeError, ServerError

if TYPE_CHECKING:
    from .client.registry import connect
    from .client.responses import ItemSnapshot, ResponseHandle, ResponseResult, SessionStatus
    from .client.session import Session
    from .frontends.chat import ChatPanel
    from .protocol.turns import Timing
    from .tools import Tool, tool
    from .tools.mcp_servers import MCPServers
    from .tools.runner import Toolbox

__version__ = "0.1.0"

__all__ = [
    "ChatPanel",
    "ConfigurationError",
    "ItemSnapshot",
    "RealtimeConnectionError",
    "RealtimeError",
    "ResponseHandle",
    "ResponseResult",
    "ServerError",
    "Session",
    "SessionStatus",
    "Timing",
    "Tool",
    "__version__",
    "connect",
    "load_ipython_extension",
    "tool",
]

_LAZY = {
    "ChatPanel": "frontends.chat",
    "Session": "client.session",
    "ResponseHandle": "client.responses",
    "ResponseResult": "client.responses",
    "ItemSnapshot": "client.responses",
    "SessionStatus": "client.responses",
    "Timing": "protocol.turns",
    "connect": "client.registry",
    "Tool": "tools",
    "tool": "tools",
}


# Modules README names by their path from before the layer packages.
_MODULE_ALIASES = {
    "notebook_tools": "tools.notebook_tools",
}


class _Tools:
    """The tools layer as the Sessions' tool provider (the client cannot import it: it
    sits above). Loaded with the first Session (pydantic), and the MCP servers' part
    (the ``mcp`` SDK) with the first server."""

    def toolbox(self, session: Session) -> Toolbox:
        from .tools.runner import Toolbox

        return Toolbox(session)

    def mcp_servers(self, tools: tool_host.SessionTools) -> MCPServers:
        from .tools.mcp_servers import MCPServers
        from .tools.runner import Toolbox

        if not isinstance(tools, Toolbox):
            raise TypeError(f"MCP servers need a Toolbox, not {type(tools).__name__}")
        return MCPServers(tools)


class _ResultViews:
    """The views layer drawing a ``ResponseResult`` left as a cell's value."""

    def markdown(self, result: ResponseResult) -> str:
        # The one renderer of items (render/items.py), as a cell shows the answer.
        from .render.items import response_markdown
        from .render.markdown import safe_inline

        return response_markdown(result.items) or f"*({safe_inline(result.status)}, no text)*"

    def html(self, result: ResponseResult) -> str | None:
        from .render.bounded import bounded_html, needs_bounds
        from .render.items import item_source

        source = "\n\n".join(filter(None, map(item_source, result.items)))
        return bounded_html(source) if needs_bounds(source) else None


tool_host.install(_Tools())
result_views.install(_ResultViews())


def __getattr__(name: str) -> Any:
    if name in _MODULE_ALIASES:
        import importlib

        return importlib.import_module(f".{_MODULE_ALIASES[name]}", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rt_notebook' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext rt_notebook``: register the magics and the one-line display of
    rt_notebook's errors in the cell (``cell_errors``); warm the SDK and the offline
    server in the background, so the first answer is quick."""
    from .frontends import warmup as _warmup
    from .frontends.cell_errors import BriefErrors
    from .frontends.magics import RealtimeMagics

    ipython.register_magics(RealtimeMagics)
    BriefErrors(ipython).install()
    _warmup.start()
