"""Client layer: ``session.connection()``, the ``openai`` SDK's connection surface on a
Session.

Code written for the SDK's realtime connection runs on the kernel's shared Session::

    async with session.connection() as connection:
        await connection.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        await connection.conversation.item.create(item={...})
        await connection.response.create()
        async for event in connection:
            if event.type == "response.output_text.delta": ...
            elif event.type == "response.done": break

The resources take the same keywords as the SDK's, written in the connection's *shape*
(``shape="ga"``, the default, or ``shape="beta"`` for classic code: ``modalities``,
``response.text.delta``...), whatever dialect the Session speaks:
:mod:`rt_notebook.protocol.translate` rewrites calls for the wire and events for the code.
They hand their events to the Session's client core on the I/O thread: ``response.create``
is a turn (queued behind any running one), ``session.update`` joins the settings restored on
every reconnect once the server accepts it, items join the conversation the cells and panels
see, input audio goes through the Session's own ``append_audio`` / ``commit_audio``;
``send(event)`` takes the path of the matching resource. Iterating yields every server event
of the connection from the moment the context was entered, as typed models of the SDK for
the shape (built here, for this consumer only: the Session's own path stays on plain dicts);
events the shape does not have are left out.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ConfigurationError
from ..protocol import translate
from ..protocol.events import Dialect, Event
from ..protocol.turns import Request, Turn
from .responses import HandleOwner, ResponseHandle

if TYPE_CHECKING:
    from .driver import Driver

__all__ = ["BridgedSession", "SessionConnection"]


class BridgedSession(HandleOwner, Protocol):
    """What the bridge needs of a Session (a :class:`~rt_notebook.client.session.Session`;
    an interface, so that this module does not depend on the Session's, which makes it)."""

    @property
    def driver(self) -> Driver: ...

    @property
    def connected(self) -> bool: ...

    @property
    def dialect(self) -> Dialect: ...

    def connect(self, timeout: float = 30.0) -> object: ...

    def listen(self, callback: Callable[[Event], None]) -> Callable[[], None]: ...

    def append_audio(self, pcm: bytes) -> None: ...

    def clear_audio(self) -> None: ...

    def commit_audio(self, *, respond: bool = True, timeout: float = 30.0) -> object: ...


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
        body = self._connection._for_wire({"type": "session.update", "session": dict(session)})
        self._connection._request(Request("update", body))


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
        from .item_writes import item_request

        event = {"type": "conversation.item.create", "item": dict(item)}
        request = item_request(self._connection._for_wire(event)["item"], previous_item_id)
        self._connection._request(request)

    async def delete(self, *, item_id: str, event_id: str | None = None) -> None:
        event = {"type": "conversation.item.delete", "item_id": item_id}
        self._connection._request(Request("delete", event, key=item_id))

    async def retrieve(self, *, item_id: str, event_id: str | None = None) -> None:
        event = {"type": "conversation.item.retrieve", "item_id": item_id}
        self._connection._request(Request("retrieve", event, key=item_id))

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
        self._connection._request(Request("truncate", event, key=item_id))


class _TranscriptionSessionResource:
    def __init__(self, connection: SessionConnection) -> None:
        self._connection = connection

    async def update(self, *, session: dict[str, Any], event_id: str | None = None) -> None:
        """Refused: a Session is a conversation, a transcription session a connection of
        its own (the error says what GA has instead when the Session speaks GA)."""
        self._connection._for_wire({"type": "transcription_session.update", "session": session})
        raise ConfigurationError(
            "transcription_session.update: a Session holds a conversation; "
            "open a transcription session on a connection of its own"
        )


class _InputAudioBufferResource:
    """The Session's input audio (PCM16, 24 kHz, mono), as the SDK's resource takes it."""

    def __init__(self, connection: SessionConnection) -> None:
        self._connection = connection

    async def append(self, *, audio: str, event_id: str | None = None) -> None:
        """``input_audio_buffer.append`` of base64 ``audio`` (split when over the limit)."""
        self._connection.session_object.append_audio(base64.b64decode(audio, validate=True))

    async def clear(self, *, event_id: str | None = None) -> None:
        self._connection.session_object.clear_audio()

    async def commit(self, *, event_id: str | None = None) -> None:
        """``input_audio_buffer.commit``: the audio so far becomes a user message (ask for
        the answer with ``response.create``, as the SDK's code does)."""
        session = self._connection.session_object
        await asyncio.to_thread(session.commit_audio, respond=False)


class _OutputAudioBufferResource:
    async def clear(self, *, event_id: str | None = None) -> None:
        """Refused: the output audio buffer exists on WebRTC connections only."""
        raise ConfigurationError(
            "output_audio_buffer.clear is for WebRTC connections; over a WebSocket, "
            "cancel the response (response.cancel) and truncate the item instead"
        )


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
        event = {"type": "response.create", "response": dict(response or {})}
        params = dict(self._connection._for_wire(event)["response"])
        params["metadata"] = dict(params.get("metadata") or {})
        turn = Turn([], params, params.get("conversation") == "none")
        session = self._connection.session_object
        handle = ResponseHandle(session, turn)
        self._connection.handles.append(handle)
        session.driver.submit(handle)
        return handle

    async def cancel(self, *, response_id: str | None = None, event_id: str | None = None) -> None:
        """Cancel this connection's responses (or the one named)."""
        for handle in self._connection.handles:
            if response_id is None or handle.response_id == response_id:
                handle.cancel()


class SessionConnection:
    """An async context manager giving the SDK connection's resources on a Session,
    for code written in ``shape`` (``"ga"`` or ``"beta"``)."""

    def __init__(self, session: BridgedSession, shape: str | Dialect = Dialect.GA) -> None:
        try:
            self.shape = Dialect(shape)
        except ValueError:
            raise ConfigurationError(f"shape must be 'ga' or 'beta', not {shape!r}") from None
        self.session_object = session
        self.session = _SessionResource(self)
        self.conversation = _ConversationResource(self)
        self.response = _ResponseResource(self)
        self.transcription_session = _TranscriptionSessionResource(self)
        self.input_audio_buffer = _InputAudioBufferResource(self)
        self.output_audio_buffer = _OutputAudioBufferResource()
        self.handles: list[ResponseHandle] = []
        self._queue: asyncio.Queue[Event] | None = None
        self._parse = _typed(self.shape)
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

    async def send(self, event: Mapping[str, Any]) -> None:
        """Send one client event (a dict in the connection's shape), as the SDK's ``send``:
        it takes the path of the matching resource above."""
        fields = {key: value for key, value in event.items() if key != "type"}
        kind = event.get("type")
        senders: dict[str, Callable[..., Awaitable[Any]]] = {
            "session.update": self.session.update,
            "transcription_session.update": self.transcription_session.update,
            "conversation.item.create": self.conversation.item.create,
            "conversation.item.delete": self.conversation.item.delete,
            "conversation.item.retrieve": self.conversation.item.retrieve,
            "conversation.item.truncate": self.conversation.item.truncate,
            "input_audio_buffer.append": self.input_audio_buffer.append,
            "input_audio_buffer.clear": self.input_audio_buffer.clear,
            "input_audio_buffer.commit": self.input_audio_buffer.commit,
            "output_audio_buffer.clear": self.output_audio_buffer.clear,
            "response.create": self.response.create,
            "response.cancel": self.response.cancel,
        }
        sender = senders.get(str(kind))
        if sender is None:
            raise ConfigurationError(
                f"unknown client event type {kind!r}; the known ones: {', '.join(senders)}"
            )
        await sender(**fields)

    async def recv(self) -> Any:
        """The next server event (a typed model of the SDK for the connection's shape)."""
        if self._queue is None:
            raise RuntimeError("use `async with session.connection() as connection:` first")
        wire = self.session_object.dialect
        while True:
            event = translate.server_event(await self._queue.get(), wire, self.shape)
            if event is not None:
                return self._parse(event)

    async def __aiter__(self) -> AsyncIterator[Any]:
        while True:
            yield await self.recv()

    def _for_wire(self, event: Event) -> Event:
        """``event``, written in the connection's shape, in the Session's dialect (raises
        :class:`~rt_notebook.errors.ConfigurationError`, before anything is sent, when it
        has no equivalent there)."""
        return translate.client_event(event, self.shape, self.session_object.dialect)

    def _request(self, request: Request) -> None:
        """Hand ``request`` to the Session's driver (fire-and-forget, as the SDK's sends:
        a refusal arrives as an ``error`` event)."""
        self.session_object.driver.send(request)
