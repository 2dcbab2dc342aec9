"""Sans-I/O translation of client calls and server events between the GA and beta shapes.

Code written for one dialect runs on a Session that speaks the other
(``session.connection(shape="beta")`` on a GA Session, the classic case):
:func:`client_event` rewrites a client event written in the code's shape for the wire's
dialect, :func:`server_event` rewrites a server event from the wire in the code's shape.
The names come from the dialect tables of :mod:`rt_notebook.protocol.events`; only the
values written differently (modalities, audio formats) are converted here.

A client setting, content type or event with no equivalent in the wire's dialect raises
:class:`~rt_notebook.errors.ConfigurationError` in one line naming what to use instead
(or saying there is nothing). A server event the code's shape does not have
(``conversation.item.done``, MCP events... for beta code) is dropped: code written for
that shape could not know it, and the SDK's models of that shape cannot parse it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigurationError
from .events import (
    BETA_TO_GA_AUDIO_FORMAT,
    BETA_TO_GA_CONTENT,
    BETA_TO_GA_EVENT,
    BETA_TO_GA_RESPONSE_FIELD,
    BETA_TO_GA_SESSION_FIELD,
    GA_TO_BETA_EVENT,
    Dialect,
    Event,
)
from .payloads import modalities

__all__ = [
    "BETA_ONLY_SERVER_EVENTS",
    "GA_ONLY_SERVER_EVENTS",
    "SAME_CLIENT_EVENTS",
    "client_event",
    "item",
    "response_params",
    "server_event",
    "settings",
]

Path = tuple[str, ...]

# Client events written the same way in both dialects.
SAME_CLIENT_EVENTS = frozenset(
    {
        "conversation.item.delete",
        "conversation.item.retrieve",
        "conversation.item.truncate",
        "input_audio_buffer.append",
        "input_audio_buffer.clear",
        "input_audio_buffer.commit",
        "output_audio_buffer.clear",
        "response.cancel",
    }
)

# Client events of one dialect the other lacks, with what to do instead.
_NO_EQUIVALENT_EVENT = {
    "transcription_session.update": (
        "a transcription-only session is a connection of its own in GA "
        "(session.update with session.type 'transcription'), not a Session's conversation"
    ),
}

# Server events of one dialect the other does not have (dropped on the way to code
# written for the other shape).
GA_ONLY_SERVER_EVENTS = frozenset(
    {
        "conversation.item.done",
        "conversation.item.input_audio_transcription.segment",
        "input_audio_buffer.dtmf_event_received",
        "input_audio_buffer.timeout_triggered",
        "mcp_list_tools.completed",
        "mcp_list_tools.failed",
        "mcp_list_tools.in_progress",
        "response.mcp_call.completed",
        "response.mcp_call.failed",
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
    }
)
BETA_ONLY_SERVER_EVENTS = frozenset({"transcription_session.updated"})

# Settings of one dialect the other lacks (name -> what to do instead).
_BETA_ONLY_SETTING = {
    "temperature": "GA models choose their own sampling temperature; remove it",
    "client_secret": (
        "GA mints client secrets with client.realtime.client_secrets.create(), "
        "not session.update; remove it"
    ),
}
_GA_ONLY_SETTING = {
    "reasoning": "beta models do not reason; remove it",
    "parallel_tool_calls": "beta models call one tool at a time; remove it",
}

# Content-part types of assistant messages, GA name -> beta name.
_GA_TO_BETA_CONTENT = {ga: beta for beta, ga in BETA_TO_GA_CONTENT.items()}
# Content-part types one dialect lacks (type -> what to do instead).
_BETA_ONLY_CONTENT = {
    "item_reference": (
        "GA references whole items only: put {'type': 'item_reference', 'id': ...} "
        "in response.input"
    ),
}
_GA_ONLY_CONTENT = {"input_image": "beta models do not see images"}


def _refuse(what: str, target: Dialect, instead: str) -> ConfigurationError:
    name = "GA" if target is Dialect.GA else "beta"
    return ConfigurationError(f"{what} has no {name} equivalent: {instead}")


# Client events


def client_event(event: Event, written: Dialect, wire: Dialect) -> Event:
    """``event``, a client event written in the ``written`` shape, for a ``wire`` Session.

    Returns ``event`` itself when nothing changes; raises
    :class:`~rt_notebook.errors.ConfigurationError` when the event, one of its settings or
    content types has no equivalent on the wire.
    """
    kind = event.get("type")
    if written is Dialect.GA:
        _refuse_beta_names(event)
    if written is wire or kind in SAME_CLIENT_EVENTS:
        return event
    if kind == "session.update":
        return {**event, "session": settings(event.get("session") or {}, written, wire)}
    if kind == "conversation.item.create":
        return {**event, "item": item(event.get("item") or {}, written, wire)}
    if kind == "response.create":
        response = event.get("response")
        if response is None:
            return event
        return {**event, "response": response_params(response, written, wire)}
    instead = _NO_EQUIVALENT_EVENT.get(str(kind)) if wire is Dialect.GA else None
    raise _refuse(f"client event {kind!r}", wire, instead or "no such client event is known")


def _refuse_beta_names(event: Event) -> None:
    """Beta setting names in a GA-shaped call: the classic code's mistake, said plainly
    (the service would answer with a missing ``session.type`` or an unknown parameter)."""
    for key, table in (
        ("session", BETA_TO_GA_SESSION_FIELD),
        ("response", BETA_TO_GA_RESPONSE_FIELD),
    ):
        given = event.get(key)
        if not isinstance(given, Mapping):
            continue
        for name in given:
            if name in table or name in _BETA_ONLY_SETTING:
                ga_name = ".".join(table[name]) if name in table else None
                instead = f"GA says {ga_name!r}" if ga_name else "GA has none"
                raise ConfigurationError(
                    f"{key} setting {name!r} is a beta name ({instead}); for code written for "
                    'beta, open the connection with session.connection(shape="beta")'
                )


def settings(session: Mapping[str, Any], written: Dialect, wire: Dialect) -> Event:
    """The ``session`` of a ``session.update`` written in ``written``, for ``wire``."""
    if written is wire:
        return dict(session)
    if wire is Dialect.GA:
        translated = _fields_to_ga(session, BETA_TO_GA_SESSION_FIELD, "session", strict=True)
        return {"type": "realtime", **translated}
    kind = session.get("type", "realtime")
    if kind != "realtime":
        raise _refuse(f"session type {kind!r}", wire, "beta Sessions are realtime sessions")
    return _fields_to_beta(session, BETA_TO_GA_SESSION_FIELD, "session", strict=True)


def response_params(response: Mapping[str, Any], written: Dialect, wire: Dialect) -> Event:
    """The ``response`` of a ``response.create`` written in ``written``, for ``wire``."""
    if written is wire:
        return dict(response)
    if wire is Dialect.GA:
        translated = _fields_to_ga(response, BETA_TO_GA_RESPONSE_FIELD, "response", strict=True)
    else:
        translated = _fields_to_beta(response, BETA_TO_GA_RESPONSE_FIELD, "response", strict=True)
    given_input = translated.get("input")
    if isinstance(given_input, list):
        translated["input"] = [item(entry, written, wire) for entry in given_input]
    return translated


def item(given: Mapping[str, Any], written: Dialect, wire: Dialect) -> Event:
    """A conversation item written in ``written``, for ``wire`` (content types renamed)."""
    if written is wire:
        return dict(given)
    translated = {key: value for key, value in given.items() if key != "object"}
    content = given.get("content")
    if not isinstance(content, list):
        return translated
    renames = BETA_TO_GA_CONTENT if wire is Dialect.GA else _GA_TO_BETA_CONTENT
    missing = _BETA_ONLY_CONTENT if wire is Dialect.GA else _GA_ONLY_CONTENT
    assistant = given.get("role") == "assistant"
    parts = []
    for part in content:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind in missing:
            raise _refuse(f"content type {kind!r}", wire, missing[str(kind)])
        renamed = assistant and kind in renames
        parts.append({**part, "type": renames[str(kind)]} if renamed else part)
    translated["content"] = parts
    return translated


# Server events


def server_event(event: Event, wire: Dialect, wanted: Dialect) -> Event | None:
    """A server event from a ``wire`` Session in the ``wanted`` shape, or ``None`` when
    that shape has no such event. Returns ``event`` itself when nothing changes."""
    if wire is wanted:
        return event
    kind = event.get("type", "")
    if wanted is Dialect.BETA:
        if kind in GA_ONLY_SERVER_EVENTS:
            return None
        renamed = GA_TO_BETA_EVENT.get(kind, kind)
    else:
        if kind in BETA_ONLY_SERVER_EVENTS:
            return None
        renamed = BETA_TO_GA_EVENT.get(kind, kind)
    translated = {**event, "type": renamed}
    given_item = event.get("item")
    if isinstance(given_item, dict):
        translated["item"] = _server_item(given_item, wanted)
    part = event.get("part")
    if isinstance(part, dict):  # response.content_part.*: always an assistant's part
        translated["part"] = _server_part(part, wanted)
    response = event.get("response")
    if isinstance(response, dict):
        translated["response"] = _server_response(response, wanted)
    session = event.get("session")
    if isinstance(session, dict):
        translated["session"] = _server_session(session, wanted)
    return translated


def _server_item(given: Event, wanted: Dialect) -> Event:
    if wanted is Dialect.BETA:
        translated = {**given, "object": "realtime.item"}
    else:
        translated = {key: value for key, value in given.items() if key != "object"}
    content = given.get("content")
    if given.get("role") == "assistant" and isinstance(content, list):
        translated["content"] = [
            _server_part(part, wanted) if isinstance(part, dict) else part for part in content
        ]
    return translated


def _server_part(part: Event, wanted: Dialect) -> Event:
    renames = BETA_TO_GA_CONTENT if wanted is Dialect.GA else _GA_TO_BETA_CONTENT
    kind = part.get("type")
    return {**part, "type": renames[kind]} if kind in renames else part


# The beta response object says ``max_output_tokens``, like GA (only requests differ).
_RESPONSE_OBJECT_FIELD = {
    name: path
    for name, path in BETA_TO_GA_RESPONSE_FIELD.items()
    if name != "max_response_output_tokens"
}


def _server_response(response: Event, wanted: Dialect) -> Event:
    if wanted is Dialect.BETA:
        translated = _fields_to_beta(response, _RESPONSE_OBJECT_FIELD, "response", strict=False)
    else:
        translated = _fields_to_ga(response, _RESPONSE_OBJECT_FIELD, "response", strict=False)
    output = response.get("output")
    if isinstance(output, list):
        translated["output"] = [
            _server_item(entry, wanted) if isinstance(entry, dict) else entry for entry in output
        ]
    return translated


def _server_session(session: Event, wanted: Dialect) -> Event:
    if wanted is Dialect.BETA:
        return _fields_to_beta(session, BETA_TO_GA_SESSION_FIELD, "session", strict=False)
    translated = _fields_to_ga(session, BETA_TO_GA_SESSION_FIELD, "session", strict=False)
    return {"type": "realtime", **translated}


# Fields: one walk each way over a table of beta name -> GA path


def _fields_to_ga(
    given: Mapping[str, Any], table: Mapping[str, Path], scope: str, *, strict: bool
) -> Event:
    """Beta-named ``given`` with GA names: flat audio settings nested under ``audio``."""
    translated: Event = {}
    for name, value in given.items():
        if strict and name in _BETA_ONLY_SETTING:
            raise _refuse(f"{scope} setting {name!r}", Dialect.GA, _BETA_ONLY_SETTING[name])
        path = table.get(name)
        if path is None:
            _put(translated, (name,), copy.deepcopy(value))
        else:
            _put(translated, path, _value_to_ga(name, value, strict=strict))
    return translated


def _fields_to_beta(
    given: Mapping[str, Any], table: Mapping[str, Path], scope: str, *, strict: bool
) -> Event:
    """GA-named ``given`` with beta names: nested audio settings flattened."""
    names = {path: name for name, path in table.items()}
    prefixes = {path[:depth] for path in table.values() for depth in range(1, len(path))}
    translated: Event = {}

    def walk(fields: Mapping[str, Any], here: Path) -> None:
        for key, value in fields.items():
            path = (*here, key)
            if path in names:
                name = names[path]
                translated[name] = _value_to_beta(name, value, strict=strict)
            elif path in prefixes and isinstance(value, Mapping):
                walk(value, path)
            elif strict and (here or key in _GA_ONLY_SETTING):
                instead = _GA_ONLY_SETTING.get(key, "remove it")
                raise _refuse(f"{scope} setting {'.'.join(path)!r}", Dialect.BETA, instead)
            elif not here and key != "type":
                translated[key] = copy.deepcopy(value)

    walk(given, ())
    return translated


def _put(target: Event, path: Path, value: Any) -> None:
    """Set ``target[path]``, merging into dicts already there (``audio`` given twice)."""
    *parents, last = path
    for key in parents:
        child = target.get(key)
        if not isinstance(child, dict):
            child = target[key] = {}
        target = child
    if isinstance(value, Mapping) and isinstance(target.get(last), dict):
        for key, inner in value.items():
            _put(target[last], (key,), inner)
    else:
        target[last] = value


def _value_to_ga(name: str, value: Any, *, strict: bool) -> Any:
    if name == "modalities":
        return _modalities(value, Dialect.GA, strict=strict)
    if name.endswith("_audio_format") and isinstance(value, str):
        converted = BETA_TO_GA_AUDIO_FORMAT.get(value)
        if converted is None:
            if strict:
                raise ConfigurationError(
                    f"{name} must be one of {sorted(BETA_TO_GA_AUDIO_FORMAT)}, not {value!r}"
                )
            return value
        return dict(converted)
    return copy.deepcopy(value)


def _value_to_beta(name: str, value: Any, *, strict: bool) -> Any:
    if name == "modalities":
        return _modalities(value, Dialect.BETA, strict=strict)
    if name.endswith("_audio_format") and isinstance(value, Mapping):
        for beta_name, ga_format in BETA_TO_GA_AUDIO_FORMAT.items():
            if value.get("type") == ga_format["type"] and value.get("rate", 24000) == 24000:
                return beta_name
        if strict:
            raise _refuse(f"audio format {dict(value)!r}", Dialect.BETA, "use audio/pcm at 24 kHz")
        return copy.deepcopy(value)
    return copy.deepcopy(value)


def _modalities(value: Any, dialect: Dialect, *, strict: bool) -> Any:
    """GA takes one of text/audio, beta a set (audio always with text)."""
    try:
        return modalities(value, dialect)
    except (TypeError, ValueError) as error:
        if strict:
            raise ConfigurationError(str(error)) from None
        return value
