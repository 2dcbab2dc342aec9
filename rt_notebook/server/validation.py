"""Sans-I/O validation of client events by the embedded server, against the ``openai`` SDK's
own types.

The SDK ships a pydantic model for every client event of both dialects
(``openai.types.realtime`` for GA, ``openai.types.beta.realtime`` for beta). Instead of a
hand-kept list of fields, :func:`validate_client_event` validates each event with the model
of its ``type`` and then walks the parsed model for keys the model does not declare (the
SDK models accept and keep unknown keys, which is exactly what lets us find them). Pydantic
errors are translated into the service's error codes and ``param`` paths
(``item.content[0].type``, ``session.bogus_field``).

A few rules are the service's, not the SDK's, and are written out here: which content types
a client may put in a message of each role, the range of ``max_output_tokens`` and the
limits on ``metadata``.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rt_notebook.protocol.events import Dialect
from rt_notebook.protocol.payloads import (  # the service's limits, said once for both sides
    MAX_OUTPUT_TOKENS,
    METADATA_MAX_KEY,
    METADATA_MAX_PAIRS,
    METADATA_MAX_VALUE,
)
from rt_notebook.server import errors
from rt_notebook.server.errors import ErrorInfo

if TYPE_CHECKING:
    import pydantic

__all__ = ["preload_models", "supported_event_types", "validate_client_event"]

# The SDK's models (and pydantic) load on the first event validated, not on import: they
# take most of a second to import, and starting the server should be instant.
ModelType = type["pydantic.BaseModel"]


@dataclasses.dataclass(frozen=True)
class _GAModels:
    """The GA models this module uses, loaded once by :func:`_ga`."""

    client_event: object
    session: ModelType
    item_reference: ModelType
    items: dict[str, ModelType]  # function_call, function_call_output
    messages: dict[str, ModelType]  # by role
    required: dict[str, tuple[str, ...]]  # required fields by item type (non-messages)


@functools.cache
def _ga() -> _GAModels:
    from openai.types.realtime import (
        RealtimeClientEvent,
        RealtimeConversationItemAssistantMessage,
        RealtimeConversationItemFunctionCall,
        RealtimeConversationItemFunctionCallOutput,
        RealtimeConversationItemSystemMessage,
        RealtimeConversationItemUserMessage,
        RealtimeMcpApprovalResponse,
        RealtimeSessionCreateRequest,
    )
    from openai.types.realtime.response_item_reference import ResponseItemReference

    items: dict[str, ModelType] = {
        "function_call": RealtimeConversationItemFunctionCall,
        "function_call_output": RealtimeConversationItemFunctionCallOutput,
        "mcp_approval_response": RealtimeMcpApprovalResponse,
    }
    return _GAModels(
        client_event=RealtimeClientEvent,
        session=RealtimeSessionCreateRequest,
        item_reference=ResponseItemReference,
        items=items,
        messages={
            "system": RealtimeConversationItemSystemMessage,
            "user": RealtimeConversationItemUserMessage,
            "assistant": RealtimeConversationItemAssistantMessage,
        },
        # Beta item fields are all optional in the SDK; the service requires what GA does.
        required={
            **{name: _required_fields(model) for name, model in items.items()},
            "item_reference": _required_fields(ResponseItemReference),
        },
    )


def _models_by_type(union: object, *, leave_out: frozenset[str]) -> dict[str, ModelType]:
    """Map each client event ``type`` of an SDK union to its model class."""
    annotated_union = typing.get_args(union)[0]  # Annotated[Union[...], PropertyInfo]
    models: dict[str, ModelType] = {}
    for model in typing.get_args(annotated_union):
        (event_type,) = typing.get_args(model.model_fields["type"].annotation)
        if event_type not in leave_out:
            models[event_type] = model
    return models


@functools.cache
def _client_event_models(dialect: Dialect) -> dict[str, ModelType]:
    """Client event type -> SDK model. Beta types load on first use: they are slow to import."""
    if dialect is Dialect.GA:
        return _models_by_type(_ga().client_event, leave_out=frozenset())
    from openai.types.beta import realtime as beta_types

    # A realtime connection cannot turn into a transcription session.
    return _models_by_type(
        beta_types.RealtimeClientEvent, leave_out=frozenset({"transcription_session.update"})
    )


_ITEM_TYPES = ("message", "function_call", "function_call_output")

# Content types a client may send in a message of each role. The service is narrower than
# the SDK types: an assistant message a client creates holds text only (the captured error
# says "Invalid value: 'text'. Value must be 'output_text'.").
_CONTENT_TYPES: dict[Dialect, dict[str, tuple[str, ...]]] = {
    Dialect.GA: {
        "system": ("input_text",),
        "user": ("input_text", "input_audio", "input_image"),
        "assistant": ("output_text",),
    },
    Dialect.BETA: {
        "system": ("input_text",),
        "user": ("input_text", "input_audio"),
        "assistant": ("text",),
    },
}
# The field each content type must carry.
_CONTENT_PAYLOAD = {
    "input_text": "text",
    "output_text": "text",
    "text": "text",
    "input_audio": "audio",
    "input_image": "image_url",
}


def preload_models(dialect: Dialect = Dialect.GA) -> None:
    """Import the SDK models now (say, from a background thread) rather than on first use."""
    _client_event_models(dialect)


def supported_event_types(dialect: Dialect) -> list[str]:
    """Client event types the server handles in ``dialect``, in the SDK's order."""
    return list(_client_event_models(dialect))


def validate_client_event(event: Mapping[str, Any], dialect: Dialect) -> ErrorInfo | None:
    """Return why ``event`` is invalid in ``dialect``, or ``None`` when it is valid.

    Only checks that need no conversation state are made here (shape, types, known fields,
    limits); whether an item id exists or a response is active is the state machine's job.
    """
    event_type = event.get("type")
    if event_type is None:
        return errors.missing_parameter("type")
    models = _client_event_models(dialect)
    if not isinstance(event_type, str):
        return errors.invalid_type("type", "a string", _describe(event_type))
    model = models.get(event_type)
    if model is None:
        return errors.invalid_value("type", event_type, models)
    data = dict(event)
    detached: list[tuple[str, pydantic.BaseModel]] = []
    error = _validate_nested_parts(data, dialect, detached)
    if error is not None:
        return error
    parsed, error = _parse(model, data, prefix="")
    if error is not None:
        return error
    for path, part in [("", parsed), *detached]:
        unknown = _first_unknown_field(part, path)
        if unknown is not None:
            return errors.unknown_parameter(unknown)
    return _check_limits(data, dialect)


# Parts whose SDK type is a union are validated first with the right member, so that errors
# name the member the client meant (a user message, not "one of nine item types"). A part
# is either put back as the parsed model or, where the SDK envelope type is narrower than
# the service (GA ``response.input`` lacks ``item_reference``), detached into ``detached``.


def _validate_nested_parts(
    data: dict[str, Any], dialect: Dialect, detached: list[tuple[str, pydantic.BaseModel]]
) -> ErrorInfo | None:
    event_type = data["type"]
    if event_type == "conversation.item.create" and "item" in data:
        parsed, error = _parse_item(data["item"], dialect, "item", references=False)
        if error is not None:
            return error
        data["item"] = parsed
    elif event_type == "response.create" and isinstance(data.get("response"), dict):
        response = dict(data["response"])
        items = response.get("input")
        if isinstance(items, list):
            for index, item in enumerate(items):
                path = f"response.input[{index}]"
                parsed, error = _parse_item(item, dialect, path, references=True)
                if error is not None:
                    return error
                assert parsed is not None
                detached.append((path, parsed))
            del response["input"]
        data["response"] = response
    elif event_type == "session.update" and dialect is Dialect.GA:
        session = data.get("session")
        if isinstance(session, dict):
            # GA sessions are a union (realtime | transcription); this server is realtime.
            if "type" not in session:
                return errors.missing_parameter("session.type")
            if session["type"] != "realtime":
                return errors.invalid_value("session.type", session["type"], ["realtime"])
            parsed, error = _parse(_ga().session, session, prefix="session")
            if error is not None:
                return error
            data["session"] = parsed
    return None


def _parse_item(
    item: object, dialect: Dialect, path: str, *, references: bool
) -> tuple[pydantic.BaseModel | None, ErrorInfo | None]:
    if not isinstance(item, dict):
        return None, errors.invalid_type(path, "an object", _describe(item))
    item_type = item.get("type")
    types = _ITEM_TYPES if dialect is Dialect.BETA else (*_ITEM_TYPES, "mcp_approval_response")
    allowed_types = (*types, "item_reference") if references else types
    if item_type is None:
        return None, errors.missing_parameter(f"{path}.type")
    if item_type not in allowed_types:
        return None, errors.invalid_value(f"{path}.type", item_type, allowed_types)
    if item_type == "message":
        error = _check_message(item, dialect, path)
        if error is not None:
            return None, error
    else:
        # Beta item fields are all optional in the SDK; the service requires what GA requires.
        for name in _ga().required.get(item_type, ()):
            if name not in item:
                return None, errors.missing_parameter(f"{path}.{name}")
    return _parse(_item_model(item, dialect), item, prefix=path)


def _item_model(item: Mapping[str, Any], dialect: Dialect) -> ModelType:
    item_type = item["type"]
    if dialect is Dialect.BETA:
        from openai.types.beta import realtime as beta_types

        if item_type == "item_reference":
            return beta_types.ConversationItemWithReference
        return beta_types.ConversationItem
    if item_type == "item_reference":
        return _ga().item_reference
    if item_type == "message":
        return _ga().messages[item["role"]]
    return _ga().items[item_type]


def _required_fields(model: ModelType) -> tuple[str, ...]:
    return tuple(name for name, field in model.model_fields.items() if field.is_required())


def _check_message(item: Mapping[str, Any], dialect: Dialect, path: str) -> ErrorInfo | None:
    role = item.get("role")
    allowed_by_role = _CONTENT_TYPES[dialect]
    if role is None:
        return errors.missing_parameter(f"{path}.role")
    if role not in allowed_by_role:
        return errors.invalid_value(f"{path}.role", role, allowed_by_role)
    content = item.get("content")
    if content is None:
        return errors.missing_parameter(f"{path}.content")
    if not isinstance(content, list):
        return errors.invalid_type(f"{path}.content", "an array", _describe(content))
    for index, part in enumerate(content):
        part_path = f"{path}.content[{index}]"
        if not isinstance(part, dict):
            return errors.invalid_type(part_path, "an object", _describe(part))
        part_type = part.get("type")
        if part_type is None:
            return errors.missing_parameter(f"{part_path}.type")
        if part_type not in allowed_by_role[role]:
            return errors.invalid_value(f"{part_path}.type", part_type, allowed_by_role[role])
        payload = _CONTENT_PAYLOAD[part_type]
        if payload not in part:
            return errors.missing_parameter(f"{part_path}.{payload}")
    return None


def _check_limits(data: Mapping[str, Any], dialect: Dialect) -> ErrorInfo | None:
    """Limits the SDK types do not express (the service's; ``protocol/payloads.py``)."""
    max_tokens_field = "max_output_tokens" if dialect is Dialect.GA else None
    if data["type"] == "session.update":
        section, name = "session", max_tokens_field or "max_response_output_tokens"
    elif data["type"] == "response.create":
        section, name = "response", max_tokens_field or "max_response_output_tokens"
    else:
        return None
    import pydantic

    body = data.get(section)
    if isinstance(body, pydantic.BaseModel):
        body = body.model_dump(exclude_unset=True)
    if not isinstance(body, Mapping):
        return None
    limit = body.get(name)
    if isinstance(limit, int) and not isinstance(limit, bool):
        if limit < 1:
            return errors.out_of_range(f"{section}.{name}", limit=1, above=False, got=limit)
        if limit > MAX_OUTPUT_TOKENS:
            return errors.out_of_range(
                f"{section}.{name}", limit=MAX_OUTPUT_TOKENS, above=True, got=limit
            )
    metadata = body.get("metadata")
    if isinstance(metadata, Mapping):
        return _check_metadata(metadata, f"{section}.metadata")
    return None


def _check_metadata(metadata: Mapping[str, Any], param: str) -> ErrorInfo | None:
    if len(metadata) > METADATA_MAX_PAIRS:
        return errors.too_long(param, limit=METADATA_MAX_PAIRS, got=len(metadata), what="object")
    for key, value in metadata.items():
        if len(key) > METADATA_MAX_KEY:
            return errors.too_long(f"{param}.{key}", limit=METADATA_MAX_KEY, got=len(key))
        if isinstance(value, str) and len(value) > METADATA_MAX_VALUE:
            return errors.too_long(f"{param}.{key}", limit=METADATA_MAX_VALUE, got=len(value))
    return None


# Pydantic plumbing.


def _parse(
    model: ModelType, data: object, *, prefix: str
) -> tuple[pydantic.BaseModel | None, ErrorInfo | None]:
    import pydantic

    try:
        return model.model_validate(data), None
    except pydantic.ValidationError as exc:
        return None, _translate(exc.errors()[0], data, prefix)


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def _translate(error: Any, data: object, prefix: str) -> ErrorInfo:
    kind = error["type"]
    param = _param_path(error["loc"], data, prefix, missing=kind == "missing")
    if kind == "missing":
        return errors.missing_parameter(param)
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", error.get("ctx", {}).get("expected", ""))
        return errors.invalid_value(param, error["input"], choices)
    if kind in _EXPECTED:
        return errors.invalid_type(param, _EXPECTED[kind], _describe(error["input"]))
    return ErrorInfo(
        code="invalid_value", message=f"Invalid '{param}': {error['msg']}.", param=param
    )


def _param_path(loc: tuple[Any, ...], data: object, prefix: str, *, missing: bool) -> str:
    """Turn a pydantic ``loc`` into the service's ``param`` (``item.content[0].type``).

    Steps that are not in the input (union member tags such as ``'int'`` or a model's
    name) are dropped: they say which alternative failed, not where.
    """
    path = prefix
    node = data
    for position, step in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(step, int) and isinstance(node, list) and 0 <= step < len(node):
            path += f"[{step}]"
            node = node[step]
        elif isinstance(step, str) and isinstance(node, dict):
            if step not in node and not (last and missing):
                continue  # a union member's tag
            path = f"{path}.{step}" if path else step
            node = node.get(step)
    return path


def _first_unknown_field(value: object, path: str) -> str | None:
    """Path of the first key that the parsed SDK models did not declare, if any."""
    import pydantic

    if isinstance(value, pydantic.BaseModel):
        extra = value.__pydantic_extra__
        if extra:
            name = next(iter(extra))
            return f"{path}.{name}" if path else name
        for name in type(value).model_fields:
            found = _first_unknown_field(getattr(value, name), f"{path}.{name}" if path else name)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, element in enumerate(value):
            found = _first_unknown_field(element, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
