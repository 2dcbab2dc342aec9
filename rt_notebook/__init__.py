"""rt_notebook package: OpenAI Realtime conversations in Jupyter.

``%load_ext rt_notebook`` adds the ``%%realtime`` / ``%realtime`` magics;
:func:`connect` returns the kernel's :class:`Session` for use from plain Python.
Importing the package is cheap: the heavy parts load on first use.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
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


# Modules by their names from before the layer packages (user code, notebooks and patch
# targets may name them): importing one gives the module at its new place, the same object.
# A package's submodules follow it (``rt_notebook.mcp_servers.remote``).
_MOVED = {
    "session": "client.session",
    "_driver": "client.driver",
    "_ioloop": "client.io_thread",
    "_items": "client.item_writes",
    "_reading": "client.reading",
    "_registry": "client.registry",
    "_voice_io": "client.voice_input",
    "bridge": "client.bridge",
    "responses": "client.responses",
    "transport": "client.transport",
    "recording": "client.recording",
    "models": "client.models",
    "pricing": "client.pricing",
    "audio": "client.audio",
    "images": "client.images",
    "voice_switch": "client.voice_switch",
    "magics": "frontends.magics",
    "magic_args": "frontends.magic_args",
    "anchors": "frontends.anchors",
    "cell_errors": "frontends.cell_errors",
    "last_error": "frontends.last_error",
    "chat": "frontends.chat",
    "chat_voice": "frontends.chat_voice",
    "voice_control": "frontends.voice_control",
    "_warmup": "frontends.warmup",
    "figures": "frontends.figures",
    "transcript": "frontends.transcript",
    "code_blocks": "render.code_blocks",
    "playing": "render.playing",
    "render.voice_turns": "frontends.voice_turns",
    "widgets.export": "render.export",
    "notebook_tools": "tools.notebook_tools",
    "mcp_servers": "tools.mcp_servers",
}


def _moved_to(old: str) -> str | None:
    """The new dotted name (under the package) of ``old``, a moved module or a submodule of
    a moved package; ``None`` when it did not move."""
    parts = old.split(".")
    for size in range(len(parts), 0, -1):
        new = _MOVED.get(".".join(parts[:size]))
        if new is not None:
            return ".".join([new, *parts[size:]])
    return None


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports a moved module's old name as the module at its new place (see ``_MOVED``)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if not fullname.startswith(f"{__name__}."):
            return None
        new = _moved_to(fullname[len(__name__) + 1 :])
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def __init__(self) -> None:
        self._specs: dict[str, Any] = {}  # a module's own spec while it is imported again

    def create_module(self, spec: Any) -> types.ModuleType:
        new = _moved_to(spec.name[len(__name__) + 1 :])
        assert new is not None
        module = importlib.import_module(f"{__name__}.{new}")
        self._specs[module.__name__] = module.__spec__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        # The import system gave the module the old name's spec: it keeps its own.
        module.__spec__ = self._specs.pop(module.__name__)


# First: a moved package's old name has the new one's __path__, where the path finder would
# load a second copy of each submodule under the old name.
sys.meta_path.insert(0, _MovedModules())


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
    if name in _MOVED:
        return importlib.import_module(f".{_MOVED[name]}", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rt_notebook' has no attribute {name!r}")
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
