"""Sans-I/O catalogue of the embedded server's ``error`` events (codes, messages, params).

Every error the server can send is built here, so codes and wording stay in one place and
match what the real service says (the recorded traffic in ``tests/conformance/``). An
:class:`ErrorInfo` is the payload of one ``error`` event; :func:`error_event` wraps it in
the wire envelope.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from rt_notebook.protocol.events import Event, new_id

__all__ = [
    "ErrorInfo",
    "active_response",
    "audio_buffer_full",
    "beta_shape_disabled",
    "binary_frame",
    "cancel_not_active",
    "commit_empty",
    "conversation_too_large",
    "describe_duration",
    "duplicate_item_id",
    "error_event",
    "invalid_api_key",
    "invalid_audio",
    "invalid_json",
    "invalid_type",
    "invalid_value",
    "item_not_found",
    "missing_model",
    "missing_parameter",
    "out_of_range",
    "quote_choices",
    "server_error",
    "session_expired",
    "too_long",
    "tool_choice_not_found",
    "truncate_invalid",
    "unknown_parameter",
]


@dataclasses.dataclass(frozen=True)
class ErrorInfo:
    """What goes into the ``error`` object of an ``error`` event."""

    code: str | None
    message: str
    param: str | None = None
    type: str = "invalid_request_error"

    @property
    def close_reason(self) -> str:
        """The close reason the service uses when this error ends a connection."""
        return self.type if self.code is None else f"{self.type}.{self.code}"


def error_event(info: ErrorInfo, client_event_id: str | None = None) -> Event:
    """Return the ``error`` server event for ``info``, echoing the client's ``event_id``."""
    return {
        "type": "error",
        "event_id": new_id("event"),
        "error": {
            "type": info.type,
            "code": info.code,
            "message": info.message,
            "param": info.param,
            "event_id": client_event_id,
        },
    }


def quote_choices(values: Iterable[str]) -> str:
    """Format choices as the service does: ``'a', 'b', and 'c'``."""
    quoted = [f"'{value}'" for value in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


# Admission errors: sent right after the upgrade, then the connection is closed.


def invalid_api_key(*, missing: bool) -> ErrorInfo:
    if missing:
        message = (
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). "
            "This offline server prints its token when it starts."
        )
    else:
        # Never echo the presented key: it may be a real credential sent to the wrong place.
        message = (
            "Incorrect API key provided. Use the token this offline server printed "
            "when it started (EmbeddedServer.token)."
        )
    return ErrorInfo(code="invalid_api_key", message=message)


def missing_model() -> ErrorInfo:
    return ErrorInfo(
        code="missing_model",
        message="Missing required parameter: 'model'. Connect to /v1/realtime?model=MODEL.",
        param="model",
    )


def beta_shape_disabled() -> ErrorInfo:
    return ErrorInfo(
        code="beta_api_shape_disabled",
        message=(
            "The beta Realtime API shape is disabled on this server. Remove the "
            "'OpenAI-Beta: realtime=v1' header to use the GA interface."
        ),
    )


# The end of a session: after its maximum duration, then close 1001 with the message.


def session_expired(seconds: float) -> ErrorInfo:
    """The service's last words after a session's maximum duration (then close 1001)."""
    return ErrorInfo(
        code="session_expired",
        message=f"Your session hit the maximum duration of {describe_duration(seconds)}.",
    )


def describe_duration(seconds: float) -> str:
    """``60 minutes``, ``1 minute``, ``90 seconds``, ``0.5 seconds``: as the service words it."""
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'' if minutes == 1 else 's'}"
    return f"{seconds:g} second{'' if seconds == 1 else 's'}"


# Event-level errors: the connection goes on.


def invalid_json(detail: str) -> ErrorInfo:
    return ErrorInfo(
        code="invalid_json",
        message=f"The event could not be parsed as JSON: {detail}.",
    )


def binary_frame() -> ErrorInfo:
    return ErrorInfo(
        code="invalid_event",
        message="Binary frames are not supported. Send each event as a JSON text frame.",
    )


def server_error() -> ErrorInfo:
    """A client event the server failed on (a bug): said, and the connection goes on."""
    return ErrorInfo(
        code="server_error",
        message="The server had an error while processing your request. The event was not "
        "applied; the connection goes on.",
        type="server_error",
    )


def conversation_too_large(limit: int, held: int) -> ErrorInfo:
    return ErrorInfo(
        code="conversation_too_large",
        message=(
            f"The conversation would hold more than {limit:,} characters of items (it holds "
            f"{held:,}), the embedded server's limit per connection. The item was not added: "
            "delete items (conversation.item.delete) or start a new conversation."
        ),
        param="item",
    )


def audio_buffer_full(limit: int, held: int) -> ErrorInfo:
    return ErrorInfo(
        code="input_audio_buffer_full",
        message=(
            f"The input audio buffer would hold more than {limit:,} bytes of audio (it holds "
            f"{held:,}), the embedded server's limit per connection. The audio was not "
            "appended: commit (input_audio_buffer.commit) or clear the buffer first."
        ),
        param="audio",
    )


def missing_parameter(param: str) -> ErrorInfo:
    return ErrorInfo(
        code="missing_required_parameter",
        message=f"Missing required parameter: '{param}'.",
        param=param,
    )


def unknown_parameter(param: str) -> ErrorInfo:
    return ErrorInfo(
        code="unknown_parameter", message=f"Unknown parameter: '{param}'.", param=param
    )


def invalid_value(param: str, value: object, allowed: Iterable[str]) -> ErrorInfo:
    """``Invalid value: 'x'. Value must be 'y'.`` (one choice) or ``Supported values are…``."""
    choices = list(allowed)
    shown = value if isinstance(value, str) else repr(value)
    if len(choices) == 1:
        rule = f"Value must be '{choices[0]}'."
    else:
        rule = f"Supported values are: {quote_choices(choices)}."
    return ErrorInfo(code="invalid_value", message=f"Invalid value: '{shown}'. {rule}", param=param)


def tool_choice_not_found(name: object) -> ErrorInfo:
    """A ``tool_choice`` forcing a function the session's tools do not have."""
    return ErrorInfo(
        code="invalid_value",
        message=f"Tool choice 'function' with name '{name}' not found in 'tools' parameter.",
        param="session.tool_choice",
    )


def invalid_type(param: str, expected: str, got: str) -> ErrorInfo:
    return ErrorInfo(
        code="invalid_type",
        message=f"Invalid type for '{param}': expected {expected}, but got {got} instead.",
        param=param,
    )


def out_of_range(param: str, *, limit: int, above: bool, got: object) -> ErrorInfo:
    side = "above maximum" if above else "below minimum"
    relation = "<=" if above else ">="
    return ErrorInfo(
        code="integer_above_max_value" if above else "integer_below_min_value",
        message=(
            f"Invalid '{param}': integer {side} value. Expected a value {relation} {limit}, "
            f"but got {got} instead."
        ),
        param=param,
    )


def too_long(param: str, *, limit: int, got: int, what: str = "string") -> ErrorInfo:
    if what == "object":
        return ErrorInfo(
            code="object_above_max_properties",
            message=(
                f"Invalid '{param}': too many properties. Expected an object with at most "
                f"{limit} properties, but got an object with {got} properties instead."
            ),
            param=param,
        )
    return ErrorInfo(
        code="string_above_max_length",
        message=(
            f"Invalid '{param}': string too long. Expected a string with maximum length "
            f"{limit}, but got a string with length {got} instead."
        ),
        param=param,
    )


def active_response(response_id: str, *, beta: bool) -> ErrorInfo:
    if beta:
        return ErrorInfo(code=None, message="Conversation already has an active response")
    return ErrorInfo(
        code="conversation_already_has_active_response",
        message=(
            f"Conversation already has an active response in progress: {response_id}. "
            "Wait until the response is finished before creating a new one."
        ),
    )


def cancel_not_active() -> ErrorInfo:
    return ErrorInfo(
        code="response_cancel_not_active",
        message="Cancellation failed: no active response found",
    )


def commit_empty(buffered_ms: float) -> ErrorInfo:
    return ErrorInfo(
        code="input_audio_buffer_commit_empty",
        message=(
            "Error committing input audio buffer: buffer too small. Expected at least 100ms "
            f"of audio, but buffer only has {buffered_ms:.2f}ms of audio."
        ),
    )


def item_not_found(action: str, item_id: str, param: str) -> ErrorInfo:
    """``action`` is one of ``create`` (previous item), ``retrieve``, ``delete``, ``truncate``."""
    if action == "create":
        return ErrorInfo(
            code="item_create_invalid_previous_item_id",
            message=f"Error adding item: the previous item with id '{item_id}' does not exist.",
            param=param,
        )
    verb = {"retrieve": "retrieving", "delete": "deleting", "truncate": "truncating"}[action]
    return ErrorInfo(
        code=f"item_{action}_invalid_item_id",
        message=f"Error {verb} item: the item with id '{item_id}' does not exist.",
        param=param,
    )


def duplicate_item_id(item_id: str) -> ErrorInfo:
    return ErrorInfo(
        code="item_create_duplicate_item_id",
        message=f"Error adding item: an item with id '{item_id}' already exists.",
        param="item.id",
    )


def truncate_invalid(message: str, param: str) -> ErrorInfo:
    return ErrorInfo(code="invalid_value", message=message, param=param)


def invalid_audio(param: str) -> ErrorInfo:
    return ErrorInfo(
        code="invalid_value",
        message=f"Invalid '{param}': expected base64-encoded audio bytes.",
        param=param,
    )
