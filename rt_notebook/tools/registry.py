"""Tool registries: tools by name, and the ``@rt_notebook.tool`` decorator.

:data:`default_registry` (filled by ``@rt_notebook.tool``) is shared by every Session; each
Session's registry adds its own tools on top. Registries are thread-safe and tell their
listeners (connected Sessions) when the tool list changes.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar, overload

from ..protocol.options import Unpack
from .schema import Tool, ToolOptions, check_tool_options, function_tool

__all__ = ["ToolRegistry", "decorator", "default_registry", "tool"]

F = TypeVar("F", bound=Callable[..., Any])


class ToolRegistry(Mapping[str, Tool]):
    """Tools by name; looks names up in ``parent`` too (its own tools win). Thread-safe."""

    def __init__(self, parent: ToolRegistry | None = None) -> None:
        self.parent = parent
        self._tools: dict[str, Tool] = {}
        self._lock = threading.Lock()
        # Listeners are held weakly when they are bound methods, so that the Toolboxes of
        # closed Sessions do not pile up on the kernel-wide registry.
        self._listeners: list[Callable[[], Callable[[], None] | None]] = []

    def __getitem__(self, name: str) -> Tool:
        with self._lock:
            found = self._tools.get(name)
        if found is not None:
            return found
        if self.parent is not None:
            return self.parent[name]
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            own = list(self._tools)
        inherited = [n for n in self.parent if n not in own] if self.parent is not None else []
        return iter(inherited + own)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"<ToolRegistry {list(self)}>"

    def add(self, tool: Tool) -> Tool:
        """Register ``tool`` (replacing one of the same name) and notify listeners."""
        with self._lock:
            self._tools[tool.name] = tool
        self._notify()
        return tool

    def remove(self, name: str) -> None:
        """Unregister a tool of this registry (not of its parent)."""
        with self._lock:
            del self._tools[name]
        self._notify()

    def replace(self, remove: Iterable[str], add: Iterable[Tool]) -> None:
        """Unregister ``remove`` (names of this registry's own tools; missing ones are
        skipped) and register ``add``, then notify listeners once (one ``session.update``
        for a whole MCP server's tool list, not one per tool)."""
        with self._lock:
            for name in remove:
                self._tools.pop(name, None)
            for tool in add:
                self._tools[tool.name] = tool
        self._notify()

    def schemas(self) -> list[dict[str, Any]]:
        """Every tool's Realtime definition."""
        return [self[name].schema for name in self]

    def on_change(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` after every change (here or in the parent); return an undo."""
        ref: Callable[[], Callable[[], None] | None]
        ref = weakref.WeakMethod(listener) if inspect.ismethod(listener) else lambda: listener
        with self._lock:
            self._listeners.append(ref)
        undo_parent = self.parent.on_change(listener) if self.parent is not None else None

        def undo() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._listeners.remove(ref)
            if undo_parent is not None:
                undo_parent()

        return undo

    def _notify(self) -> None:
        with self._lock:
            self._listeners = [ref for ref in self._listeners if ref() is not None]
            listeners = [ref() for ref in self._listeners]
        # Every listener hears of the change even if one fails; the first failure (a
        # server that rejects the new tool list) then reaches whoever registered.
        errors = []
        for listener in listeners:
            if listener is not None:
                try:
                    listener()
                except Exception as exc:
                    errors.append(exc)
        if errors:
            raise errors[0]


default_registry = ToolRegistry()
"""Tools every Session offers: filled by ``@rt_notebook.tool``."""


@overload
def tool(function: F, /) -> Tool: ...
@overload
def tool(**options: Unpack[ToolOptions]) -> Callable[[Callable[..., Any]], Tool]: ...
def tool(
    function: Callable[..., Any] | None = None, /, **options: Unpack[ToolOptions]
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Decorator: offer a function to the model in every Session of this kernel.

    ``@rt_notebook.tool`` or ``@rt_notebook.tool(approval=True, timeout=10)`` (the
    options: :class:`~rt_notebook.tools.schema.ToolOptions`). The decorated name stays
    callable. Connected Sessions send the new tool list at once.
    """
    return decorator(default_registry, function, options)


def decorator(
    registry: ToolRegistry, function: Callable[..., Any] | None, options: ToolOptions
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """``@tool`` and ``@tool(**options)`` registering in ``registry``."""
    check_tool_options(options)  # a misspelt option fails at the decorator, not later

    def register(function: Callable[..., Any]) -> Tool:
        return registry.add(function_tool(function, **options))

    return register if function is None else register(function)
