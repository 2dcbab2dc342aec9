"""Sans-I/O live responses of the embedded server: outputs that grow as a backend streams
them, not planned upfront.

The built-in responders plan a whole response when it is created
(:mod:`rt_notebook.server.plan`). A :class:`LiveResponder` (the Chat Completions backend,
:mod:`rt_notebook.server.chat_backend`) instead streams :data:`LiveUpdate`\\ s while the
response runs; the driver feeds them to the connection state, which applies them here with
:func:`apply_updates`: text deltas grow a message stream, call deltas grow function-call
streams, :class:`Finished` closes the response's outputs. The streamer
(:mod:`rt_notebook.server.streaming`) sends what has arrived and waits for the rest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterable
from typing import Any, Protocol, TypeAlias, runtime_checkable

from rt_notebook.protocol.events import Event, new_id
from rt_notebook.server import shapes
from rt_notebook.server.errors import ErrorInfo
from rt_notebook.server.plan import ActiveResponse, OutputKind, OutputStream
from rt_notebook.server.responders import ResponseRequest

__all__ = [
    "AUDIO_NOTICE",
    "CallDelta",
    "Finished",
    "LiveError",
    "LiveResponder",
    "LiveUpdate",
    "TextDelta",
    "UsageReport",
    "apply_updates",
    "failure_details",
    "live_failure",
]

AUDIO_NOTICE = "(This local model answers in text only: no audio is generated.)\n\n"


@dataclasses.dataclass(frozen=True)
class TextDelta:
    """A piece of the assistant's text."""

    text: str


@dataclasses.dataclass(frozen=True)
class CallDelta:
    """A piece of the ``index``-th function call (its id and name come with its first piece)."""

    index: int
    arguments: str = ""
    call_id: str | None = None
    name: str | None = None


@dataclasses.dataclass(frozen=True)
class Finished:
    """The backend is done: ``reason`` is a Chat Completions ``finish_reason``."""

    reason: str


@dataclasses.dataclass(frozen=True)
class UsageReport:
    """Token counts the backend reported."""

    input_tokens: int
    output_tokens: int


LiveUpdate: TypeAlias = TextDelta | CallDelta | Finished | UsageReport


class LiveError(Exception):
    """A live backend failed; ``info`` is the ``error`` the client is sent."""

    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(info.message)
        self.info = info


@runtime_checkable
class LiveResponder(Protocol):
    """A backend that streams each response while it runs (see the module docstring)."""

    @property
    def name(self) -> str: ...

    def describe(self) -> str:
        """One line for users: which model answers, and where."""
        ...

    def prepare(self, request: ResponseRequest) -> Any:
        """Turn ``request`` into what :meth:`stream` sends (pure; runs when it is created)."""
        ...

    def stream(self, prepared: Any) -> AsyncIterator[list[LiveUpdate]]:
        """The updates of one response as they come; raises :class:`LiveError` on failure."""
        ...


def apply_updates(response: ActiveResponse, updates: Iterable[LiveUpdate]) -> None:
    """Grow ``response``'s streams with ``updates`` (ignored once it finished)."""
    if response.complete:
        return
    for update in updates:
        if isinstance(update, TextDelta):
            if update.text:
                _text_stream(response).deltas.append(update.text)
        elif isinstance(update, CallDelta):
            stream = _call_stream(response, update)
            if update.arguments:
                stream.deltas.append(update.arguments)
        elif isinstance(update, UsageReport):
            response.usage = shapes.usage(
                input_text=update.input_tokens,
                input_audio=0,
                output_text=update.output_tokens,
                output_audio=0,
            )
        else:
            _finish(response, update.reason)


def failure_details(info: ErrorInfo) -> Event:
    """``status_details`` of a response that failed with ``info``: with the message too,
    so the answer's footer can say why (the ``error`` event before it names no event)."""
    return {
        "type": "failed",
        "error": {"type": info.type, "code": info.code, "message": info.message},
    }


def live_failure(exc: BaseException) -> ErrorInfo:
    """The error of a backend that failed in a way it did not describe itself."""
    return ErrorInfo(
        code="backend_error",
        message=f"The model backend failed: {type(exc).__name__}.",
        type="server_error",
    )


def _text_stream(response: ActiveResponse) -> OutputStream:
    last = response.streams[-1] if response.streams else None
    if last is not None and last.kind is OutputKind.TEXT and not last.complete:
        return last
    stream = OutputStream(
        kind=OutputKind.TEXT,
        item={
            "id": new_id("item"),
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        },
        deltas=[],
        complete=False,
    )
    response.streams.append(stream)
    return stream


def _call_stream(response: ActiveResponse, update: CallDelta) -> OutputStream:
    stream = response.calls.get(update.index)
    if stream is not None:
        if update.name and not stream.name:
            stream.name = stream.item["name"] = update.name
        return stream
    for earlier in response.streams:
        if earlier.kind is OutputKind.TEXT:
            earlier.complete = True  # the model moved on to calling tools
    name = update.name or ""
    stream = OutputStream(
        kind=OutputKind.FUNCTION_CALL,
        item={
            "id": new_id("item"),
            "type": "function_call",
            "status": "in_progress",
            "name": name,
            "call_id": update.call_id or new_id("call", 16),
            "arguments": "",
        },
        deltas=[],
        name=name,
        complete=False,
    )
    response.calls[update.index] = stream
    response.streams.append(stream)
    return stream


def _finish(response: ActiveResponse, reason: str) -> None:
    for stream in response.streams:
        stream.complete = True
    response.complete = True
    if reason == "length":
        response.budget_hit = True
        if response.streams:
            response.streams[-1].cut = True
    elif reason == "content_filter":
        response.incomplete_reason = "content_filter"
