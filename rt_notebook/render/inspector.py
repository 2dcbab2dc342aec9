"""Inspector view: a turn's timeline, the footer's time and cost, the Session's totals.

Everything is safe Markdown (tables, inline code, fenced JSON): no HTML is built from
server strings, so a saved notebook holds plain Markdown. Event bodies are scrubbed of
credentials and long strings (audio) are shortened; images show their size and hash.
``--live`` re-renders one display by its id from a daemon thread, woken by the Session's
changes, until the turn is done.
"""

from __future__ import annotations

import contextvars
import json
import threading
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from ..client import pricing
from ..protocol.images import ImagePart
from ..protocol.timeline import Entry, Timeline
from ..redaction import scrub_data
from .markdown import fenced, inline_code, safe_inline
from .view_loop import ViewLoop

if TYPE_CHECKING:
    from IPython.display import DisplayHandle

    from ..client.responses import ResponseHandle, ResponseResult
    from ..client.session import Session

__all__ = [
    "LiveInspector",
    "footer_pieces",
    "format_cost",
    "session_totals",
    "timeline_markdown",
]

LONG_STRING = 120  # characters of a string value shown before it is shortened
BODY_LIMIT = 4000  # characters of one event's JSON shown


def format_cost(usd: float) -> str:
    """``$0.0123``: enough digits that a small response does not read as free."""
    if usd >= 1:
        return f"${usd:.2f}"
    if usd >= 0.01:
        return f"${usd:.4f}"
    return f"${usd:.6f}"


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f} s"


def _size(size: int) -> str:
    return f"{size} B" if size < 1024 else f"{size / 1024:.1f} kB"


def _shorten(value: Any) -> Any:
    if isinstance(value, dict) and value.get("type") == "input_image":
        url = value.get("image_url")
        if isinstance(url, str):
            # An image by its size and hash: its base64 text would say nothing.
            part = ImagePart.from_url(url)
            shown = f"<{part.label}, sha256 {part.sha256[:16]}>" if part.sha256 else part.label
            return {**{k: _shorten(v) for k, v in value.items()}, "image_url": shown}
    if isinstance(value, str) and len(value) > LONG_STRING:
        return f"{value[:LONG_STRING]}… ({len(value)} characters)"
    if isinstance(value, dict):
        return {key: _shorten(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shorten(item) for item in value]
    return value


def _body(entry: Entry) -> str:
    if entry.event is None:
        return "*(body not kept: over the inspector's memory cap)*"
    text = json.dumps(_shorten(scrub_data(entry.event)), indent=1, ensure_ascii=False)
    if len(text) > BODY_LIMIT:
        text = text[:BODY_LIMIT] + f"\n… ({len(text) - BODY_LIMIT} more characters)"
    return fenced(text, "json")


def _row(number: int, entry: Entry, start: float) -> str:
    arrow = "→ sent" if entry.direction == "sent" else "← received"
    name = inline_code(entry.type)
    if entry.error:
        name = f"**⚠ {name}**"
    if entry.count > 1:
        name += f" x{entry.count} (to +{entry.last_at - start:.3f} s)"
    return f"| {number} | +{entry.at - start:.3f} s | {arrow} | {name} | {_size(entry.size)} |"


def timeline_markdown(timeline: Timeline, *, title: str, bodies: bool = True) -> str:
    """A timeline as Markdown: a header, the latency breakdown, one table row per entry
    (folded runs as one), then each event's JSON."""
    lines = [f"**{safe_inline(title)}**"]
    if timeline.key != "session":
        ids = [*timeline.response_ids, *timeline.item_ids]
        state = "done" if timeline.done else "running"
        lines.append(
            f"turn {inline_code(timeline.key)} ({state})"
            + (" · " + ", ".join(inline_code(i) for i in ids) if ids else "")
        )
        latency = timeline.latency()
        steps = []
        if latency.queued is not None:
            steps.append(f"queued {_seconds(latency.queued)}")
        steps += [
            f"sent → response.created {_seconds(latency.created)}",
            f"→ first delta {_seconds(latency.first_delta)}",
            f"→ done {_seconds(latency.done)}",
            f"total {_seconds(latency.total)}",
        ]
        lines.append("Latency: " + " · ".join(steps))
    if not timeline.entries:
        lines.append("*(no events yet)*")
        return "\n\n".join(lines)
    start = timeline.began_at if timeline.key != "session" else timeline.entries[0].at
    events = sum(entry.count for entry in timeline.entries)
    lines.append(f"{events} events, {_size(timeline.size)}; times from the turn's start.")
    table = ["| # | time | direction | event | size |", "|---|---|---|---|---|"]
    table += [_row(n, e, start) for n, e in enumerate(timeline.entries, start=1)]
    lines.append("\n".join(table))
    if bodies:
        for number, entry in enumerate(timeline.entries, start=1):
            label = f"{number} · {entry.type}" + (" (first of the run)" if entry.count > 1 else "")
            lines.append(f"{inline_code(label)}\n\n{_body(entry)}")
    return "\n\n".join(lines)


def footer_pieces(session: Session, handle: ResponseHandle, result: ResponseResult) -> list[str]:
    """Footer pieces beyond model and status: total time, queue wait, cost (plain text)."""
    pieces = [f"total {result.elapsed:.2f} s"]
    timeline = session.timeline(handle.request_id)
    if timeline is not None:
        queued = timeline.latency().queued
        if queued is not None:
            pieces.append(f"queued {queued:.2f} s")
    prices = pricing.endpoint_prices(session.endpoint, result.model)
    usd = pricing.cost(result.usage, prices)
    if usd:  # None: no price known; 0: nothing was used (a failed answer), nothing to say
        pieces.append(format_cost(usd))
    elif _priceable(session):
        label = pricing.cost_label([result.usage or {}], prices, result.model)
        if label:
            pieces.append(label)  # say which price is missing rather than leave cost out
    return pieces


def _priceable(session: Session) -> bool:
    """Whether answers of ``session`` cost money someone could price (not the offline
    server, not a local model)."""
    return not session.endpoint.offline and not session.endpoint.local_model


def session_totals(session: Session) -> str:
    """``3 responses · 1234 tokens (in 1000, out 234) · $0.0123`` (cost when priced)."""
    usages = [usage for _, usage in session.usages()]
    total = sum(int(u.get("total_tokens") or 0) for u in usages)
    inputs = sum(int(u.get("input_tokens") or 0) for u in usages)
    outputs = sum(int(u.get("output_tokens") or 0) for u in usages)
    count = f"{len(usages)} response" + ("" if len(usages) == 1 else "s")
    text = f"{count} · {total} tokens (in {inputs}, out {outputs})"
    model = str(session.session_config.get("model") or session.model)
    prices = pricing.endpoint_prices(session.endpoint, model)
    usd = pricing.total_cost(usages, prices)
    if usd:  # as in a footer: no "$0.000000" for nothing used
        text += f" · {format_cost(usd)}"
    elif _priceable(session):
        label = pricing.cost_label(usages, prices, model)
        if label:
            text += f" · {label}"
    return text


class LiveInspector:
    """A timeline that re-renders in one output while its turn runs (``--live``).

    ``publish`` receives each Markdown bundle (the inspector pane sets a widget's outputs);
    by default the bundle goes to a display in the current cell, updated by its id.
    """

    def __init__(
        self,
        session: Session,
        key: str | None,
        title: str,
        publish: Callable[[dict[str, str]], None] | None = None,
    ) -> None:
        self.session = session
        self.key = key
        self.title = title
        self.updates = 0
        # The writer (the view loop every view uses): at most five updates a second, and
        # a look every second (a turn may end with no change announced).
        self._loop = ViewLoop(self._update, interval=0.2, idle=1.0)
        first = {"text/markdown": self._markdown(), "text/plain": title}
        if publish is None:
            from IPython.display import display  # only views need IPython

            context = contextvars.copy_context()  # the cell's parent header
            handle: DisplayHandle = display(  # type: ignore[no-untyped-call]
                first, raw=True, display_id=True
            )
            publish = partial(context.run, partial(handle.update, raw=True))
        else:
            publish(first)
        self._publish = publish

    def stop(self) -> None:
        """Stop re-rendering (the view was replaced or closed)."""
        self._loop.stop()

    def _markdown(self) -> str:
        timeline = self.session.timeline(self.key)
        if timeline is None:
            return f"**{safe_inline(self.title)}**\n\n*(no such turn)*"
        self.key = timeline.key  # follow this turn, not whichever one comes next
        return timeline_markdown(timeline, title=self.title, bodies=timeline.done)

    def _update(self) -> bool:
        """The view loop's step: render the timeline again; stop once the turn is done."""
        if self._loop.stopping:
            return False
        timeline = self.session.timeline(self.key)
        self._publish({"text/markdown": self._markdown(), "text/plain": self.title})
        self.updates += 1
        if timeline is None or timeline.done:
            self._loop.stop()
        return True

    def start(self) -> threading.Thread:
        """Re-render after each change (at most every 0.2 s) until the turn ends."""
        unsubscribe = self.session.subscribe(self._loop.wake)

        def run() -> None:
            try:
                self._loop.serve()
            finally:
                unsubscribe()

        thread = threading.Thread(target=run, name="rt_notebook-inspect", daemon=True)
        thread.start()
        return thread
