"""I/O layer: ``session.connection()``, the ``openai`` SDK's connection surface on a Session.

Code written for the SDK's realtime connection runs on the kernel's shared Session::

    async with session.connection() as connection:
        await connection.session.update(session={"modalities": ["text"]})
        await connection.conversation.item.create(item={...})
        await connection.response.create()
        async for event in connection:
            if event.type == "response.text.delta": ...
            elif event.type == "response.done": break

The resources take the same keywords as the SDK's (in the Session's dialect) and hand their
events to the Session's client core on the I/O thread: ``response.create`` is a turn
(queued behind any running one), ``session.update`` joins the settings restored on every
reconnect once the server accepts it, items join the conversation the cells and panels see.
Iterating yields every server event of the connection from the moment the context was
entered, as typed models of the SDK (built here, for this consumer only: the Session's own
path stays on plain dicts).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .protocol.events import Dialect, Event
from .protocol.turns import Request, Turn
from .responses import ResponseHandle

if TYPE_CHECKING:
    from .session import Session

__all__ = ["SessionConnection"]


def _typed(dialect: Dialect) -> Callable[[Event], Any]:
    """The SDK's parser of server events in ``dialect`` (the model the SDK yields)."""
    from openai._models import construct_type_unchecked

    if dialect is Dialect.BETA:
        from openai.types.beta.realtime.realtime_server_event import RealtimeServerEvent
    else:
        from openai.types.realtime.realtime_server_event import (
            RealtimeServerEvent,
        )

    def parse(event: Event) -> Any:
        return construct_type_unchecked(value=event, type_=RealtimeServerEvent)  # type: ignore[arg-type]

    return parse


def _given(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


class _SessionResource:
    def __init__(self, connection: SessionConnection) -> None:
        self._connection = connection

    async def update(self, *, session: dict[str, Any], event_id: str | None = None) -> None:
        """``session.update``: once the server accepts it, part of the settings restored
        on reconnect (not checked: raw access, as the SDK's own)."""
        body = {"type": "session.update", "session": dict(session)}
        self._connection._hand(lambda core: core.request(Request("update", body), time.time()))


class _ItemResource:
    def __init__(self, connection: SessionConnection) -> None:
        self._connection = connection

    async def create(
        self,
        *,
        item: dict[str, Any],
        previous_item_id: str | None = None,
        event_id: str | None = None,
    ) -> None:
        """``conversation.item.create`` (waits its turn while a turn runs)."""
        from ._items import item_request

        request = item_request(dict(item), previous_item_id)
        self._connection._hand(lambda core: core.add_item(request, time.time()))

    async def delete(self, *, item_id: str, event_id: str | None = None) -> None:
        event = {"type": "conversation.item.delete", "item_id": item_id}
        self._connection._hand(
            lambda core: core.request(Request("delete", event, key=item_id), time.time())
        )

    async def retrieve(self, *, item_id: str, event_id: str | None = None) -> None:
        event = {"type": "conversation.item.retrieve", "item_id": item_id}
        request = Request("retrieve", event, key=item_id)
        self._connection._hand(lambda core: core.request(request, time.time()))

    async def truncate(
        self,
        *,
        item_id: str,
        audio_end_ms: int,
        content_index: int = 0,
        event_id: str | None = None,
    ) -> None:
        event = {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": content_index,
            "audio_end_ms": audio_end_ms,
        }
        request = Request("truncate", event, key=item_id)
        self._connection._hand(lambda core: core.request(request, time.time()))


class _ConversationResource:
    def __init__(self, connection: SessionConnection) -> None:
        self.item = _ItemResource(connection)


class _ResponseResource:
    def __init__(self, connection: SessionConnection) -> None:
        self._connection = connection

    async def create(
        self, *, response: dict[str, Any] | None = None, event_id: str | None = None
    ) -> ResponseHandle:
        """``response.create`` as a turn; returns its handle (iterable for text deltas)."""
        params = dict(response or {})
        params["metadata"] = dict(params.get("metadata") or {})
        turn = Turn([], params, params.get("conversation") == "none")
        session = self._connection.session_object
        handle = ResponseHandle(session, turn)
        self._connection.handles.append(handle)
        session._io.call(session._submit, handle, False)
        return handle

    async def cancel(self, *, response_id: str | None = None, event_id: str | None = None) -> None:
        """Cancel this connection's responses (or the one named)."""
        for handle in self._connection.handles:
            if response_id is None or handle.response_id == response_id:
                handle.cancel()


class SessionConnection:
    """An async context manager giving the SDK connection's resources on a Session."""

    def __init__(self, session: Session) -> None:
        self.session_object = session
        self.session = _SessionResource(self)
        self.conversation = _ConversationResource(self)
        self.response = _ResponseResource(self)
        self.handles: list[ResponseHandle] = []
        self._queue: asyncio.Queue[Event] | None = None
        self._parse = _typed(session.dialect)
        self._unlisten: Callable[[], None] | None = None

    async def __aenter__(self) -> SessionConnection:
        session = self.session_object
        if not session.connected:
            await asyncio.to_thread(session.connect)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._queue = queue

        def listen(event: Event) -> None:  # on the I/O thread
            loop.call_soon_threadsafe(queue.put_nowait, event)

        self._unlisten = session.listen(listen)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None

    async def recv(self) -> Any:
        """The next server event (a typed model of the SDK)."""
        if self._queue is None:
            raise RuntimeError("use `async with session.connection() as connection:` first")
        return self._parse(await self._queue.get())

    async def __aiter__(self) -> AsyncIterator[Any]:
        while True:
            yield await self.recv()

    def _hand(self, action: Callable[[Any], None]) -> None:
        """Run ``action(core)`` on the I/O thread, then send what it queued."""
        session = self.session_object
        session._io.call(session._with_flush, action, session._driver.core)
