"""Cell view: one response streamed into a notebook cell through IPython display handles.

Updates go out as ``update_display_data`` by ``display_id``, paced by
:class:`~rt_notebook.render.pacing.Pacer` so that they cost a bounded multiple of the text
whatever the model's speed. On the cell's own thread (blocking mode, the default) the
answer is shown as finished Markdown blocks, each published once into its own display
(:class:`~rt_notebook.render.blocks.BlockScanner` finds them), followed by a growing tail,
the only display that is updated; from a background thread no new output may be created,
so the whole text lives in one display and the pacer alone bounds the bytes. The final
update writes the whole answer, exact, into the first display with a footer, provenance
metadata (never credentials) and ``text/plain`` (written only then), and empties the block
displays: the saved notebook keeps one Markdown output. Model text is passed through
:func:`~rt_notebook.render.markdown.safe_markdown` block by block (never the whole text
per update) and published as ``text/markdown``, so raw HTML cannot run.

A view captures the cell's :mod:`contextvars` at creation, where ipykernel keeps the
parent header, so updates from a background thread land in the right cell.
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
from ..models import deprecation_warning
from .blocks import BlockScanner
from .inspector import footer_pieces
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


def _events_link(key: str) -> str:
    """The footer's "events" link for turn ``key`` (empty where widgets cannot work)."""
    try:
        from ..widgets.events import events_link
    except ImportError:  # anywidget missing: %realtime inspect still works
        return ""
    return events_link(key)


def _item_source(item: ItemSnapshot) -> str:
    """An item's Markdown before sanitizing (sanitized block by block while streaming)."""
    if item.type == "message":
        return item.text or ""
    if item.type == "function_call":
        return f"**Function call** `{item.name}`\n\n```json\n{item.arguments or ''}\n```"
    return ""


class CellView:
    """Shows one response in the current cell, growing as deltas arrive."""

    seal_interval = 1.0  # seconds: at most one new block display a second
    # Finished blocks stay in the tail until they are this long: a short answer keeps one
    # output, and a long one opens few displays (each stays, emptied, in the notebook).
    seal_minimum = 1_000

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
        self.blocks = True  # finished blocks in their own displays (cell thread only)
        self._context = contextvars.copy_context()  # the cell's parent header lives here
        self._changed = threading.Event()
        self._shown = ""  # the raw text the displays show
        self._scanner = BlockScanner()
        self._sealed = 0  # raw[:_sealed] is shown, final, in the displays before the last
        self._last_seal = float("-inf")
        self._link = "" if plain else _events_link(handle.request_id)  # the "events" control
        self._displays: list[DisplayHandle] = [
            display(
                self._bundle(self._live(f"*waiting for {safe_inline(session.model)}…*")),
                raw=True,
                display_id=True,
            )
        ]
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

        A background thread may only update the displays the cell created, so the whole
        text streams into the first one. Every display write enters the cell's captured
        context itself (``_update``), so the thread runs in its own context.
        """
        self.blocks = False

        def target() -> None:
            # finish() has already shown any error in the cell.
            with contextlib.suppress(RealtimeError):
                self.run()

        thread = threading.Thread(target=target, name="rt_notebook-cell", daemon=True)
        thread.start()
        return thread

    def refresh(self) -> float:
        """Publish the new text if the pacer allows; return the delay until a pending
        update may go out (0 if nothing is pending or only more text can pay for it)."""
        self._changed.clear()
        raw = self._current_text()
        if raw == self._shown:
            return 0.0
        self.pacer.grow(len(raw))
        now = time.monotonic()
        sealed = self._sealed
        if self.blocks and now - self._last_seal >= self.seal_interval:
            boundary = self._scanner.feed(raw)
            if boundary - self._sealed >= self.seal_minimum:
                sealed = boundary
        wait = self.pacer.wait_time(now, len(raw) - sealed)
        if wait is None:
            return 0.0  # the next delta pays for it (and wakes us)
        if wait > 0:
            self._changed.set()  # still pending
            return wait
        tail = self._render(raw[sealed:])
        if sealed > self._sealed:
            self._seal(self._render(raw[self._sealed : sealed]), tail, sealed, now)
        else:
            self._update(self._displays[-1], self._bundle(self._live(tail)))
        self._shown = raw
        self.pacer.published(now, len(tail))
        return 0.0

    def finish(self) -> ResponseResult:
        """Publish the exact final text with a footer and provenance; return the result."""
        try:
            result = self.handle.wait(10)
        except RealtimeError as error:
            self._collapse(self._render(self._current_text()), self._error_footer(error))
            raise
        text = render_items(result.items) if not self.plain else result.text
        self._collapse(text, self._footer(result), self._provenance(result))
        return result

    # Internals ---------------------------------------------------------------------------

    def _on_changes(self, session: Session, changes: Sequence[Change]) -> None:
        self._changed.set()  # runs on the I/O thread: only wake the writer

    def _current_text(self) -> str:
        """The raw (unsanitized) text of the response so far."""
        response_id = self.handle.response_id
        if response_id is None:
            return ""
        if self.plain:
            return self.session.response_text(response_id)
        return "\n\n".join(
            filter(None, map(_item_source, self.session.response_items(response_id)))
        )

    def _render(self, raw: str) -> str:
        return raw if self.plain else safe_markdown(raw)

    def _seal(self, blocks: str, tail: str, end: int, now: float) -> None:
        """Show ``blocks`` (finished, up to ``end``) for good in the last display and the
        tail in a new display just after it."""
        self._update(self._displays[-1], self._bundle(blocks))
        self._displays.append(
            self._context.run(display, self._bundle(self._live(tail)), raw=True, display_id=True)
        )
        self.updates += 1
        self._sealed = end
        self._last_seal = now

    def _collapse(self, text: str, footer: str, metadata: dict[str, Any] | None = None) -> None:
        """The whole answer into the first display; the block displays emptied."""
        body = "\n\n".join(p for p in (text, footer) if p) or "*…*"
        bundle = {"text/plain": body} if self.plain else {"text/markdown": body, "text/plain": text}
        self._update(self._displays[0], bundle, metadata)
        for extra in self._displays[1:]:
            self._update(extra, {})
        del self._displays[1:]

    def _live(self, text: str) -> str:
        """The streaming tail with the "events" link under it (none in plain text).

        A tail that ends inside a fenced code block gets the fence closed first, or the
        link would read as code."""
        if not self._link:
            return text
        scanner = BlockScanner()
        scanner.feed(text + "\n")
        fence = scanner.open_fence
        closed = f"{text}\n{fence}" if fence else text
        return f"{closed}\n\n*{self._link}*"

    def _bundle(self, text: str) -> dict[str, Any]:
        return {"text/plain" if self.plain else "text/markdown": text}

    def _update(
        self, handle: DisplayHandle, bundle: dict[str, Any], metadata: dict[str, Any] | None = None
    ) -> None:
        kwargs: dict[str, Any] = {"raw": True}
        if metadata is not None:
            kwargs["metadata"] = metadata
        self._context.run(handle.update, bundle, **kwargs)
        self.updates += 1

    def _error_footer(self, error: RealtimeError) -> str:
        footer = f"**Error:** {safe_markdown(str(error))}"
        return f"{footer}\n\n*{self._link}*" if self._link else footer

    def _footer(self, result: ResponseResult) -> str:
        # Offline, no model answered: name what did instead of the configured model.
        offline = self.session.endpoint.offline
        # A local model behind the embedded server: name it and where it runs.
        answered_by = self.session.endpoint.local_model or result.model
        pieces = ["offline server (echo)" if offline else answered_by, result.status]
        reason = result.reason  # why it failed or stopped: scrubbed, one line
        if reason:
            pieces[-1] += f" ({reason})"
        if result.usage and result.usage.get("total_tokens") is not None:
            pieces.append(f"{result.usage['total_tokens']} tokens")
        if result.time_to_first_delta is not None:
            pieces.append(f"first delta {result.time_to_first_delta:.2f} s")
        pieces += footer_pieces(self.session, self.handle, result)  # total, queued, cost
        if result.out_of_band:
            pieces.append("out of band")
        footer = " · ".join(pieces)
        warning = deprecation_warning(result.model)  # one line under the footer
        if self.plain:
            return f"{footer}\n{warning}" if warning else footer
        # The link is built from ids only (no server text): it stays outside safe_inline.
        footer = f"*{safe_inline(footer)}" + (f" · {self._link}*" if self._link else "*")
        return f"{footer}\n\n{safe_inline(warning)}" if warning else footer

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
