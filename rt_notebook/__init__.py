"""rt_notebook package: OpenAI Realtime conversations in Jupyter.

``%load_ext rt_notebook`` adds the ``%%realtime`` / ``%realtime`` magics;
:func:`connect` returns the kernel's :class:`Session` for use from plain Python.
Importing the package is cheap: the heavy parts load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError, RealtimeConnectionError, RealtimeError, ServerError

if TYPE_CHECKING:
    from .client.responses import ItemSnapshot, ResponseHandle, ResponseResult, SessionStatus
    from .client.session import Session, connect
    from .frontends.chat import ChatPanel
    from .protocol.turns import Timing
    from .tools import Tool, tool

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
    "connect": "client.session",
    "Tool": "tools",
    "tool": "tools",
}


# Modules README names by their path from before the layer packages.
_MODULE_ALIASES = {
    "notebook_tools": "tools.notebook_tools",
}


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
