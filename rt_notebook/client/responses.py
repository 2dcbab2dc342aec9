"""Client layer: responses and items as other threads see them, immutable snapshots and
request handles.

The Session changes its conversation mirror only on the I/O thread; what it hands to cells,
panels and user code are the frozen :class:`ItemSnapshot` and :class:`ResponseResult`
copies, and a :class:`ResponseHandle` per requested response, whose future the I/O thread
completes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import queue
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import RealtimeError
from ..protocol.images import ImagePart
from . import result_views

if TYPE_CHECKING:
    from ..protocol.turns import Turn

__all__ = [
    "HandleDriver",
    "HandleOwner",
    "ItemSnapshot",
    "ResponseHandle",
    "ResponseResult",
    "SessionStatus",
    "one_line",
    "status_reason",
]

REASON_LIMIT = 300  # characters of a server's message kept in a footer or an error line


def one_line(text: str, limit: int = REASON_LIMIT) -> str:
    """``text`` scrubbed of keys, its whitespace runs (newlines too) made one space, and
    cut to ``limit`` characters: a server's message fit for a footer or an error line."""
    from ..redaction import scrub

    flat = " ".join(scrub(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def status_reason(status: str | None, details: Any) -> str | None:
    """Why a response with ``status`` and ``status_details`` did not complete, in one line
    (see :attr:`ResponseResult.reason`)."""
    if status in (None, "completed", "in_progress") or not isinstance(details, dict):
        return None
    error = details.get("error")
    said: Any = None
    if isinstance(error, dict):
        said = error.get("message") or error.get("code") or error.get("type")
    said = said or details.get("reason")
    return one_line(str(said)) if said else None


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
    # A user message's images (their labels show where the item is shown).
    images: tuple[ImagePart, ...] = ()
    # Remote MCP items: the server's label, the error, a listing's tools.
    server_label: str | None = None
    error: str | None = None
    tools: tuple[dict[str, str], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The item as plain data (the transcript's item format, as ``Item.as_dict``):
        images described (size, hash), never their bytes."""
        data = {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.name not in ("response_id", "images")
        }
        data["images"] = [image.summary() for image in self.images]
        data["tools"] = [dict(tool) for tool in self.tools]
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
    # Output audio of the message items, joined: PCM16, 24 kHz, mono (b"" for text answers).
    audio: bytes = b""
    audio_dropped: int = 0  # PCM bytes past the mirror's per-item cap, not kept

    @property
    def audio_seconds(self) -> float:
        """How long :attr:`audio` plays, in seconds."""
        from .audio import pcm_seconds

        return pcm_seconds(self.audio)

    def write_wav(self, path: str | Path) -> Path:
        """Write :attr:`audio` to ``path`` as a WAV file (24 kHz mono PCM16); return it."""
        from .audio import write_wav

        return write_wav(path, self.audio)

    @property
    def reason(self) -> str | None:
        """Why the response did not complete, in one line: the server's message (or its
        error code), or the reason it was cut short (``max_output_tokens``,
        ``client_cancelled``); ``None`` when it completed or nobody said. Keys scrubbed."""
        return status_reason(self.status, self.status_details)

    @property
    def function_calls(self) -> list[ItemSnapshot]:
        """The function-call items of this response."""
        return [item for item in self.items if item.type == "function_call"]

    @property
    def tool_requests(self) -> list[ItemSnapshot]:
        """What this response asks the tool runner for: its function calls and its remote
        MCP servers' approval requests."""
        kinds = ("function_call", "mcp_approval_request")
        return [item for item in self.items if item.type in kinds]

    def _repr_markdown_(self) -> str:
        # As a cell shows the answer: drawn by the views (render/items.py), installed by
        # the package (client/result_views.py).
        return result_views.views().markdown(self)

    def _repr_html_(self) -> str | None:
        """A drawing front ends show instead of the Markdown, only for an answer past the
        Markdown limit (as a cell's huge answer): rendering megabytes of Markdown would
        block the page."""
        return result_views.views().html(self)


class HandleDriver(Protocol):
    """What a handle needs of its Session's driver (:class:`~rt_notebook.client.driver.Driver`)."""

    def reading(self) -> AbstractContextManager[object]:
        """The mirror's lock held (no frame is applied meanwhile)."""
        ...

    def cancel(self, turn: Turn) -> concurrent.futures.Future[None]:
        """Cancel ``turn`` (queued: dropped; running: ``response.cancel``)."""
        ...

    def abandon(self, turn: Turn) -> concurrent.futures.Future[None]:
        """Finish ``turn`` as cancelled now, confirmed or not."""
        ...


class HandleOwner(Protocol):
    """What a handle needs of the Session it belongs to (a
    :class:`~rt_notebook.client.session.Session`; an interface, so that this module does not
    depend on the Session's)."""

    @property
    def driver(self) -> HandleDriver: ...

    def subscribe(self, callback: Callable[[Any, Sequence[Any]], None]) -> Callable[[], None]: ...

    def response_items(self, response_id: str) -> list[ItemSnapshot]: ...

    def response_text(self, response_id: str) -> str: ...

    def truncate_item(
        self, item_id: str, *, audio_end_ms: int, content_index: int = 0, timeout: float = 30.0
    ) -> None: ...


class ResponseHandle:
    """A requested response (one turn): wait for it, watch it grow, or cancel it.

    Thread-safe. ``request_id`` is the tag the response carries in its metadata;
    ``item_ids`` the ids of the items the turn adds before it. ``by_server``: a response
    the server started by itself (server VAD), handed out by ``session.on_server_response``.
    """

    def __init__(self, session: HandleOwner, turn: Turn) -> None:
        self.session = session
        self._turn = turn
        self.request_id = turn.tag
        self.params = turn.params  # the ``response`` object of response.create
        self.out_of_band = turn.out_of_band
        self.by_server = turn.by_server
        self._future: concurrent.futures.Future[ResponseResult] = concurrent.futures.Future()
        for request in turn.items:
            request.owner = concurrent.futures.Future()

    @property
    def turn(self) -> Turn:
        """The core's record of this turn (read by the Session's driver)."""
        return self._turn

    def settle(self, outcome: ResponseResult | BaseException) -> None:
        """Finish the handle with a result or an error (the Session's driver does this
        once the turn is over; later calls change nothing)."""
        if self._future.done():
            return
        if isinstance(outcome, BaseException):
            self._future.set_exception(outcome)
        else:
            self._future.set_result(outcome)

    def as_future(self) -> concurrent.futures.Future[ResponseResult]:
        """The handle as a :class:`concurrent.futures.Future` (do not resolve it)."""
        return self._future

    @property
    def item_ids(self) -> list[str]:
        """The ids of the items the turn adds (a committed audio item's once committed)."""
        return [str(request.key) for request in self._turn.items]

    def wait_items(self, timeout: float | None = None) -> list[str]:
        """Block until the server has the items this turn adds; return their ids.

        Raises the turn's error if they were refused or the turn failed before sending.
        """
        for request in self._turn.items:
            try:
                request.owner.result(timeout)
            except concurrent.futures.TimeoutError:
                raise TimeoutError(f"the turn's items were not added within {timeout} s") from None
        return list(self.item_ids)

    @property
    def response_id(self) -> str | None:
        """The server's id of the response, once ``response.created`` named it."""
        return self._turn.response_id

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

    def __iter__(self) -> Iterator[str]:
        """The response's text deltas as they stream (the text so far comes first).

        ``for delta in handle: print(delta, end="")``; ends when the response does.
        """
        deltas: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        unsubscribe = self._watch(deltas.put)
        try:
            while (delta := deltas.get()) is not None:
                yield delta
        finally:
            unsubscribe()

    async def __aiter__(self) -> AsyncIterator[str]:
        """``async for delta in handle``: the deltas, without blocking the event loop."""
        loop = asyncio.get_running_loop()
        deltas: asyncio.Queue[str | None] = asyncio.Queue()

        def put(delta: str | None) -> None:
            loop.call_soon_threadsafe(deltas.put_nowait, delta)

        unsubscribe = self._watch(put)
        try:
            while (delta := await deltas.get()) is not None:
                yield delta
        finally:
            unsubscribe()

    def _watch(self, put: Callable[[str | None], None]) -> Callable[[], None]:
        """Feed ``put`` the text so far, each text delta, then ``None`` at the end."""
        from ..protocol.conversation import ItemDelta

        turn = self._turn

        def on_changes(session: Any, changes: Any) -> None:
            for change in changes:
                if (
                    type(change) is ItemDelta
                    and change.field == "text"
                    and change.response_id is not None
                    and change.response_id == turn.response_id
                ):
                    put(change.delta)

        # Subscribing and reading the text so far under the mirror's lock: no delta is
        # both in the text so far and delivered again.
        with self.session.driver.reading():
            unsubscribe = self.session.subscribe(on_changes)
            so_far = self.text
        if so_far:
            put(so_far)
        self._future.add_done_callback(lambda _: put(None))
        return unsubscribe

    def add_done_callback(self, callback: Callable[[ResponseHandle], None]) -> None:
        """Call ``callback(self)`` when the response finishes (on the I/O thread)."""
        self._future.add_done_callback(lambda _: callback(self))

    def __await__(self) -> Generator[Any, None, ResponseResult]:
        return asyncio.wrap_future(self._future).__await__()

    def cancel(self, *, grace: float | None = None) -> bool:
        """Cancel the response: unsent requests are dropped, running ones get
        ``response.cancel``. The handle then finishes with status ``cancelled``.

        ``grace`` (seconds): wait this long for the server to confirm; without its
        ``response.done`` by then, the response is marked cancelled here all the same
        (its connection is recycled, so it cannot block the next turn). Returns whether
        the response had finished on the server's word: ``False`` when the grace ran out
        (or, without a grace, while the confirmation is still to come).
        """
        self.session.driver.cancel(self._turn)
        if grace is None:
            return self.done()
        concurrent.futures.wait([self._future], timeout=max(0.0, grace))
        confirmed = self.done()
        if not confirmed:
            self.session.driver.abandon(self._turn).result()
        return confirmed

    def output_item_ids(self) -> list[str]:
        """The ids of the response's output items so far (its message, function calls)."""
        if self.response_id is None:
            return []
        return [item.id for item in self.session.response_items(self.response_id)]

    def truncate(self, audio_end_ms: int, *, timeout: float = 30.0) -> str | None:
        """Make the server forget this answer's audio past ``audio_end_ms`` (what the user
        did not hear): ``conversation.item.truncate`` of its first message item. Returns
        that item's id (``None``: no message item yet, nothing to truncate)."""
        if self.response_id is None:
            return None
        for item in self.session.response_items(self.response_id):
            if item.type == "message":
                self.session.truncate_item(item.id, audio_end_ms=audio_end_ms, timeout=timeout)
                return item.id
        return None

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


@dataclass(frozen=True, slots=True)
class SessionStatus:
    """What the connection is doing, for status lines (``%realtime status``, the panel)."""

    state: str  # "connecting", "ready", "reconnecting" or "closed"
    attempt: int  # reconnect attempt under way (0 when none)
    restored: int  # items re-created by the last restore
    renewed_at: float | None  # time.time() of the last renewal
    reason: str | None  # why the connection is (or was last) down

    def describe(self) -> str:
        """One line: ``connected; restored 12 items; renewed at 14:05``."""
        word = "connected" if self.state == "ready" else self.state
        parts = [word + (f" (attempt {self.attempt})" if self.attempt else "")]
        if self.restored:
            parts.append(f"restored {self.restored} items")
        if self.renewed_at is not None:
            parts.append("renewed at " + time.strftime("%H:%M", time.localtime(self.renewed_at)))
        if self.reason and self.state != "ready":
            parts.append(self.reason)
        return "; ".join(parts)
