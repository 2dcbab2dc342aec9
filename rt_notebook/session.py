"""I/O layer: the Session, one Realtime connection shared by cells, panels and code.

A :class:`Session` owns one connection made with the ``openai`` SDK, runs it on the
process-wide I/O thread (:mod:`rt_notebook._ioloop`), folds every server event into a
sans-I/O :class:`~rt_notebook.protocol.conversation.Conversation` mirror and fans the
resulting changes out to subscribers (cell views, chat panels).

Rules it keeps:

* Every public method is thread-safe: state changes only on the I/O thread; other threads
  hand work over with thread-safe calls and read snapshots under ``_lock``.
* In-conversation responses are queued: a ``response.create`` is sent only when no
  response is active, so our own traffic never triggers
  ``conversation_already_has_active_response``. Out-of-band responses
  (``conversation="none"``) are sent at once.
* A server ``error`` that names one of our client events (``error.event_id``) fails the
  request that sent it with :class:`~rt_notebook.errors.ServerError`; other errors stay in
  the event log and reach subscribers.
* Deltas take the fast path: raw bytes, ``json.loads``, dispatch on ``type``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ._ioloop import IOThread
from .errors import RealtimeConnectionError, RealtimeError, ServerError, scrub
from .protocol import payloads
from .protocol.conversation import (
    Change,
    Conversation,
    ErrorReceived,
    Item,
    ItemAdded,
    ItemDeleted,
    ItemDelta,
    ItemDone,
    ItemUpdated,
    ResponseCreated,
    ResponseDone,
    SessionChanged,
)
from .protocol.events import Dialect, Event, new_id
from .responses import ItemSnapshot, ResponseHandle, ResponseResult
from .transport import Endpoint, open_connection, resolve_endpoint

if TYPE_CHECKING:
    from .tools import Tool, Toolbox

__all__ = ["Session", "connect", "get_session"]

log = logging.getLogger("rt_notebook")

# Metadata key that ties a response back to the request that created it.
REQUEST_TAG = "rt_notebook_request"
# Server events kept in the session's event log (deltas are left out: they are many).
EVENT_LOG_SIZE = 1000

Subscriber = Callable[["Session", Sequence[Change]], None]


@dataclass(slots=True)
class _Waiter:
    """A thread waiting for the change that acknowledges one client event."""

    event_id: str
    matches: Callable[[Change], bool]
    future: concurrent.futures.Future[Change]


# The Session --------------------------------------------------------------------------


class Session:
    """One Realtime connection and the conversation it holds.

    Create with :func:`connect` (one default Session per kernel, others by name) or
    directly. Every public method may be called from any thread.
    """

    def __init__(
        self,
        *,
        name: str = "default",
        model: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        websocket_base_url: str | None = None,
        dialect: str | Dialect = Dialect.GA,
        azure_endpoint: str | None = None,
        api_version: str | None = None,
        offline: bool | None = None,
        instructions: str | None = None,
        modalities: Sequence[str] = ("text",),
        voice: str | None = None,
    ) -> None:
        self.name = name
        # The keywords connect() created this Session with (compared on reconnect).
        self.options: dict[str, Any] = {}
        self.endpoint: Endpoint = resolve_endpoint(
            model=model,
            api_key=api_key,
            base_url=base_url,
            websocket_base_url=websocket_base_url,
            dialect=dialect,
            azure_endpoint=azure_endpoint,
            api_version=api_version,
            offline=offline,
        )
        self._config: dict[str, Any] = {
            "instructions": instructions,
            "modalities": list(modalities),
            "voice": voice,
        }
        self._io = IOThread.get()
        # Guards reads of the mirror and the logs from threads other than the I/O thread.
        self._lock = threading.RLock()
        self._conversation = Conversation()
        self._events: deque[Event] = deque(maxlen=EVENT_LOG_SIZE)
        self._subscribers: list[Subscriber] = []
        # I/O-thread state below: touched only on the I/O thread.
        self._connection: Any = None  # the SDK's AsyncRealtimeConnection
        self._outbox: asyncio.Queue[Event] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._ready: asyncio.Future[None] | None = None
        self._queue: deque[ResponseHandle] = deque()  # in-conversation, not yet sent
        self._inflight: ResponseHandle | None = None  # sent, not yet done
        self._handles: dict[str, ResponseHandle] = {}  # request id -> unfinished handle
        self._by_response: dict[str, ResponseHandle] = {}
        self._waiters: list[_Waiter] = []
        self._recorder: IO[bytes] | None = None
        self._close_reason: str | None = None
        self.connected = False
        from .tools import Toolbox  # pydantic-heavy: loaded with the first Session

        # Registered function tools and the runner that answers the model's calls to them.
        self.tools: Toolbox = Toolbox(self)

    def __repr__(self) -> str:
        state = "connected" if self.connected else "closed"
        return f"<rt_notebook.Session {self.name!r} {state}: {self.endpoint.describe()}>"

    # Public methods for the connection -------------------------------------------------

    @property
    def dialect(self) -> Dialect:
        """The dialect spoken on this connection."""
        return self.endpoint.dialect

    @property
    def model(self) -> str:
        """The model (or Azure deployment) this Session asked for."""
        return self.endpoint.model

    def connect(self, timeout: float = 30.0) -> Session:
        """Open the connection and wait for ``session.created``; no-op when connected."""
        self._refuse_on_io_thread("connect")
        if self.connected:
            return self
        future = self._io.submit(self._open())
        try:
            future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise RealtimeConnectionError(
                f"no session.created from {self.endpoint.describe()} within {timeout} s"
            ) from None
        return self

    def close(self) -> None:
        """Close the connection; pending requests fail with :class:`RealtimeConnectionError`."""
        if self._io.in_thread():
            raise RealtimeError("close() cannot be called from the I/O thread")
        with contextlib.suppress(concurrent.futures.TimeoutError):
            self._io.submit(self._close()).result(10)

    def update_session(
        self,
        *,
        instructions: str | None = None,
        modalities: Sequence[str] | None = None,
        voice: str | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Send ``session.update`` and return the session the server confirms."""
        changes: dict[str, Any] = {
            "instructions": instructions,
            "modalities": list(modalities) if modalities is not None else None,
            "voice": voice,
            "tools": tools,
            "tool_choice": tool_choice,
        }
        changes = {key: value for key, value in changes.items() if value is not None}
        self._config.update(changes)
        event = {"type": "session.update", "session": self._session_payload(changes)}
        self._expect(event, lambda change: isinstance(change, SessionChanged), timeout)
        with self._lock:
            return copy.deepcopy(self._conversation.session)

    # Public methods for function tools ---------------------------------------------

    def tool(
        self,
        function: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        approval: bool = False,
        timeout: float = 30.0,
    ) -> Any:
        """Decorator: offer a function to the model in this Session (see :mod:`.tools`).

        ``@session.tool`` or ``@session.tool(approval=True, timeout=10)``.
        """
        return self.tools.tool(
            function, name=name, description=description, approval=approval, timeout=timeout
        )

    def register_tool(
        self,
        function: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        approval: bool = False,
        timeout: float = 30.0,
    ) -> Tool:
        """Offer ``function`` to the model; a connected Session sends ``session.update``."""
        return self.tools.register(
            function, name=name, description=description, approval=approval, timeout=timeout
        )

    # Public methods for conversation items -------------------------------------------

    def add_message(
        self,
        text: str,
        *,
        role: str = "user",
        after: str | None = None,
        timeout: float = 30.0,
    ) -> str:
        """Add a message item; return its id once the server has it.

        ``after`` places it after that item id (``"root"``: at the beginning).
        """
        item = payloads.message_item(text, role, self.dialect)
        return self.add_item(item, after=after, timeout=timeout)

    def add_function_output(
        self, call_id: str, output: str, *, after: str | None = None, timeout: float = 30.0
    ) -> str:
        """Add a ``function_call_output`` item for ``call_id``; return its id."""
        item = {"type": "function_call_output", "call_id": call_id, "output": output}
        return self.add_item(item, after=after, timeout=timeout)

    def add_item(
        self, item: dict[str, Any], *, after: str | None = None, timeout: float = 30.0
    ) -> str:
        """Add any conversation item (API shape); return its id once the server has it."""
        item = dict(item)
        item_id = item.setdefault("id", new_id("item"))
        event: Event = {"type": "conversation.item.create", "item": item}
        if after is not None:
            event["previous_item_id"] = after
        self._expect(
            event,
            lambda change: isinstance(change, ItemAdded | ItemDone) and change.item_id == item_id,
            timeout,
        )
        return str(item_id)

    def delete_item(self, item_id: str, *, timeout: float = 30.0) -> None:
        """Delete an item from the conversation."""
        event = {"type": "conversation.item.delete", "item_id": item_id}
        self._expect(
            event,
            lambda change: isinstance(change, ItemDeleted) and change.item_id == item_id,
            timeout,
        )

    def retrieve_item(self, item_id: str, *, timeout: float = 30.0) -> ItemSnapshot:
        """Ask the server for an item's full state; return the refreshed snapshot."""
        event = {"type": "conversation.item.retrieve", "item_id": item_id}
        self._expect(
            event,
            lambda change: isinstance(change, ItemDone) and change.item_id == item_id,
            timeout,
        )
        snapshot = self.item(item_id)
        assert snapshot is not None  # the acknowledgement put it in the mirror
        return snapshot

    def truncate_item(
        self, item_id: str, *, audio_end_ms: int, content_index: int = 0, timeout: float = 30.0
    ) -> None:
        """Truncate an assistant audio item so the server forgets audio never heard."""
        event = {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": content_index,
            "audio_end_ms": audio_end_ms,
        }
        self._expect(
            event,
            lambda change: isinstance(change, ItemUpdated) and change.item_id == item_id,
            timeout,
        )

    # Public methods for responses ----------------------------------------------------

    def create_response(
        self,
        *,
        instructions: str | None = None,
        modalities: Sequence[str] | None = None,
        voice: str | None = None,
        tools: Sequence[dict[str, Any] | str | Tool] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        max_output_tokens: int | str | None = None,
        metadata: dict[str, str] | None = None,
        conversation: str | None = None,
        input: list[dict[str, Any]] | None = None,
    ) -> ResponseHandle:
        """Request a response (queued behind any active one); return its handle at once.

        ``conversation="none"`` asks for an out-of-band response: it does not enter the
        conversation, may run while another response is active, and may take ``input``
        items (or ``{"type": "item_reference", "id": ...}`` references) as its context.
        ``tools`` entries may be definitions, registered tool names or Tool objects.
        """
        out_of_band = conversation == "none"
        tool_schemas = None if tools is None else self.tools.schemas(tools)
        params = payloads.response_settings(
            self.dialect,
            instructions=instructions,
            wanted_modalities=modalities,
            voice=voice,
            tools=tool_schemas,
            tool_choice=tool_choice,
            max_output_tokens=max_output_tokens,
            conversation=conversation,
            input_items=input,
        )
        handle = ResponseHandle(self, params, out_of_band)
        params["metadata"] = {**(metadata or {}), REQUEST_TAG: handle.request_id}
        if not out_of_band:
            # A tool round's follow-up asks for the same as this response did.
            self.tools._track(
                handle,
                {
                    "instructions": instructions,
                    "modalities": modalities,
                    "voice": voice,
                    "tools": tool_schemas,
                    "tool_choice": tool_choice,
                    "max_output_tokens": max_output_tokens,
                    "metadata": metadata,
                },
            )
        self._io.call(self._submit_response, handle).result()
        return handle

    def ask(
        self,
        text: str,
        *,
        role: str = "user",
        after: str | None = None,
        **overrides: Any,
    ) -> ResponseHandle:
        """Add ``text`` as a message, then request a response (see :meth:`create_response`)."""
        self.add_message(text, role=role, after=after)
        return self.create_response(**overrides)

    def cancel(self) -> None:
        """Cancel every queued and running response of this Session."""
        self._io.call(self._cancel_all).result()

    # Public methods for reading -------------------------------------------------------

    @property
    def items(self) -> list[ItemSnapshot]:
        """The conversation's items in server order."""
        with self._lock:
            return [self._snapshot(item) for item in self._conversation.items]

    def item(self, item_id: str) -> ItemSnapshot | None:
        """One item (in the conversation or out of band), or ``None``."""
        with self._lock:
            item = self._conversation.item(item_id)
            return None if item is None else self._snapshot(item)

    def item_index(self, item_id: str) -> int | None:
        """An item's position in the conversation, or ``None``."""
        with self._lock:
            return self._conversation.index_of(item_id)

    def response_text(self, response_id: str) -> str:
        """The text (or transcript) of a response so far."""
        with self._lock:
            return self._conversation.response_text(response_id)

    def response_items(self, response_id: str) -> list[ItemSnapshot]:
        """The output items of a response so far."""
        with self._lock:
            return [self._snapshot(i) for i in self._conversation.response_items(response_id)]

    def response_info(self, response_id: str) -> dict[str, Any] | None:
        """Status, usage and metadata of a response, or ``None`` if unknown."""
        with self._lock:
            response = self._conversation.responses.get(response_id)
            return None if response is None else copy.deepcopy(response.as_dict())

    @property
    def active_response_id(self) -> str | None:
        """The in-conversation response now running, if any."""
        with self._lock:
            return self._conversation.active_response_id

    @property
    def pending_responses(self) -> int:
        """Requested responses not yet finished (queued or running)."""
        with self._lock:
            return len(self._handles)

    @property
    def events(self) -> list[Event]:
        """Recent server events (deltas left out), oldest first."""
        with self._lock:
            return list(self._events)

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Every server error received, oldest first."""
        with self._lock:
            return copy.deepcopy(self._conversation.errors)

    @property
    def session_config(self) -> dict[str, Any]:
        """The session configuration the server last reported."""
        with self._lock:
            return copy.deepcopy(self._conversation.session)

    # Public methods for observers -------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(session, changes)`` on the I/O thread after each server event.

        Callbacks must be quick (mark something dirty, wake a thread): they run on the
        I/O thread. Returns a function that unsubscribes.
        """
        with self._lock:
            self._subscribers = [*self._subscribers, callback]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not callback]

        return unsubscribe

    def record(self, path: str | Path) -> None:
        """Write every event, sent and received, to ``path`` as JSON lines from now on."""
        stream = Path(path).open("ab")  # noqa: SIM115 - closed by stop_recording/close
        self._io.call(self._set_recorder, stream).result()

    def stop_recording(self) -> None:
        """Stop :meth:`record`."""
        self._io.call(self._set_recorder, None).result()

    # I/O thread: connection -------------------------------------------------------------

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        self._close_reason = None
        self._conversation_reset()
        try:
            self._connection = await open_connection(self.endpoint).enter()
        except Exception as exc:
            raise RealtimeConnectionError(
                f"could not connect to {self.endpoint.describe()}: {exc}"
            ) from None
        self._outbox = asyncio.Queue()
        self._tasks = [
            loop.create_task(self._read_loop(self._connection)),
            loop.create_task(self._write_loop(self._connection, self._outbox)),
        ]
        await self._ready  # session.created, or the error that closed the connection
        self.connected = True
        payload = self._session_payload(self._config)
        if payload:
            # connect() returns once the server has taken the configuration, so a later
            # update_session() cannot mistake this update's acknowledgement for its own.
            event: Event = {
                "type": "session.update",
                "event_id": new_id("event"),
                "session": payload,
            }
            waiter = _Waiter(
                event["event_id"],
                lambda change: isinstance(change, SessionChanged),
                concurrent.futures.Future(),
            )
            self._send_with_waiter(event, waiter)
            await asyncio.wrap_future(waiter.future)

    def _conversation_reset(self) -> None:
        with self._lock:
            if self._conversation.items:
                # A new connection is a new conversation on the server: say so.
                log.warning(
                    "rt_notebook: Session %r reconnected; the server starts a new, empty "
                    "conversation (%d earlier items are gone).",
                    self.name,
                    len(self._conversation.items),
                )
            self._conversation = Conversation()
            self._events.clear()

    async def _read_loop(self, connection: Any) -> None:
        reason = "the connection closed"
        try:
            while True:
                self._on_raw(await connection.recv_bytes())
        except asyncio.CancelledError:
            reason = "the session was closed"
            raise
        except Exception as exc:  # websockets.ConnectionClosed and friends
            reason = self._describe_close(exc)
        finally:
            self._on_closed(reason)

    def _describe_close(self, exc: Exception) -> str:
        rcvd = getattr(exc, "rcvd", None)
        errors = self._conversation.errors
        if errors and not errors[-1].get("event_id"):
            # The service sends an error just before closing (bad key, bad model).
            return str(ServerError(errors[-1]))
        if rcvd is not None:
            return f"the server closed the connection ({rcvd.code} {rcvd.reason})".strip()
        return f"the connection failed: {exc}"

    async def _write_loop(self, connection: Any, outbox: asyncio.Queue[Event]) -> None:
        # One writer keeps client events in the order they were issued.
        while True:
            event = await outbox.get()
            try:
                await connection.send(event)
            except Exception as exc:
                self._fail_event(
                    event.get("event_id"), RealtimeConnectionError(f"send failed: {exc}")
                )

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        for task in self._tasks:
            task.cancel()
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()
        self._on_closed("the session was closed")
        self._set_recorder(None)

    def _on_closed(self, reason: str) -> None:
        self.connected = False
        self._close_reason = scrub(reason)
        # The writer waits on the outbox forever: stop it with the connection, or it is
        # left pending for the garbage collector to find ("Task was destroyed…").
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        error = RealtimeConnectionError(self._close_reason)
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(error)
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_exception(error)
        self._waiters.clear()
        for handle in list(self._handles.values()):
            self._fail(handle, error)
        self._queue.clear()
        self._inflight = None

    # I/O thread: sending ------------------------------------------------------------

    def _send(self, event: Event) -> None:
        if self._outbox is None or not self.connected:
            raise RealtimeConnectionError(
                f"not connected ({self._close_reason or 'connect() was not called'})"
            )
        event.setdefault("event_id", new_id("event"))
        if self._recorder is not None:
            self._record(b"sent", json.dumps(event).encode())
        self._outbox.put_nowait(event)

    def _expect(self, event: Event, matches: Callable[[Change], bool], timeout: float) -> Change:
        """Send ``event`` and block until a change ``matches`` (or its error arrives)."""
        self._refuse_on_io_thread(event["type"])
        self._ensure_connected()
        event["event_id"] = new_id("event")
        waiter = _Waiter(event["event_id"], matches, concurrent.futures.Future())
        self._io.call(self._send_with_waiter, event, waiter).result()
        try:
            return waiter.future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(
                f"no acknowledgement of {event['type']} within {timeout} s"
            ) from None

    def _send_with_waiter(self, event: Event, waiter: _Waiter) -> None:
        self._waiters.append(waiter)
        try:
            self._send(event)
        except RealtimeError:
            self._waiters.remove(waiter)
            raise

    def _submit_response(self, handle: ResponseHandle) -> None:
        if not self.connected:
            raise RealtimeConnectionError(f"not connected ({self._close_reason or 'closed'})")
        with self._lock:
            self._handles[handle.request_id] = handle
        if handle.out_of_band:
            self._send_response_create(handle)
        else:
            self._queue.append(handle)
            self._pump()

    def _pump(self) -> None:
        """Send the next queued response.create if nothing is active."""
        while self._queue and self._inflight is None and not self._conversation.active_response_id:
            handle = self._queue.popleft()
            if handle.cancel_requested:
                self._finish_locally(handle, "cancelled")
                continue
            self._inflight = handle
            self._send_response_create(handle)

    def _send_response_create(self, handle: ResponseHandle) -> None:
        event = {"type": "response.create", "event_id": handle.event_id, "response": handle.params}
        try:
            self._send(event)
        except RealtimeError as exc:
            self._fail(handle, exc)

    def _cancel(self, handle: ResponseHandle) -> None:
        if handle.done():
            return
        handle.cancel_requested = True
        if handle in self._queue:
            self._queue.remove(handle)
            self._finish_locally(handle, "cancelled")
            return
        cancel: Event = {"type": "response.cancel"}
        if handle.response_id is not None:
            cancel["response_id"] = handle.response_id
        elif handle.out_of_band:
            return  # cancelled as soon as response.created names it
        with contextlib.suppress(RealtimeError):
            self._send(cancel)

    def _cancel_all(self) -> None:
        for handle in [*self._queue, *self._handles.values()]:
            self._cancel(handle)

    def _set_recorder(self, stream: IO[bytes] | None) -> None:
        if self._recorder is not None:
            self._recorder.close()
        self._recorder = stream

    def _record(self, direction: bytes, data: bytes) -> None:
        assert self._recorder is not None
        self._recorder.write(b'{"direction": "' + direction + b'", "data": ' + data + b"}\n")

    # I/O thread: receiving ----------------------------------------------------------

    def _on_raw(self, raw: bytes) -> None:
        if self._recorder is not None:
            self._record(b"received", raw)
        event = json.loads(raw)
        event_type: str = event.get("type", "")
        with self._lock:
            changes = self._conversation.apply(event)
            if not event_type.endswith(".delta"):
                self._events.append(event)
        if event_type == "session.created" and self._ready is not None and not self._ready.done():
            self._ready.set_result(None)
        for change in changes:
            self._route(change)
        for subscriber in self._subscribers:
            try:
                subscriber(self, changes)
            except Exception:  # a broken view must not break the connection
                log.exception("rt_notebook subscriber %r failed", subscriber)

    def _route(self, change: Change) -> None:
        if isinstance(change, ItemDelta):
            if change.response_id is not None:
                handle = self._by_response.get(change.response_id)
                if handle is not None and handle.first_delta_at is None:
                    handle.first_delta_at = time.monotonic()
            return
        if isinstance(change, ResponseCreated):
            self._on_response_created(change.response_id)
        elif isinstance(change, ResponseDone):
            self._on_response_done(change.response_id)
        elif isinstance(change, ErrorReceived):
            self._on_error(change)
        if self._waiters:
            for waiter in [w for w in self._waiters if w.matches(change)]:
                self._waiters.remove(waiter)
                if not waiter.future.done():
                    waiter.future.set_result(change)

    def _on_response_created(self, response_id: str) -> None:
        response = self._conversation.responses[response_id]
        tag = (response.metadata or {}).get(REQUEST_TAG)
        handle = self._handles.get(tag) if tag else None
        if handle is None and response.conversation_id is not None:
            # Servers that do not echo metadata: responses are serialised, so the
            # in-flight request is the one this response answers.
            inflight = self._inflight
            if inflight is not None and inflight.response_id is None:
                handle = inflight
        if handle is None:
            return  # started by someone else (server VAD, another client)
        handle.response_id = response_id
        self._by_response[response_id] = handle
        if handle.cancel_requested:
            self._send({"type": "response.cancel", "response_id": response_id})

    def _on_response_done(self, response_id: str) -> None:
        handle = self._by_response.pop(response_id, None)
        if handle is not None:
            if handle is self._inflight:
                self._inflight = None
            self._complete(handle)
        self._pump()

    def _on_error(self, change: ErrorReceived) -> None:
        event_id = change.client_event_id
        if not event_id:
            return
        if self._inflight is not None and self._inflight.event_id == event_id:
            handle = self._inflight
            self._inflight = None
            if change.error.get("code") == "conversation_already_has_active_response":
                # Someone else's response is running: wait for it, then try again.
                self._queue.appendleft(handle)
                return
            self._fail(handle, ServerError(change.error))
            self._pump()
            return
        for handle in self._handles.values():
            if handle.event_id == event_id:
                self._fail(handle, ServerError(change.error))
                return
        self._fail_event(event_id, ServerError(change.error))

    def _fail_event(self, event_id: str | None, error: RealtimeError) -> None:
        for waiter in [w for w in self._waiters if w.event_id == event_id]:
            self._waiters.remove(waiter)
            if not waiter.future.done():
                waiter.future.set_exception(error)

    # I/O thread: finishing handles -----------------------------------------------------

    def _complete(self, handle: ResponseHandle) -> None:
        assert handle.response_id is not None
        with self._lock:
            self._handles.pop(handle.request_id, None)
            response = self._conversation.responses[handle.response_id]
            items = tuple(
                self._snapshot(item)
                for item in self._conversation.response_items(handle.response_id)
            )
            metadata = dict(response.metadata or {})
            metadata.pop(REQUEST_TAG, None)
            result = ResponseResult(
                id=response.id,
                status=response.status,
                status_details=copy.deepcopy(response.status_details),
                usage=copy.deepcopy(response.usage),
                text=self._conversation.response_text(response.id),
                items=items,
                metadata=metadata or None,
                model=str(self._conversation.session.get("model") or self.model),
                out_of_band=handle.out_of_band,
                time_to_first_delta=_elapsed(handle.requested_at, handle.first_delta_at),
                elapsed=time.monotonic() - handle.requested_at,
            )
        handle._future.set_result(result)

    def _finish_locally(self, handle: ResponseHandle, status: str) -> None:
        with self._lock:
            self._handles.pop(handle.request_id, None)
        handle._future.set_result(
            ResponseResult(
                id=None,
                status=status,
                status_details={"type": status, "reason": "client_cancelled_before_sending"},
                usage=None,
                text="",
                items=(),
                metadata=None,
                model=self.model,
                out_of_band=handle.out_of_band,
                time_to_first_delta=None,
                elapsed=time.monotonic() - handle.requested_at,
            )
        )

    def _fail(self, handle: ResponseHandle, error: BaseException) -> None:
        with self._lock:
            self._handles.pop(handle.request_id, None)
        if handle.response_id is not None:
            self._by_response.pop(handle.response_id, None)
        if not handle._future.done():
            handle._future.set_exception(error)

    # Helpers ---------------------------------------------------------------------------

    def _refuse_on_io_thread(self, what: str) -> None:
        if self._io.in_thread():
            raise RealtimeError(
                f"{what} blocks, so it cannot run on the I/O thread (inside a subscriber)"
            )

    def _ensure_connected(self) -> None:
        if not self.connected:
            self.connect()

    @staticmethod
    def _snapshot(item: Item) -> ItemSnapshot:
        return ItemSnapshot(**item.as_dict(), response_id=item.response_id)

    def _session_payload(self, config: dict[str, Any]) -> dict[str, Any]:
        """A ``session.update`` body for ``config`` in this connection's dialect."""
        tools = None
        if config.get("tools") is not None or len(self.tools.registry):
            # Hand-written definitions plus every registered tool, always as a whole list.
            tools = self.tools.session_schemas(self._config.get("tools"))
        return payloads.session_settings(
            self.dialect,
            instructions=config.get("instructions"),
            wanted_modalities=config.get("modalities"),
            voice=config.get("voice"),
            tools=tools,
            tool_choice=config.get("tool_choice"),
        )


def _elapsed(start: float, end: float | None) -> float | None:
    return None if end is None else end - start


# The per-kernel registry --------------------------------------------------------------

_sessions: dict[str, Session] = {}
_sessions_lock = threading.Lock()


def connect(name: str = "default", *, timeout: float = 30.0, **options: Any) -> Session:
    """Return the connected Session called ``name``, creating it on first use.

    ``options`` are :class:`Session` keywords (model, api_key, base_url,
    websocket_base_url, dialect, azure_endpoint, api_version, offline, instructions,
    modalities, voice). Passing options for an existing name replaces that Session with a
    new connection. With no ``OPENAI_API_KEY`` and no URL, the embedded offline server is
    started in this process (and said so once).
    """
    with _sessions_lock:
        session = _sessions.get(name)
        if session is not None and options and options != session.options:
            session.close()
            session = None
        if session is None:
            session = _sessions[name] = Session(name=name, **options)
            session.options = options
    session.connect(timeout)
    if session.endpoint.offline:
        _announce_offline(session)
    return session


def get_session(name: str = "default") -> Session | None:
    """The Session called ``name`` if one was created."""
    with _sessions_lock:
        return _sessions.get(name)


_announced = threading.Event()


def _announce_offline(session: Session) -> None:
    if _announced.is_set():
        return
    _announced.set()
    note = (
        f"no OPENAI_API_KEY and no URL, so this kernel talks to {session.endpoint.describe()}. "
        "Set OPENAI_API_KEY to use the real service."
    )
    shell = None
    if threading.current_thread() is threading.main_thread():  # a cell is running
        with contextlib.suppress(ImportError):
            from IPython import get_ipython

            shell = get_ipython()
    if shell is None:
        log.warning("rt_notebook: %s", note)
        return
    from IPython.display import display

    # A small note in the cell that connected, not an error-looking stderr box.
    bundle = {"text/markdown": f"*rt_notebook: {note}*", "text/plain": f"rt_notebook: {note}"}
    display(bundle, raw=True)  # type: ignore[no-untyped-call]
