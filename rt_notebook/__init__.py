"""rt_notebook: OpenAI Realtime conversations in Jupyter.

``%load_ext rt_notebook`` adds the ``%%realtime`` / ``%realtime`` magics;
:func:`connect` returns the kernel's :class:`Session` for use from plain Python.
Importing the package is cheap: the heavy parts load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError, RealtimeConnectionError, RealtimeError, ServerError

if TYPE_CHECKING:
    from .chat import ChatPanel
    from .protocol.turns import Timing
    from .responses import ItemSnapshot, ResponseHandle, ResponseResult, SessionStatus
    from .session import Session, connect
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
    "ChatPanel": "chat",
    "Session": "session",
    "ResponseHandle": "responses",
    "ResponseResult": "responses",
    "ItemSnapshot": "responses",
    "SessionStatus": "responses",
    "Timing": "protocol.turns",
    "connect": "session",
    "Tool": "tools",
    "tool": "tools",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rt_notebook' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext rt_notebook``: register the magics and the one-line display of
    rt_notebook's errors in the cell (``cell_errors``); warm the SDK and the offline
    server in the background, so the first answer is quick."""
    import os

    from . import _warmup
    from .cell_errors import BriefErrors
    from .magics import RealtimeMagics
    from .redaction import Secret, install_traceback_filter

    ipython.register_magics(RealtimeMagics)
    BriefErrors(ipython).install()
    # From the first cell on, not only once a Session registered its key: the key in the
    # environment is known now, so a Verbose traceback of a cell that read it into a
    # variable before connecting shows *** too.
    Secret.wrap(os.environ.get("OPENAI_API_KEY"))
    install_traceback_filter()
    _warmup.start()
