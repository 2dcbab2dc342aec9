"""Client layer: what a Session needs of its tools, and the provider that makes them.

The tool runner (:class:`rt_notebook.tools.Toolbox`) and the MCP servers
(:mod:`rt_notebook.tools.mcp_servers`) sit in the tools layer, above the client, and
import it; a Session knows them only through the interfaces here. It gets them from the
:class:`ToolProvider` that the package installs when it is imported
(``rt_notebook/__init__.py``, which every import of a module of the package runs first),
so ``Session()`` has its tools wherever it is made. This module imports nothing heavy:
the package installs its provider without loading the Session or the tools.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

if TYPE_CHECKING:
    from ..protocol.options import ResponseOptions, ToolLike, Unpack
    from .responses import ResponseHandle

__all__ = [
    "McpHost",
    "SessionTools",
    "ToolLists",
    "ToolOptions",
    "ToolProvider",
    "ToolTracker",
    "install",
    "provider",
]


class ToolOptions(TypedDict, total=False):
    """How a function is offered as a tool: the keywords of ``@rt_notebook.tool(...)``,
    ``@session.tool(...)``, ``session.register_tool`` and ``function_tool``."""

    name: str | None  # default: the function's name
    description: str | None  # default: the docstring's summary
    approval: bool  # ask the user before every run (default: no)
    timeout: float  # seconds a run may take before it counts as failed


class ToolTracker(Protocol):
    """What the responder needs of the tool runner (a Session's ``Toolbox``)."""

    def schemas(
        self, names: Iterable[str | ToolLike | Mapping[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """Definitions for tool names, Tool objects or definitions."""

    def track(self, handle: ResponseHandle, overrides: ResponseOptions) -> None:
        """Remember what a response asked for (its tool round's follow-up asks the same)."""


class ToolLists(Protocol):
    """What the settings need of the tool runner (a Session's ``Toolbox``)."""

    @property
    def hosted(self) -> Callable[[], list[dict[str, Any]]] | None:
        """Makes the service-run (remote MCP) tool definitions, when any are configured."""

    def __len__(self) -> int:
        """How many tools are registered."""

    def session_schemas(self, extra: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
        """The ``session.tools`` list: hand-written definitions, then registered tools."""

    def hand_written(self, tools: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The definitions in ``tools`` that no registered tool made."""


class SessionTools(ToolTracker, ToolLists, Protocol):
    """What a Session needs of its tool runner: what its parts need, and registration."""

    def register(self, function: Callable[..., Any], **options: Unpack[ToolOptions]) -> ToolLike:
        """Offer ``function`` to the model; a connected Session sends ``session.update``."""

    def tool(
        self, function: Callable[..., Any] | None = None, /, **options: Unpack[ToolOptions]
    ) -> Any:
        """Decorator form of :meth:`register`."""


class McpHost(Protocol):
    """What a Session needs of its MCP servers (``session.mcp``)."""

    def add_server(self, label: str, **options: Any) -> Any:
        """Offer an MCP server's tools to the model; the server's handle."""

    def remove(self, label: str) -> None:
        """Stop the server ``label`` and withdraw its tools."""

    def stop_all(self) -> None:
        """Stop every local server (they start again on their next call)."""


class ToolProvider(Protocol):
    """Makes a Session's tool runner and, on first use, its MCP servers."""

    def toolbox(self, session: Any) -> SessionTools:
        """The tool runner of ``session`` (a Session being made)."""

    def mcp_servers(self, tools: SessionTools) -> McpHost:
        """The MCP servers whose tools ``tools`` (made by :meth:`toolbox`) offers."""


_installed: list[ToolProvider] = []


def install(made_by: ToolProvider) -> None:
    """Make Sessions get their tools from ``made_by`` (the package does, on import)."""
    _installed[:] = [made_by]


def provider() -> ToolProvider:
    """The installed provider (importing any module of the package installs one)."""
    if not _installed:
        raise RuntimeError("no tool provider installed: import rt_notebook")
    return _installed[0]
