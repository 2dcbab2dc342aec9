"""Client layer: how a response's result is drawn as a cell's value (the views draw it).

A :class:`~rt_notebook.client.responses.ResponseResult` left as a cell's value is shown by
IPython through its ``_repr_markdown_`` and ``_repr_html_``; drawing items is the job of
the views layer (``rt_notebook.render``), above the client. The result asks the
:class:`ResultViews` that the package installs when it is imported
(``rt_notebook/__init__.py``, which every import of a module of the package runs first).
This module imports nothing: the package installs its views without loading them.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["ResultViews", "install", "views"]


class ResultViews(Protocol):
    """Draws a ``ResponseResult`` (the argument) for a front end."""

    def markdown(self, result: Any) -> str:
        """The answer as safe Markdown, as a cell shows it."""

    def html(self, result: Any) -> str | None:
        """A bounded drawing for an answer past the Markdown limit, else ``None``."""


_installed: list[ResultViews] = []


def install(drawn_by: ResultViews) -> None:
    """Make results be drawn by ``drawn_by`` (the package does, on import)."""
    _installed[:] = [drawn_by]


def views() -> ResultViews:
    """The installed views (importing any module of the package installs them)."""
    if not _installed:
        raise RuntimeError("no result views installed: import rt_notebook")
    return _installed[0]
