"""Responses and items as other threads see them: immutable snapshots and request handles.

The Session changes its conversation mirror only on the I/O thread; what it hands to cells,
panels and user code are the frozen :class:`ItemSnapshot` and :class:`ResponseResult`
copies, and a :class:`ResponseHandle` per requested response, whose future the I/O thread
completes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import RealtimeError
from .protocol.events import new_id

if TYPE_CHECKING:
    from .session import Session

__all__ = ["ItemSnapshot", "ResponseHandle", "ResponseResult"]


@dataclass(frozen=True, slots=True)
class ItemSnapshot:
    """An immutable copy of one conversation item."""

    id: str
    type: str
    role: str | None
    status: str | None
    text: str
    call_id: str | None
    name: str | None
    arguments: str | None
    output: str | None
    response_id: str | None

    def as_dict(self) -> dict[str, Any]:
        """The item as plain data (the transcript's item format, as ``Item.as_dict``)."""
        data = dataclasses.asdict(self)
        del data["response_id"]
        return data


@dataclass(frozen=True, slots=True)
class ResponseResult:
    """A finished response: what ``%%realtime --out VAR`` binds."""

    id: str | None
    status: str  # "completed", "cancelled", "failed" or "incomplete"
    status_details: dict[str, Any] | None
    usage: dict[str, Any] | None
    text: str
    items: tuple[ItemSnapshot, ...]
    metadata: dict[str, str] | None
    model: str
    out_of_band: bool
    time_to_first_delta: float | None  # seconds from request to first delta
    elapsed: float  # seconds from request to response.done

    @property
    def function_calls(self) -> list[ItemSnapshot]:
        """The function-call items of this response."""
        return [item for item in self.items if item.type == "function_call"]

    def _repr_markdown_(self) -> str:
        from .render.markdown import safe_inline, safe_markdown

        return safe_markdown(self.text) or f"*({safe_inline(self.status)}, no text)*"


class ResponseHandle:
    """A requested response: wait for it, watch it grow, or cancel it. Thread-safe."""

    def __init__(self, session: Session, params: dict[str, Any], out_of_band: bool) -> None:
        self.session = session
        self.request_id = new_id("req", 12)
        self.params = params  # the ``response`` object of response.create
        self.out_of_band = out_of_band
        self.event_id = new_id("event")  # the client event id of our response.create
        self.response_id: str | None = None  # known once response.created arrives
        self.requested_at = time.monotonic()
        self.first_delta_at: float | None = None
        self.cancel_requested = False
        self._future: concurrent.futures.Future[ResponseResult] = concurrent.futures.Future()

    def __repr__(self) -> str:
        state = self._future.result().status if self.done() else "pending"
        return f"<ResponseHandle {self.response_id or self.request_id} {state}>"

    def done(self) -> bool:
        """Whether the response has finished (or failed)."""
        return self._future.done()

    def wait(self, timeout: float | None = None) -> ResponseResult:
        """Block until ``response.done``; raise :class:`ServerError` if it was rejected.

        Raises :class:`TimeoutError` after ``timeout`` seconds (the response goes on).
        """
        try:
            return self._future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(
                f"no response.done within {timeout} s (the response is still running)"
            ) from None

    def add_done_callback(self, callback: Callable[[ResponseHandle], None]) -> None:
        """Call ``callback(self)`` when the response finishes (on the I/O thread)."""
        self._future.add_done_callback(lambda _: callback(self))

    def __await__(self) -> Generator[Any, None, ResponseResult]:
        return asyncio.wrap_future(self._future).__await__()

    def cancel(self) -> None:
        """Cancel the response: unsent requests are dropped, running ones get
        ``response.cancel``. The handle then finishes with status ``cancelled``."""
        self.session._io.call(self.session._cancel, self)

    @property
    def text(self) -> str:
        """The response's text so far (transcript for audio)."""
        if self.response_id is None:
            return ""
        return self.session.response_text(self.response_id)

    @property
    def status(self) -> str:
        """``queued``, ``in_progress`` or the final status."""
        if self.done():
            try:
                return self._future.result().status
            except RealtimeError:
                return "failed"
        return "in_progress" if self.response_id else "queued"

    @property
    def error(self) -> BaseException | None:
        """The error that failed this request, if any."""
        return self._future.exception() if self.done() else None
