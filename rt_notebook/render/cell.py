"""Cell view: one response streamed into a notebook cell, append only, ending as Markdown.

While the answer streams, the cell shows an :class:`~rt_notebook.widgets.stream.AnswerStream`
widget and the page receives only what is new, as the widget's messages: each finished
Markdown block once (:class:`~rt_notebook.render.blocks.BlockScanner` finds them), and the
growing tail as appended text (:class:`~rt_notebook.render.stream_edits.StreamEdits` says
what; the page renders the Markdown). A :class:`~rt_notebook.render.view_loop.ViewLoop`
paces the messages: the first delta at once, then a change waits :attr:`CellView.interval`
(210 ms) with those after it, so about four messages a second go out. Past
:data:`~rt_notebook.render.stream_edits.MARKDOWN_LIMIT` characters the rest streams as
plain text, folded behind the page's "show all" control; the final output of such an
answer also holds ``text/html`` (:mod:`~rt_notebook.render.bounded`), which front ends
draw instead of rendering megabytes of Markdown.

When the answer ends, one display update replaces the widget with the exact final text
as ``text/markdown`` (with a footer) and provenance metadata (never credentials); its
``text/plain`` is the exact text too where no page showed the stream (a terminal,
nbclient, papermill) or the answer is past the Markdown limit, and otherwise a one-line
summary (:func:`plain_summary`: each representation of the whole text is paid once more
on the wire and in the file, and the page renders the Markdown). The page then forgets the
widget's text and the widget is kept for the next answer
(:func:`~rt_notebook.widgets.stream.end_stream`), so a saved notebook holds one Markdown
output and no widget state of the answer. Without a kernel to
stream through (a terminal) only the final output is shown; nbclient and papermill save
the same final output. Model text is passed through
:func:`~rt_notebook.render.markdown.safe_markdown` block by block (never the whole text per
message), so raw HTML cannot run.

A view captures the cell's :mod:`contextvars` at creation, where ipykernel keeps the
parent header, so messages from a background thread belong to the right cell.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any

from IPython.display import display

from ..client.models import deprecation_warning
from ..client.saved_turns import Recorder, shared_text
from ..errors import RealtimeError
from ..protocol.numbers import nonzero_usage
from ..redaction import scrub
from .bounded import bounded_html, needs_bounds
from .inspector import footer_pieces
from .items import item_source, response_markdown
from .markdown import safe_inline, safe_markdown
from .stream_edits import StreamEdits
from .view_loop import ViewLoop

if TYPE_CHECKING:
    from ..client.responses import ResponseHandle, ResponseResult
    from ..client.session import Session
    from ..widgets.stream import AnswerStream

__all__ = ["CellView", "plain_summary"]

METADATA_KEY = "rt_notebook"
log = logging.getLogger("rt_notebook")
_HREF = re.compile(r"\((#rt-events-[\w-]+)\)")


def plain_summary(text: str, limit: int = 80) -> str:
    """A final output's ``text/plain`` where ``text/markdown`` holds the answer: the
    answer itself when short, else its first line cut, and its length."""
    if len(text) <= limit:
        return text
    first = text.split("\n", 1)[0][:limit].rstrip()
    return f"{first} … ({len(text):,} characters of Markdown)"


def _events_link(key: str) -> str:
    """The footer's "events" link for turn ``key`` (empty where widgets cannot work)."""
    try:
        from .inspector_pane import events_link
    except ImportError:  # anywidget missing: %realtime inspect still works
        return ""
    return events_link(key)


def _open_stream(waiting: str, link: str, plain: bool) -> AnswerStream | None:
    """The answer's streaming widget (``None`` where there is no page to stream to)."""
    try:
        from ..widgets.stream import open_stream
    except ImportError:  # anywidget missing: the answer is shown when it is done
        return None
    match = _HREF.search(link)
    return open_stream(waiting=waiting, link=match.group(1) if match else "", plain=plain)


class CellView:
    """Shows one response in the current cell, growing as deltas arrive."""

    # Seconds a delta may wait for its message (the view loop's Pace counts from the first
    # delta a message carries): the display lag's p95 is ~211 ms against the 250 ms goal.
    # At slow rates each message's ~58 bytes of framing, not the text, sets the cost; with
    # words 50 ms apart (20 a second) any wait from 201 to 250 ms sends a message every
    # 250 ms, and this one keeps the lag's margin on a busy machine.
    interval = 0.21

    def __init__(
        self,
        session: Session,
        handle: ResponseHandle,
        *,
        plain: bool = False,
        record: Recorder | None = None,
    ) -> None:
        self.session = session
        self.handle = handle
        self.plain = plain  # publish text/plain only (--format text)
        self.record = record  # the turn's items for the final metadata (saved_turns)
        self.updates = 0  # display and widget messages sent, for tests and benchmarks
        self._context = contextvars.copy_context()  # the cell's parent header lives here
        self._link = "" if plain else _events_link(handle.request_id)  # the "events" control
        self.edits = StreamEdits(scrub if plain else safe_markdown)
        self._waiting = f"waiting for {session.model}…"
        # The answer's widget: opened now if a page has the stream renderer, else at the
        # first publish that finds one (the kernel's first answer: the page says "ready"
        # a moment after the hub is made); never where no page shows widgets.
        self.stream: AnswerStream | None = None
        self._closed = False  # the final output is shown: no widget may open any more
        bundle = self._stream_bundle() if self._open() else self._waiting_bundle()
        # A display id names this output in the page, in the display and the final update:
        # 48 random bits make a clash there negligible (IPython's own is a 32-character uuid).
        self._display = display(bundle, raw=True, display_id=secrets.token_hex(6))
        self.updates += 1
        self.loop = ViewLoop(self._publish, interval=self.interval)
        self._unsubscribe = session.subscribe(self.loop.wake)

    # Public methods -------------------------------------------------------------------

    def run(self, timeout: float | None = None) -> ResponseResult:
        """Publish what is new until the response is done; return its result.

        Raises :class:`TimeoutError` after ``timeout`` seconds; ``KeyboardInterrupt``
        propagates (the caller cancels). The final state is shown either way.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            self.loop.run(self.handle.as_future(), deadline)
        except TimeoutError:
            raise TimeoutError(f"the response did not finish within {timeout} s") from None
        finally:
            self._unsubscribe()
        return self.finish()

    def run_in_background(self) -> threading.Thread:
        """Stream from a daemon thread; the cell returns at once.

        The widget was displayed by the cell; the thread only sends its messages and the
        final display update, each in the cell's captured context (``_send``)."""

        def target() -> None:
            # finish() has already shown any error in the cell.
            with contextlib.suppress(RealtimeError):
                self.run()

        thread = threading.Thread(target=target, name="rt_notebook-cell", daemon=True)
        thread.start()
        return thread

    def refresh(self) -> bool:
        """Publish what is new now, whatever the pace; return whether anything was sent."""
        return self.loop.step()

    def finish(self) -> ResponseResult:
        """Publish the exact final text with a footer and provenance; return the result."""
        try:
            result = self.handle.wait(10)
        except RealtimeError as error:
            self._collapse(self._render(self._current_text()), self._error_footer(error))
            raise
        text = response_markdown(result.items) if not self.plain else result.text
        self._collapse(text, self._footer(result), self._provenance(result, text))
        return result

    # Internals ---------------------------------------------------------------------------

    def _current_text(self) -> str:
        """The raw (unsanitized) text of the response so far."""
        response_id = self.handle.response_id
        if response_id is None:
            return ""
        if self.plain:
            return self.session.response_text(response_id)
        return "\n\n".join(filter(None, map(item_source, self.session.response_items(response_id))))

    def _render(self, raw: str) -> str:
        return scrub(raw) if self.plain else safe_markdown(raw)

    def _open(self) -> bool:
        """Open the answer's widget if a page can show it; return whether it is open."""
        if self.stream is None and not self._closed:
            self.stream = self._context.run(_open_stream, self._waiting, self._link, self.plain)
        return self.stream is not None

    def _waiting_bundle(self) -> dict[str, Any]:
        if self.plain:
            return {"text/plain": self._waiting}
        return {"text/markdown": f"*waiting for {safe_inline(self.session.model)}…*"}

    def _stream_bundle(self) -> dict[str, Any]:
        """The widget's view, with the waiting line as text (for a front end without it)."""
        from ..widgets.stream import widget_bundle

        return {**widget_bundle(self.stream), "text/plain": self._waiting}

    def _publish(self) -> bool:
        """Send the page what is new (the view loop's publish step)."""
        if self.stream is None:
            if not self._open():
                return False  # nothing to stream to: the final output says it all
            # The waiting output becomes the widget (it then receives the whole text so far).
            self._context.run(self._display.update, self._stream_bundle(), raw=True)
            self.updates += 1
        edit = self.edits.update(self._current_text())
        if self.stream is not None and self.stream.snapshot_wanted:
            self.stream.snapshot_wanted = False
            edit = self.edits.snapshot()  # a page joined late: everything, once
        if edit is None or self.stream is None:
            return False
        # An edit that only appends goes as the bare string (the page reads it as {a: ...}).
        content: Any = edit["a"] if edit.keys() == {"a"} else dict(edit)
        try:
            self._context.run(self.stream.send, content)
        except Exception as exc:  # the comm is gone: the final output still says it all
            log.debug("rt_notebook: streaming stopped: %s", exc)
            self._closed, self.stream = True, None
            return False
        self.updates += 1
        return True

    def _collapse(self, text: str, footer: str, metadata: dict[str, Any] | None = None) -> None:
        """The whole answer replaces the streaming widget, which is then kept for the next."""
        body = "\n\n".join(p for p in (text, footer) if p) or "*…*"
        bundle = {"text/plain": body} if self.plain else {"text/markdown": body, "text/plain": text}
        if not self.plain and needs_bounds(text):
            # Too long to render whole: front ends draw this instead, and keep the rest.
            bundle["text/html"] = bounded_html(self._current_text(), footer)
        elif not self.plain and self.stream is not None:
            # A page that renders Markdown showed the stream: the answer is text/markdown
            # once; text/plain only names it (as IPython's own Markdown display does),
            # rather than a second copy that travels and is saved for nobody.
            bundle["text/plain"] = plain_summary(text)
        kwargs: dict[str, Any] = {"raw": True}
        if metadata is not None:
            kwargs["metadata"] = metadata
        self._context.run(self._display.update, bundle, **kwargs)
        self.updates += 1
        self._closed = True
        if self.stream is not None:
            from ..widgets.stream import end_stream

            self._context.run(end_stream, self.stream)  # kept for the next answer
            self.updates += 1
            self.stream = None

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

    def _provenance(self, result: ResponseResult, text: str) -> dict[str, Any]:
        provenance = {
            "model": result.model,
            "response_id": result.id,
            "status": result.status,
            # Without its zero counts (a missing count is 0): most are, in a text answer.
            "usage": nonzero_usage(result.usage) if result.usage is not None else None,
            "session": self.session.name,
            "offline": self.session.endpoint.offline,
        }
        turn = self.record(result) if self.record is not None else None
        if turn is not None:  # what %realtime resume rebuilds the conversation from
            # An answer's text is in the output already: not saved twice. text/plain holds
            # it unless a page drew the stream (then text/markdown starts with it).
            if self.plain:
                provenance["turn"] = turn
            elif self.stream is None or needs_bounds(text):
                provenance["turn"] = shared_text(turn, text)
            else:
                provenance["turn"] = shared_text(turn, text, "text/markdown")
        return {METADATA_KEY: provenance}
