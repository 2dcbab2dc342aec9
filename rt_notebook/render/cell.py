"""Cell view: one response streamed into a notebook cell through an IPython display handle.

Updates go out through a :class:`~IPython.display.DisplayHandle` (``update_display_data``
by ``display_id``), paced by :class:`~rt_notebook.render.pacing.Pacer`; the final update
always carries the exact text plus provenance metadata (never credentials). Model text is
passed through :func:`~rt_notebook.render.markdown.safe_markdown` and published as
``text/markdown``, so Jupyter's Markdown renderer shows it and raw HTML cannot run.

A view can be driven from the cell's own thread (blocking mode) or from a background
thread: it captures the cell's :mod:`contextvars` at creation, where ipykernel keeps the
parent header, so background updates land in the right cell.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from IPython.display import DisplayHandle, display

from ..errors import RealtimeError
from .markdown import fenced, inline_code, safe_inline, safe_markdown
from .pacing import Pacer

if TYPE_CHECKING:
    from ..protocol.conversation import Change
    from ..responses import ItemSnapshot, ResponseHandle, ResponseResult
    from ..session import Session

__all__ = ["CellView", "render_items"]

METADATA_KEY = "rt_notebook"


def render_items(items: Sequence[ItemSnapshot]) -> str:
    """Markdown for a response's output items: message text, function calls as JSON."""
    parts = []
    for item in items:
        if item.type == "message":
            if item.text:
                parts.append(safe_markdown(item.text))
        elif item.type == "function_call":
            code = fenced(item.arguments or "", "json")
            parts.append(f"**Function call** {inline_code(item.name or '?')}\n\n{code}")
    return "\n\n".join(parts)


class CellView:
    """Shows one response in the current cell, growing as deltas arrive."""

    def __init__(
        self,
        session: Session,
        handle: ResponseHandle,
        *,
        plain: bool = False,
        pacer: Pacer | None = None,
    ) -> None:
        self.session = session
        self.handle = handle
        self.plain = plain  # publish text/plain only (--format text)
        self.pacer = pacer or Pacer()
        self.updates = 0  # display messages sent, for tests and benchmarks
        self._context = contextvars.copy_context()  # the cell's parent header lives here
        self._changed = threading.Event()
        self._published: str | None = None
        self._display: DisplayHandle = display(
            self._bundle(f"*waiting for {safe_inline(session.model)}…*", ""),
            raw=True,
            display_id=True,
        )
        self._unsubscribe = session.subscribe(self._on_changes)

    # Public methods -------------------------------------------------------------------

    def run(self, timeout: float | None = None) -> ResponseResult:
        """Publish updates until the response is done; return its result.

        Raises :class:`TimeoutError` after ``timeout`` seconds; ``KeyboardInterrupt``
        propagates (the caller cancels). The final state is shown either way.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        future = self.handle._future
        try:
            while not future.done():
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"the response did not finish within {timeout} s")
                self._changed.wait(0.25)
                delay = self.refresh()
                if delay:
                    concurrent.futures.wait([future], timeout=delay)
        finally:
            self._unsubscribe()
        return self.finish()

    def run_in_background(self) -> threading.Thread:
        """Stream from a daemon thread; the cell returns at once.

        Every display write enters the cell's captured context itself (``_publish``), so
        the thread runs in its own context.
        """

        def target() -> None:
            # finish() has already shown any error in the cell.
            with contextlib.suppress(RealtimeError):
                self.run()

        thread = threading.Thread(target=target, name="rt_notebook-cell", daemon=True)
        thread.start()
        return thread

    def refresh(self) -> float:
        """Publish the current text if it changed and the pacer allows; return the delay
        until the pending update may go out (0 if nothing is pending)."""
        self._changed.clear()
        text = self._current_text()
        if text == self._published:
            return 0.0
        now = time.monotonic()
        if not self.pacer.due(now, len(text)):
            self._changed.set()  # still pending
            return self.pacer.wait_time(now, len(text))
        self._publish(text, "")
        self.pacer.published(now)
        return 0.0

    def finish(self) -> ResponseResult:
        """Publish the exact final text with a footer and provenance; return the result."""
        try:
            result = self.handle.wait(10)
        except RealtimeError as error:
            self._publish(self._current_text(), f"**Error:** {safe_markdown(str(error))}")
            raise
        text = render_items(result.items) if not self.plain else result.text
        self._publish(text, self._footer(result), self._provenance(result))
        return result

    # Internals ---------------------------------------------------------------------------

    def _on_changes(self, session: Session, changes: Sequence[Change]) -> None:
        self._changed.set()  # runs on the I/O thread: only wake the writer

    def _current_text(self) -> str:
        response_id = self.handle.response_id
        if response_id is None:
            return ""
        if self.plain:
            return self.session.response_text(response_id)
        return render_items(self.session.response_items(response_id))

    def _bundle(self, text: str, footer: str) -> dict[str, Any]:
        if self.plain:
            return {"text/plain": "\n\n".join(p for p in (text, footer) if p)}
        body = "\n\n".join(p for p in (text, footer) if p)
        return {"text/markdown": body, "text/plain": text}

    def _publish(self, text: str, footer: str, metadata: dict[str, Any] | None = None) -> None:
        bundle = self._bundle(text, footer)
        if not text and not footer:
            bundle = self._bundle("*…*", "")
        kwargs: dict[str, Any] = {"raw": True}
        if metadata is not None:
            kwargs["metadata"] = metadata
        self._context.run(self._display.update, bundle, **kwargs)
        self._published = text
        self.updates += 1

    def _footer(self, result: ResponseResult) -> str:
        pieces = [result.model, result.status]
        if result.status_details and result.status != "completed":
            reason = result.status_details.get("reason")
            if reason:
                pieces[-1] += f" ({reason})"
        if result.usage and result.usage.get("total_tokens") is not None:
            pieces.append(f"{result.usage['total_tokens']} tokens")
        if result.time_to_first_delta is not None:
            pieces.append(f"first delta {result.time_to_first_delta:.2f} s")
        if result.out_of_band:
            pieces.append("out of band")
        if self.session.endpoint.offline:
            pieces.append("offline server")
        elif self.session.endpoint.local_model:
            pieces.append(self.session.endpoint.local_model)
        footer = " · ".join(pieces)
        return footer if self.plain else f"*{safe_inline(footer)}*"

    def _provenance(self, result: ResponseResult) -> dict[str, Any]:
        return {
            METADATA_KEY: {
                "model": result.model,
                "response_id": result.id,
                "status": result.status,
                "usage": result.usage,
                "session": self.session.name,
                "offline": self.session.endpoint.offline,
            }
        }
