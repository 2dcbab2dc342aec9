"""Sans-I/O state of one Realtime connection, as the embedded server sees it.

:class:`ConnectionState` never touches a socket, a clock or a thread. A driver feeds it the
client's frames and sends what it returns:

- :meth:`~ConnectionState.start` gives ``session.created``, the first frame;
- :meth:`~ConnectionState.receive_text` / :meth:`~ConnectionState.receive_bytes` validate a
  frame and return at once the errors it causes (validation errors therefore overtake the
  acknowledgements of events received earlier, as on the real service); valid events are
  queued;
- :meth:`~ConnectionState.process` applies the queued events in order (acknowledgements,
  ``response.created``, cancellations, state errors);
- :meth:`~ConnectionState.advance` moves every active response one *tick*: a response's
  first tick only "thinks", the next opens its output item, then each tick sends one delta
  (a word of text, a word of transcript plus its beep, a token of function arguments), and
  the tick after the last delta closes the item and, after the last item, the response.
  The driver sleeps its pace between ticks; tests call it in a loop.

The responder (:mod:`rt_notebook.server.responders`) decides what a response says when it is
created; streaming, cancellation and the ``max_output_tokens`` budget happen here.
"""

from __future__ import annotations

import base64
import binascii
import collections
import dataclasses
import enum
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from rt_notebook.protocol.events import Dialect, Event, new_id
from rt_notebook.server import errors, shapes
from rt_notebook.server.errors import ErrorInfo, error_event
from rt_notebook.server.responders import (
    PlannedCall,
    PlannedMessage,
    PlannedOutput,
    Responder,
    ResponseRequest,
)
from rt_notebook.server.tone import BEEP_MS, beep
from rt_notebook.server.validation import validate_client_event

__all__ = ["ConnectionState", "OutputKind", "ResponsePhase", "split_text", "split_tokens"]

MAX_APPEND_CHARS = 15 * 1024 * 1024
MIN_COMMIT_MS = 100
RATE_LIMIT_REQUESTS = 10_000
RATE_LIMIT_TOKENS = 2_000_000
_WORD_DELTA = re.compile(r"\s*\S+|\s+$")
_TOKEN_DELTA = re.compile(r"\w+|\W+")
_WORDS = re.compile(r"\S+")
# Real text deltas carry an ``obfuscation`` pad so that frame sizes do not reveal the text;
# a fixed pad keeps ours deterministic.
_PAD = "rtnbOfflinePad16"


def split_text(text: str) -> list[str]:
    """Word-by-word deltas (leading whitespace kept) that concatenate back to ``text``."""
    return _WORD_DELTA.findall(text)


def split_tokens(arguments: str) -> list[str]:
    """Token-like deltas of a JSON arguments string (``{"``, ``city``, ``":"``…)."""
    return _TOKEN_DELTA.findall(arguments)


class ResponsePhase(enum.Enum):
    """Where a response is in its life."""

    THINKING = "thinking"  # response.created sent; no output item yet
    STREAMING = "streaming"  # output items being opened, streamed and closed
    DONE = "done"  # response.done sent


class OutputKind(enum.Enum):
    """What an output stream carries."""

    TEXT = "text"
    AUDIO = "audio"  # transcript deltas with a beep each
    FUNCTION_CALL = "function_call"


@dataclasses.dataclass
class _OutputStream:
    """One output item of a response and its planned deltas."""

    kind: OutputKind
    item: Event  # the item as it stands, canonical GA shape; content filled on close
    deltas: list[str]  # planned deltas (already cut to the token budget)
    sent: int = 0  # deltas emitted so far
    cut: bool = False  # the budget cut this stream short
    content_closed: bool = False  # the content's .done events are out; the item's are next
    name: str = ""  # function name (FUNCTION_CALL only)

    @property
    def text(self) -> str:
        return "".join(self.deltas[: self.sent])


@dataclasses.dataclass
class _Response:
    """An active (not yet done) response."""

    id: str
    settings: shapes.ResponseSettings
    streams: list[_OutputStream]  # planned outputs, in output order
    input_text_tokens: int
    input_audio_tokens: int
    born_tick: int  # advance() count when created; the first tick after it only thinks
    phase: ResponsePhase = ResponsePhase.THINKING
    cursor: int = 0  # index of the open (or next) stream
    open: bool = False  # whether streams[cursor] has been opened
    budget_hit: bool = False  # max_output_tokens cut the output
    failure: Event | None = None  # status_details when the responder failed

    @property
    def in_conversation(self) -> bool:
        return not self.settings.out_of_band

    def opened_streams(self) -> list[_OutputStream]:
        return self.streams[: self.cursor + (1 if self.open else 0)]


class ConnectionState:
    """Sans-I/O state machine of one Realtime connection (see the module docstring)."""

    def __init__(
        self,
        *,
        model: str,
        dialect: Dialect,
        responder: Responder,
        now: float | None = None,
        on_responder_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.dialect = dialect
        self.responder = responder
        # Session in the dialect's own wire shape (what session.updated echoes).
        self.session: Event = shapes.default_session(
            dialect,
            model=model,
            responder_name=responder.name,
            now=time.time() if now is None else now,
        )
        self.conversation_id = new_id("conv")
        # Conversation items in order, canonical GA shape; _by_id indexes the same dicts.
        self._items: list[Event] = []
        self._by_id: dict[str, Event] = {}
        # Valid client events waiting for process().
        self._queue: collections.deque[Event] = collections.deque()
        # Active responses in creation order (at most one in the conversation).
        self._responses: list[_Response] = []
        # function_call_output items (with their previous_item_id and client event id) sent
        # while the conversation's response was active: added after its response.done.
        self._deferred: list[tuple[Event, Any, str | None]] = []
        # Events due at the next tick (GA rate_limits.updated follows response.done).
        self._trailers: list[Event] = []
        self._audio_buffer = bytearray()
        # Transcript deltas of spoken items, for conversation.item.truncate.
        self._spoken: dict[str, list[str]] = {}
        self._tokens_used = 0
        self._ticks = 0
        self._pad_offset = 0
        self._on_responder_error = on_responder_error

    # Public methods for the driver

    def start(self) -> list[Event]:
        """The frames to send right after the upgrade: ``session.created``."""
        return [self._event("session.created", session=self._session_copy())]

    def receive_text(self, text: str) -> list[Event]:
        """Take one text frame; return the errors to send now (valid events are queued)."""
        try:
            event = json.loads(text)
        except json.JSONDecodeError as exc:
            return [error_event(errors.invalid_json(exc.msg))]
        if not isinstance(event, dict):
            return [error_event(errors.invalid_type("event", "an object", _kind(event)))]
        problem = validate_client_event(event, self.dialect)
        if problem is not None:
            return [error_event(problem, _client_id(event))]
        self._queue.append(event)
        return []

    def receive_bytes(self, data: bytes) -> list[Event]:
        """Take one binary frame: the service accepts none."""
        return [error_event(errors.binary_frame())]

    def process(self) -> list[Event]:
        """Apply the queued client events in order; return the events they produce."""
        out: list[Event] = []
        while self._queue:
            event = self._queue.popleft()
            handler = self._HANDLERS[event["type"]]
            out.extend(handler(self, event))
        return out

    def advance(self) -> list[Event]:
        """Move every active response one tick; return the events of that tick."""
        self._ticks += 1
        out, self._trailers = self._trailers, []
        for response in list(self._responses):
            if response.born_tick == self._ticks - 1:
                continue  # created since the last tick: think for one tick first
            out.extend(self._tick(response))
        return out

    @property
    def pending(self) -> bool:
        """Whether :meth:`process` has queued events to apply."""
        return bool(self._queue)

    @property
    def streaming(self) -> bool:
        """Whether :meth:`advance` has work (active responses or trailing events)."""
        return bool(self._responses or self._trailers)

    # Public methods for inspection (tests, debugging)

    @property
    def items(self) -> list[Event]:
        """The conversation items in order (GA shape, copies)."""
        return [shapes.render_item(item, Dialect.GA) for item in self._items]

    @property
    def active_response_ids(self) -> list[str]:
        return [response.id for response in self._responses]

    # Handlers of client events (process())

    def _session_update(self, event: Event) -> list[Event]:
        self.session = shapes.merge_session(self.session, event["session"], self.dialect)
        return [self._event("session.updated", session=self._session_copy())]

    def _item_create(self, event: Event) -> list[Event]:
        client_id = _client_id(event)
        previous = event.get("previous_item_id")
        if previous is not None and previous != "root" and previous not in self._by_id:
            return [
                self._error(errors.item_not_found("create", previous, "previous_item_id"), event)
            ]
        item = shapes.normalize_item(event["item"])
        if item["id"] in self._by_id:
            return [self._error(errors.duplicate_item_id(item["id"]), event)]
        if item["type"] == "function_call_output" and self._conversation_response() is not None:
            # The service acknowledges tool results only after the running response ends.
            self._deferred.append((item, previous, client_id))
            return []
        return self._insert(item, previous)

    def _item_retrieve(self, event: Event) -> list[Event]:
        item = self._by_id.get(event["item_id"])
        if item is None:
            return [
                self._error(errors.item_not_found("retrieve", event["item_id"], "item_id"), event)
            ]
        return [self._event("conversation.item.retrieved", item=self._render(item))]

    def _item_delete(self, event: Event) -> list[Event]:
        item = self._by_id.pop(event["item_id"], None)
        if item is None:
            return [
                self._error(errors.item_not_found("delete", event["item_id"], "item_id"), event)
            ]
        self._items.remove(item)
        self._spoken.pop(item["id"], None)
        return [self._event("conversation.item.deleted", item_id=item["id"])]

    def _item_truncate(self, event: Event) -> list[Event]:
        item_id, index, end_ms = event["item_id"], event["content_index"], event["audio_end_ms"]
        item = self._by_id.get(item_id)
        if item is None:
            return [self._error(errors.item_not_found("truncate", item_id, "item_id"), event)]
        content = item.get("content") or []
        if item.get("role") != "assistant" or not 0 <= index < len(content):
            problem = errors.truncate_invalid(
                f"Invalid 'content_index': item '{item_id}' has no assistant content part {index}.",
                "content_index",
            )
            return [self._error(problem, event)]
        part = content[index]
        if part.get("type") != "output_audio":
            problem = errors.truncate_invalid(
                f"Invalid 'content_index': content part {index} of item '{item_id}' is not audio.",
                "content_index",
            )
            return [self._error(problem, event)]
        spoken = self._spoken.get(item_id, [])
        duration = len(spoken) * BEEP_MS
        if not 0 <= end_ms <= duration:
            problem = errors.truncate_invalid(
                f"Invalid 'audio_end_ms': {end_ms} is outside the item's audio (0-{duration} ms).",
                "audio_end_ms",
            )
            return [self._error(problem, event)]
        # Keep the words whose beep had finished playing: what the user heard.
        kept = spoken[: end_ms // BEEP_MS]
        self._spoken[item_id] = kept
        part["transcript"] = "".join(kept)
        return [
            self._event(
                "conversation.item.truncated",
                item_id=item_id,
                content_index=index,
                audio_end_ms=end_ms,
            )
        ]

    def _audio_append(self, event: Event) -> list[Event]:
        audio = event["audio"]
        if len(audio) > MAX_APPEND_CHARS:
            return [
                self._error(errors.too_long("audio", limit=MAX_APPEND_CHARS, got=len(audio)), event)
            ]
        try:
            self._audio_buffer += base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            return [self._error(errors.invalid_audio("audio"), event)]
        return []

    def _audio_commit(self, event: Event) -> list[Event]:
        bytes_per_ms = shapes.input_bytes_per_ms(self.session, self.dialect)
        buffered_ms = len(self._audio_buffer) / bytes_per_ms
        if buffered_ms < MIN_COMMIT_MS:
            return [self._error(errors.commit_empty(buffered_ms), event)]
        audio = base64.b64encode(bytes(self._audio_buffer)).decode("ascii")
        self._audio_buffer.clear()
        item = shapes.normalize_item(
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_audio", "audio": audio, "transcript": None}],
            }
        )
        previous = self._items[-1]["id"] if self._items else None
        committed = self._event(
            "input_audio_buffer.committed", previous_item_id=previous, item_id=item["id"]
        )
        return [committed, *self._insert(item, None)]

    def _audio_clear(self, event: Event) -> list[Event]:
        self._audio_buffer.clear()
        return [self._event("input_audio_buffer.cleared")]

    def _output_audio_clear(self, event: Event) -> list[Event]:
        # WebRTC/SIP only on the service; over WebSocket there is no server-side buffer.
        return []

    def _response_create(self, event: Event) -> list[Event]:
        params: Mapping[str, Any] = event.get("response") or {}
        settings = shapes.response_settings(self.session, params, self.dialect)
        active = self._conversation_response()
        if not settings.out_of_band and active is not None:
            beta = self.dialect is Dialect.BETA
            return [self._error(errors.active_response(active.id, beta=beta), event)]
        context, problem = self._context(params)
        if problem is not None:
            return [self._error(problem, event)]
        response = self._new_response(settings, context)
        out = [
            self._event("response.created", response=self._render_response(response, "in_progress"))
        ]
        if self.dialect is Dialect.BETA:
            out.append(self._rate_limits())  # beta sends it right after response.created
        if response.failure is not None:
            out.extend(self._finish(response, "failed"))
        return out

    def _response_cancel(self, event: Event) -> list[Event]:
        wanted = event.get("response_id")
        if wanted is not None:
            target = next((r for r in self._responses if r.id == wanted), None)
        else:
            target = self._conversation_response() or (
                self._responses[-1] if self._responses else None
            )
        if target is None:
            return [self._error(errors.cancel_not_active(), event)]
        return self._cancel(target)

    _HANDLERS: ClassVar[dict[str, Callable[[ConnectionState, Event], list[Event]]]] = {
        "session.update": _session_update,
        "conversation.item.create": _item_create,
        "conversation.item.retrieve": _item_retrieve,
        "conversation.item.delete": _item_delete,
        "conversation.item.truncate": _item_truncate,
        "input_audio_buffer.append": _audio_append,
        "input_audio_buffer.commit": _audio_commit,
        "input_audio_buffer.clear": _audio_clear,
        "output_audio_buffer.clear": _output_audio_clear,
        "response.create": _response_create,
        "response.cancel": _response_cancel,
    }

    # Conversation placement

    def _insert(self, item: Event, previous: Any) -> list[Event]:
        """Place ``item`` (after ``previous``, at the start for ``"root"``, else last)."""
        if previous == "root":
            position = 0
        elif previous is not None:
            position = self._items.index(self._by_id[previous]) + 1
        else:
            position = len(self._items)
        self._items.insert(position, item)
        self._by_id[item["id"]] = item
        previous_id = self._items[position - 1]["id"] if position > 0 else None
        public = shapes.public_item(item)
        return [
            self._event(
                "conversation.item.added", previous_item_id=previous_id, item=self._render(public)
            ),
            *self._optional_event(
                "conversation.item.done", previous_item_id=previous_id, item=self._render(public)
            ),
        ]

    def _context(self, params: Mapping[str, Any]) -> tuple[list[Event], ErrorInfo | None]:
        """The items a response sees: its ``input`` (references resolved) or the conversation."""
        if "input" not in params or params["input"] is None:
            return [dict(item) for item in self._items], None
        context = []
        for index, entry in enumerate(params["input"]):
            if entry.get("type") == "item_reference":
                item = self._by_id.get(entry["id"])
                if item is None:
                    param = f"response.input[{index}].id"
                    return [], errors.item_not_found("retrieve", entry["id"], param)
                context.append(dict(item))
            else:
                context.append(shapes.normalize_item(entry))
        return context, None

    def _conversation_response(self) -> _Response | None:
        return next((r for r in self._responses if r.in_conversation), None)

    # Responses: creation

    def _new_response(self, settings: shapes.ResponseSettings, context: list[Event]) -> _Response:
        request = ResponseRequest(
            context=tuple(context),
            instructions=settings.instructions,
            tools=tuple(
                tool for tool in settings.tools if tool.get("type", "function") == "function"
            ),
            tool_choice=settings.tool_choice,
            output_modalities=tuple(settings.modalities),
            metadata=settings.metadata,
            in_conversation=not settings.out_of_band,
        )
        failure = None
        planned: list[PlannedOutput] = []
        try:
            planned = list(self.responder.respond(request))
        except Exception as exc:  # a custom responder's bug must not kill the connection
            if self._on_responder_error is not None:
                self._on_responder_error(exc)
            failure = {
                "type": "failed",
                "error": {"type": "server_error", "code": "responder_error", "message": repr(exc)},
            }
        text_tokens, audio_tokens = _count_input(
            settings.instructions, context, self.session, self.dialect
        )
        response = _Response(
            id=new_id("resp"),
            settings=settings,
            streams=[],
            input_text_tokens=text_tokens,
            input_audio_tokens=audio_tokens,
            born_tick=self._ticks,
            failure=failure,
        )
        self._plan_streams(response, planned)
        self._responses.append(response)
        return response

    def _plan_streams(self, response: _Response, planned: list[PlannedOutput]) -> None:
        budget = response.settings.token_budget
        for output in planned:
            if budget is not None and budget <= 0:
                response.budget_hit = True
                break
            if isinstance(output, PlannedCall):
                stream = _OutputStream(
                    kind=OutputKind.FUNCTION_CALL,
                    item={
                        "id": new_id("item"),
                        "type": "function_call",
                        "status": "in_progress",
                        "name": output.name,
                        "call_id": new_id("call", 16),
                        "arguments": "",
                    },
                    deltas=split_tokens(output.arguments),
                    name=output.name,
                )
            elif isinstance(output, PlannedMessage):
                stream = _OutputStream(
                    kind=OutputKind.AUDIO if response.settings.audio else OutputKind.TEXT,
                    item={
                        "id": new_id("item"),
                        "type": "message",
                        "status": "in_progress",
                        "role": "assistant",
                        "content": [],
                    },
                    deltas=split_text(output.text),
                )
            else:  # pragma: no cover - guarded by the Responder protocol's types
                raise TypeError(
                    f"responder returned {output!r}; expected PlannedMessage or PlannedCall"
                )
            if budget is not None:
                if len(stream.deltas) > budget:
                    stream.deltas = stream.deltas[:budget]
                    stream.cut = response.budget_hit = True
                budget -= len(stream.deltas)
            response.streams.append(stream)

    # Responses: streaming (advance())

    def _tick(self, response: _Response) -> list[Event]:
        if response.phase is ResponsePhase.THINKING:
            response.phase = ResponsePhase.STREAMING
            if not response.streams:
                return self._finish(response, "incomplete" if response.budget_hit else "completed")
            return self._open(response)
        stream = response.streams[response.cursor]
        if stream.sent < len(stream.deltas):
            return self._delta(response, stream)
        if not stream.content_closed:
            # The content closes one tick before the item, as on the service: a client that
            # reacts to function_call_arguments.done does so while the response is active.
            return self._close_content(response, stream)
        out = self._close_item(response, stream, "incomplete" if stream.cut else "completed")
        response.cursor += 1
        response.open = False
        if response.cursor < len(response.streams):
            out.extend(self._open(response))
        else:
            out.extend(self._finish(response, "incomplete" if response.budget_hit else "completed"))
        return out

    def _open(self, response: _Response) -> list[Event]:
        stream = response.streams[response.cursor]
        response.open = True
        item = stream.item
        out = [
            self._event(
                "response.output_item.added",
                response_id=response.id,
                output_index=response.cursor,
                item=self._render(item),
            )
        ]
        if response.in_conversation:
            previous = self._items[-1]["id"] if self._items else None
            self._items.append(item)
            self._by_id[item["id"]] = item
            out.append(
                self._event(
                    "conversation.item.added", previous_item_id=previous, item=self._render(item)
                )
            )
            stream.item = item
        if stream.kind is not OutputKind.FUNCTION_CALL:
            part = (
                {"type": "audio", "transcript": ""}
                if stream.kind is OutputKind.AUDIO
                else {"type": "text", "text": ""}
            )
            out.append(
                self._event(
                    "response.content_part.added", **self._where(response, stream), part=part
                )
            )
        return out

    def _delta(self, response: _Response, stream: _OutputStream) -> list[Event]:
        delta = stream.deltas[stream.sent]
        stream.sent += 1
        where = self._where(response, stream)
        if stream.kind is OutputKind.TEXT:
            return [
                self._event(
                    "response.output_text.delta", **where, delta=delta, obfuscation=self._pad(delta)
                )
            ]
        if stream.kind is OutputKind.AUDIO:
            return [
                self._event(
                    "response.output_audio_transcript.delta",
                    **where,
                    delta=delta,
                    obfuscation=self._pad(delta),
                ),
                self._event("response.output_audio.delta", **where, delta=beep(stream.sent - 1)),
            ]
        return [
            self._event(
                "response.function_call_arguments.delta",
                response_id=response.id,
                item_id=stream.item["id"],
                output_index=response.cursor,
                call_id=stream.item["call_id"],
                delta=delta,
                obfuscation=self._pad(delta),
            )
        ]

    def _close_content(self, response: _Response, stream: _OutputStream) -> list[Event]:
        """The content's ``.done`` events (text, audio, arguments) of the open stream."""
        stream.content_closed = True
        item = stream.item
        text = stream.text
        out: list[Event] = []
        if stream.kind is OutputKind.FUNCTION_CALL:
            item["arguments"] = text
            out.append(
                self._event(
                    "response.function_call_arguments.done",
                    response_id=response.id,
                    item_id=item["id"],
                    output_index=response.cursor,
                    call_id=item["call_id"],
                    name=stream.name,
                    arguments=text,
                )
            )
        else:
            where = self._where(response, stream)
            if stream.kind is OutputKind.AUDIO:
                item["content"] = [{"type": "output_audio", "transcript": text}]
                self._spoken[item["id"]] = stream.deltas[: stream.sent]
                out.append(self._event("response.output_audio.done", **where))
                out.append(
                    self._event("response.output_audio_transcript.done", **where, transcript=text)
                )
                part = {"type": "audio", "transcript": text}
            else:
                item["content"] = [{"type": "output_text", "text": text}]
                out.append(self._event("response.output_text.done", **where, text=text))
                part = {"type": "text", "text": text}
            out.append(self._event("response.content_part.done", **where, part=part))
        return out

    def _close_item(self, response: _Response, stream: _OutputStream, status: str) -> list[Event]:
        """The item's ``.done`` events; ``status`` is its final status."""
        item = stream.item
        item["status"] = status
        out: list[Event] = []
        # Captures: conversation.item.done of a text message repeats previous_item_id, of
        # an audio message or a function call it is null.
        done_previous = self._previous_item_id(item) if stream.kind is OutputKind.TEXT else None
        if response.in_conversation:
            out.extend(
                self._optional_event(
                    "conversation.item.done",
                    previous_item_id=done_previous,
                    item=self._render(item),
                )
            )
        out.append(
            self._event(
                "response.output_item.done",
                response_id=response.id,
                output_index=response.cursor,
                item=self._render(item),
            )
        )
        return out

    def _finish(self, response: _Response, status: str) -> list[Event]:
        """``response.done`` with ``status``; then deferred items and rate limits."""
        details: Event | None = None
        if status == "cancelled":
            details = {"type": "cancelled", "reason": "client_cancelled"}
        elif status == "incomplete":
            details = {"type": "incomplete", "reason": "max_output_tokens"}
        elif status == "failed":
            details = response.failure
        response.phase = ResponsePhase.DONE
        self._responses.remove(response)
        rendered = self._render_response(response, status, details, final=True)
        self._tokens_used += rendered["usage"]["total_tokens"]
        out = [self._event("response.done", response=rendered)]
        if response.in_conversation:
            deferred, self._deferred = self._deferred, []
            for item, previous, _client in deferred:
                if previous is not None and previous != "root" and previous not in self._by_id:
                    out.append(
                        error_event(
                            errors.item_not_found("create", previous, "previous_item_id"), _client
                        )
                    )
                else:
                    out.extend(self._insert(item, previous))
        if self.dialect is Dialect.GA:
            self._trailers.append(self._rate_limits())  # GA sends it a moment after response.done
        return out

    def _cancel(self, response: _Response) -> list[Event]:
        if response.phase is ResponsePhase.THINKING or not response.open:
            response.streams = response.streams[: response.cursor]
            return self._finish(response, "cancelled")
        # Mid-output: the open item is closed as incomplete, later outputs are dropped.
        stream = response.streams[response.cursor]
        out = [] if stream.content_closed else self._close_content(response, stream)
        out.extend(self._close_item(response, stream, "incomplete"))
        response.streams = response.streams[: response.cursor + 1]
        response.cursor += 1
        response.open = False
        out.extend(self._finish(response, "cancelled"))
        return out

    # Rendering helpers

    def _render_response(
        self,
        response: _Response,
        status: str,
        details: Event | None = None,
        *,
        final: bool = False,
    ) -> Event:
        output = [stream.item for stream in response.streams[: response.cursor]] if final else []
        usage = None
        if final:
            text_out = sum(
                s.sent
                for s in response.streams[: response.cursor]
                if s.kind is not OutputKind.AUDIO
            )
            spoken = sum(
                s.sent for s in response.streams[: response.cursor] if s.kind is OutputKind.AUDIO
            )
            started = bool(output)
            usage = shapes.usage(
                input_text=response.input_text_tokens if started else 0,
                input_audio=response.input_audio_tokens if started else 0,
                output_text=text_out + spoken,  # a transcript counts as text, as on the service
                output_audio=spoken,  # one audio token per beep
            )
        return shapes.render_response(
            response_id=response.id,
            status=status,
            status_details=details,
            output=output,
            conversation_id=self.conversation_id if response.in_conversation else None,
            settings=response.settings,
            usage=usage,
            dialect=self.dialect,
        )

    def _rate_limits(self) -> Event:
        return self._event(
            "rate_limits.updated",
            rate_limits=[
                {
                    "name": "requests",
                    "limit": RATE_LIMIT_REQUESTS,
                    "remaining": RATE_LIMIT_REQUESTS - 1,
                    "reset_seconds": 0.006,
                },
                {
                    "name": "tokens",
                    "limit": RATE_LIMIT_TOKENS,
                    "remaining": max(0, RATE_LIMIT_TOKENS - self._tokens_used),
                    "reset_seconds": round(self._tokens_used * 60 / RATE_LIMIT_TOKENS, 3),
                },
            ],
        )

    def _where(self, response: _Response, stream: _OutputStream) -> Event:
        return {
            "response_id": response.id,
            "item_id": stream.item["id"],
            "output_index": response.cursor,
            "content_index": 0,
        }

    def _previous_item_id(self, item: Event) -> str | None:
        if item["id"] not in self._by_id:
            return None
        position = self._items.index(item)
        return self._items[position - 1]["id"] if position > 0 else None

    def _render(self, item: Event) -> Event:
        return shapes.render_item(item, self.dialect)

    def _session_copy(self) -> Event:
        return json.loads(json.dumps(self.session))  # type: ignore[no-any-return]

    def _pad(self, delta: str) -> str:
        return _PAD[: max(0, len(_PAD) - len(delta))]

    def _event(self, ga_type: str, **fields: Any) -> Event:
        wire = shapes.wire_type(ga_type, self.dialect)
        assert wire is not None, ga_type
        return {"type": wire, "event_id": new_id("event"), **fields}

    def _optional_event(self, ga_type: str, **fields: Any) -> list[Event]:
        """``[event]``, or ``[]`` when the dialect has no such event (beta item.done)."""
        wire = shapes.wire_type(ga_type, self.dialect)
        if wire is None:
            return []
        return [{"type": wire, "event_id": new_id("event"), **fields}]

    def _error(self, info: ErrorInfo, event: Event) -> Event:
        return error_event(info, _client_id(event))


def _client_id(event: Mapping[str, Any]) -> str | None:
    value = event.get("event_id")
    return value if isinstance(value, str) else None


def _kind(value: object) -> str:
    return {
        list: "an array",
        str: "a string",
        int: "an integer",
        float: "a decimal",
        bool: "a boolean",
    }.get(type(value), "null")


def _count_input(
    instructions: str, context: list[Event], session: Mapping[str, Any], dialect: Dialect
) -> tuple[int, int]:
    """Input tokens as words of text (≈ tokens) and a token per 100 ms of input audio."""
    words = len(_WORDS.findall(instructions))
    audio_ms = 0.0
    bytes_per_ms = shapes.input_bytes_per_ms(session, dialect)
    for item in context:
        for key in ("arguments", "output", "name"):
            if isinstance(item.get(key), str):
                words += len(_WORDS.findall(item[key]))
        for part in item.get("content") or ():
            for key in ("text", "transcript"):
                if isinstance(part.get(key), str):
                    words += len(_WORDS.findall(part[key]))
            if part.get("type") == "input_audio" and isinstance(part.get("audio"), str):
                audio_ms += len(part["audio"]) * 3 / 4 / bytes_per_ms
    return words, math.ceil(audio_ms / 100)
