"""Sans-I/O frame checks: is a decoded server frame safe to fold into the mirror?

Every frame a Session receives passes :func:`decode` before it touches any state. A frame
that is not JSON, not a JSON object, has a non-string ``type``, carries a field of the
wrong type where the mirror reads it, or names an event no Realtime dialect has, is
reported as a protocol error (a string saying why) instead of raising somewhere deep in
the mirror, so one odd frame never crashes the reader, drops the connection or hangs a
waiting request.

Deltas are checked with two ``type()`` comparisons: they are most of the traffic.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from .events import Event

__all__ = ["KNOWN_SERVER_EVENTS", "STREAMED", "decode", "problem"]

# The decoder of every received frame: orjson, about four times as fast as json.loads on
# the small frames that are most of the traffic (deltas).
_loads = orjson.loads

# Every server event of both dialects (the GA and beta names), including ones the mirror
# ignores: those are fine, only names nobody defines are protocol errors.
KNOWN_SERVER_EVENTS = frozenset(
    {
        "error",
        "session.created",
        "session.updated",
        "conversation.created",
        "conversation.item.added",
        "conversation.item.created",
        "conversation.item.done",
        "conversation.item.retrieved",
        "conversation.item.deleted",
        "conversation.item.truncated",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.failed",
        "conversation.item.input_audio_transcription.segment",
        "input_audio_buffer.cleared",
        "input_audio_buffer.committed",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.timeout_triggered",
        "input_audio_buffer.dtmf_event_received",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "output_audio_buffer.cleared",
        "rate_limits.updated",
        "response.created",
        "response.done",
        "response.output_item.added",
        "response.output_item.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.output_text.delta",
        "response.output_text.done",
        "response.text.delta",
        "response.text.done",
        "response.output_audio.delta",
        "response.output_audio.done",
        "response.audio.delta",
        "response.audio.done",
        "response.output_audio_transcript.delta",
        "response.output_audio_transcript.done",
        "response.audio_transcript.delta",
        "response.audio_transcript.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
        "response.mcp_call.failed",
        "mcp_list_tools.in_progress",
        "mcp_list_tools.completed",
        "mcp_list_tools.failed",
        "transcription_session.updated",
    }
)

# The streamed events (deltas): most of the frames of an answer.
STREAMED = frozenset(
    {
        "response.output_text.delta",
        "response.text.delta",
        "response.output_audio_transcript.delta",
        "response.audio_transcript.delta",
        "response.output_audio.delta",
        "response.audio.delta",
        "response.function_call_arguments.delta",
    }
)
_ITEM_EVENTS = frozenset(
    {
        "conversation.item.added",
        "conversation.item.created",
        "conversation.item.done",
        "conversation.item.retrieved",
        "response.output_item.added",
        "response.output_item.done",
    }
)
_ITEM_ID_EVENTS = frozenset(
    {
        "conversation.item.deleted",
        "conversation.item.truncated",
        "conversation.item.input_audio_transcription.completed",
        "response.output_text.done",
        "response.text.done",
        "response.output_audio_transcript.done",
        "response.audio_transcript.done",
        "response.function_call_arguments.done",
    }
)
_OPTIONAL_STR = (str, type(None))


def decode(raw: object) -> tuple[Event | None, str | None]:
    """``(event, None)`` for a well-formed text frame (``str`` or UTF-8 ``bytes``),
    else ``(None, why)``."""
    if type(raw) is not str and type(raw) not in (bytes, bytearray):
        return None, f"not a text frame ({type(raw).__name__}, {_size(raw)} bytes)"
    try:
        event: Any = _loads(raw)  # type: ignore[arg-type]
    except ValueError:  # orjson.JSONDecodeError
        # orjson is stricter than the json module: it refuses NaN and infinities, lone
        # surrogates and UTF-16 or a BOM in bytes. Such a frame (rare: no Realtime event
        # has them) gets json.loads' answer, so both accept the same frames. (The one
        # difference left: orjson reads an integer past 64 bits as a float.)
        try:
            event = json.loads(raw)  # type: ignore[arg-type]
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            return None, f"not JSON ({exc.__class__.__name__}: {str(exc)[:80]})"
    if type(event) is not dict:
        return None, f"not a JSON object ({type(event).__name__})"
    kind = event.get("type")
    if (  # the hot path, as in problem(), without its call and its dispatch
        type(kind) is str
        and kind in STREAMED
        and type(event.get("delta")) is str
        and type(event.get("item_id")) is str
        and type(event.get("response_id")) in _OPTIONAL_STR
    ):
        return event, None
    why = problem(event)
    return (None, why) if why else (event, None)


def _size(raw: object) -> int:
    try:
        return len(raw)  # type: ignore[arg-type]
    except TypeError:
        return 0


def problem(event: Event) -> str | None:  # noqa: PLR0912 - one branch per shape
    """Why ``event`` (a decoded object) must not reach the mirror, or ``None``."""
    event_type = event.get("type")
    if type(event_type) is not str:
        return "no string 'type'"
    if event_type in STREAMED:
        # The hot path: deltas are most frames.
        if type(event.get("delta")) is not str or type(event.get("item_id")) is not str:
            return f"{event_type}: 'delta' and 'item_id' must be strings"
        if type(event.get("response_id")) not in _OPTIONAL_STR:
            return f"{event_type}: 'response_id' must be a string"
        return None
    if event_type not in KNOWN_SERVER_EVENTS:
        return f"unknown event type {event_type[:80]!r}"
    if event_type in _ITEM_EVENTS:
        why = _item_problem(event.get("item"))
        if why:
            return f"{event_type}: {why}"
        if not _fields(event, _OPTIONAL_STR, "previous_item_id", "response_id"):
            return f"{event_type}: 'previous_item_id'/'response_id' must be strings"
        return None
    if event_type in _ITEM_ID_EVENTS:
        if type(event.get("item_id")) is not str:
            return f"{event_type}: 'item_id' must be a string"
        if not _fields(event, _OPTIONAL_STR, "text", "transcript", "arguments", "name"):
            return f"{event_type}: text fields must be strings"
        return None
    if event_type in ("session.created", "session.updated"):
        return (
            None if isinstance(event.get("session"), dict) else f"{event_type}: no session object"
        )
    if event_type in ("response.created", "response.done"):
        return _response_problem(event_type, event.get("response"))
    if event_type == "error":
        error = event.get("error")
        if not isinstance(error, dict):
            return "error: no error object"
        if not _fields(error, _OPTIONAL_STR, "event_id", "code", "message", "type", "param"):
            return "error: its fields must be strings"
        return None
    if event_type == "rate_limits.updated" and type(event.get("rate_limits")) not in (
        list,
        type(None),
    ):
        return "rate_limits.updated: 'rate_limits' must be a list"
    return None


def _fields(data: dict[str, Any], types: tuple[type, ...], *names: str) -> bool:
    return all(type(data.get(name)) in types for name in names)


def _item_problem(item: object) -> str | None:
    if not isinstance(item, dict):
        return "no item object"
    if type(item.get("id")) is not str:
        return "the item has no string 'id'"
    if not _fields(item, _OPTIONAL_STR, "type", "role", "status", "call_id", "name", "arguments"):
        return "the item's type/role/status/call_id/name/arguments must be strings"
    if "output" in item and type(item["output"]) not in _OPTIONAL_STR:
        return "the item's 'output' must be a string"
    content = item.get("content")
    if content is None:
        return None
    if type(content) is not list:
        return "the item's 'content' must be a list"
    for part in content:
        if not isinstance(part, dict) or not _fields(
            part, _OPTIONAL_STR, "type", "text", "transcript"
        ):
            return "the item's content parts must be objects with string text"
    return None


def _response_problem(event_type: str, response: object) -> str | None:
    if not isinstance(response, dict):
        return f"{event_type}: no response object"
    if type(response.get("id")) is not str:
        return f"{event_type}: the response has no string 'id'"
    if not _fields(response, _OPTIONAL_STR, "status", "conversation_id"):
        return f"{event_type}: 'status'/'conversation_id' must be strings"
    dicts = (dict, type(None))
    if not _fields(response, dicts, "status_details", "usage", "metadata"):
        return f"{event_type}: 'status_details'/'usage'/'metadata' must be objects"
    metadata = response.get("metadata")
    if metadata and not all(type(v) is str for v in metadata.values()):
        return f"{event_type}: metadata values must be strings"
    for name in ("output", "output_modalities", "modalities"):
        if type(response.get(name)) not in (list, type(None)):
            return f"{event_type}: {name!r} must be a list"
    for item in response.get("output") or []:
        why = _item_problem(item)
        if why:
            return f"{event_type}: output {why}"
    return None
