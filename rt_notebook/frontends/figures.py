"""Front end: the figure ``%%realtime --figure`` sends, kept past the inline backend.

Jupyter's inline matplotlib backend draws a cell's figures when the cell ends and then
closes them (``InlineBackend.close_figures``), so by the next cell pyplot holds none: the
usual "plot, then ask about it" would find nothing. A ``post_execute`` callback placed
ahead of the backend's remembers the figure pyplot holds when each cell ends; ``--figure``
takes the figure pyplot still holds, else that one. Nothing is imported: a kernel that
never used pyplot pays nothing.
"""

from __future__ import annotations

import sys
from typing import Any

from ..errors import ConfigurationError

__all__ = ["FigureMemory"]


class FigureMemory:
    """The last figure pyplot held at the end of a cell (one reference, replaced)."""

    def __init__(self) -> None:
        self.figure: Any = None

    def install(self, shell: Any) -> None:
        """Run :meth:`remember` after every cell, before the inline backend closes
        figures (first in the list, whenever the backend registered its own callback)."""
        callbacks = getattr(getattr(shell, "events", None), "callbacks", None)
        if not isinstance(callbacks, dict):
            return
        hooks = callbacks.setdefault("post_execute", [])
        if self.remember not in hooks:
            hooks.insert(0, self.remember)

    def remember(self) -> None:
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None and pyplot.get_fignums():
            self.figure = pyplot.gcf()

    def current(self) -> Any:
        """The figure pyplot holds now, else the one it held when a cell last ended."""
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None and pyplot.get_fignums():
            return pyplot.gcf()
        if self.figure is not None:
            return self.figure
        raise ConfigurationError(
            "--figure: matplotlib holds no figure (plot one first, or give --image VAR "
            "for a Figure you kept)"
        )
