"""Sans-I/O checks of session and response settings against the ``openai`` SDK's own types.

Before a ``session.update`` or a response's settings are sent, the body is validated with
pydantic over the SDK's TypedDicts (``RealtimeSessionCreateRequestParam`` and
``RealtimeResponseCreateParamsParam`` for GA, the beta ``Session`` and ``Response``),
with unknown keys forbidden at every level. A problem becomes one line naming the field
and what it takes (``reasoning.effort: should be 'minimal', 'low', 'medium', 'high' or
'xhigh', not 'hgh'``), so a typo never reaches the server, where it would be refused.

pydantic and the SDK's types load on the first check, never on import: ``%load_ext``
stays fast.
"""

from __future__ import annotations

import difflib
import functools
import typing
from collections.abc import Mapping
from typing import Any

from .events import Dialect

__all__ = ["SettingsCheckError", "check_response", "check_session", "session_fields"]


class SettingsCheckError(ValueError):
    """A setting the SDK's types refuse; the message is one line."""


def check_session(body: Mapping[str, Any], dialect: Dialect) -> None:
    """Refuse a ``session.update`` body the SDK's session type does not take."""
    _check("session", dialect, body)


def check_response(body: Mapping[str, Any], dialect: Dialect) -> None:
    """Refuse a ``response.create`` body the SDK's response type does not take."""
    _check("response", dialect, body)


def session_fields(dialect: Dialect) -> list[str]:
    """The top-level fields a ``session.update`` takes in ``dialect``."""
    return sorted(_keys(_root("session", dialect)))


def _root(kind: str, dialect: Dialect) -> Any:
    if dialect is Dialect.GA:
        from openai.types.realtime import (
            RealtimeResponseCreateParamsParam,
            RealtimeSessionCreateRequestParam,
        )

        if kind == "session":
            return RealtimeSessionCreateRequestParam
        return RealtimeResponseCreateParamsParam
    from openai.types.beta.realtime import response_create_event_param, session_update_event_param

    if kind == "session":
        return session_update_event_param.Session
    return response_create_event_param.Response


@functools.cache
def _adapter(kind: str, dialect: Dialect) -> Any:
    import pydantic

    # A 1-tuple, so the config (unknown keys forbidden) reaches every nested TypedDict.
    one: Any = tuple.__class_getitem__((_root(kind, dialect),))
    return pydantic.TypeAdapter(one, config=pydantic.ConfigDict(extra="forbid", strict=True))


def _check(kind: str, dialect: Dialect, body: Mapping[str, Any]) -> None:
    import pydantic

    try:
        _adapter(kind, dialect).validate_python((body,))
    except pydantic.ValidationError as exc:
        why = _describe(exc.errors(), body, kind, dialect)
        if why:  # only a None the SDK's types do not expect: the service takes it
            raise SettingsCheckError(why) from None


def _describe(problems: list[Any], body: Mapping[str, Any], kind: str, dialect: Dialect) -> str:
    """One line for the most telling of pydantic's errors."""
    located = [(_where(p["loc"][1:], body, p["type"]), p) for p in problems]
    # A None turns a setting off (turn detection, transcription, noise reduction, tracing):
    # the service takes it where the SDK's types do not say so.
    located = [
        (path, p)
        for path, p in located
        if p["type"] == "extra_forbidden" or p.get("input", ...) is not None
    ]
    if not located:
        return ""
    # A union reports every branch: drop the branches whose ``type`` is another one, then
    # keep the deepest path (the branch the value meant).
    wrong = {
        tag
        for path, p in located
        if p["type"] == "literal_error" and path and path[-1] == "type"
        for tag in _branches(p["loc"][1:], body)
    }
    kept = [(path, p) for path, p in located if not wrong & _branches(p["loc"][1:], body)]
    located = kept or located
    deepest = max(len(path) for path, _ in located)
    located = [(path, p) for path, p in located if len(path) == deepest]
    path, first = located[0]
    field = ".".join(str(part) for part in path)
    if first["type"] == "extra_forbidden":
        name = str(path[-1])
        allowed = _allowed_at(_root(kind, dialect), first["loc"][1:-1])
        hint = ""
        close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.75)
        if close:
            hint = f" (did you mean {close[0]!r}?)"
        where = ".".join(str(part) for part in path[:-1]) or kind
        takes = f"; {where} takes {', '.join(allowed)}" if allowed else ""
        return f"unknown setting {field!r}{hint}{takes}"
    if first["type"] == "missing":
        return f"{field} is missing: it is required there"
    wanted = " or ".join(dict.fromkeys(_wanted(p) for q, p in located if q == path))
    return f"{field or kind}: should be {wanted}, not {_value_at(body, path)!r}"


# What a value should be, by pydantic error type (the literal errors list their values).
_WANTED = {
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "dict_type": "an object",
    "list_type": "a list",
    "tuple_type": "a list",
}


def _wanted(problem: Mapping[str, Any]) -> str:
    known = _WANTED.get(str(problem["type"]))
    if known is not None:
        return known
    message = str(problem.get("msg", ""))
    return message.removeprefix("Input should be ").removeprefix("Value error, ")


def _has(value: Any, part: Any) -> bool:
    if isinstance(value, Mapping):
        return part in value
    return isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value)


def _where(loc: tuple[Any, ...], body: Any, kind: str = "") -> tuple[Any, ...]:
    """The path of ``loc`` in ``body``, without the union branch names pydantic adds."""
    path: list[Any] = []
    value = body
    for position, part in enumerate(loc):
        if _has(value, part):
            path.append(part)
            value = value[part]
        elif isinstance(value, Mapping) and position == len(loc) - 1 and kind == "missing":
            path.append(part)  # a required key that is not there
    return tuple(path)


def _branches(loc: tuple[Any, ...], body: Any) -> set[tuple[int, Any]]:
    """The union branch names in ``loc`` (the parts that are not keys of ``body``)."""
    tags: set[tuple[int, Any]] = set()
    value = body
    for position, part in enumerate(loc):
        if _has(value, part):
            value = value[part]
        else:
            tags.add((position, part))
    return tags


def _value_at(body: Any, path: tuple[Any, ...]) -> Any:
    value = body
    for part in path:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def _allowed_at(root: Any, loc: tuple[Any, ...]) -> list[str]:
    """The keys the SDK's type declares where pydantic's ``loc`` points (it names the
    union branch it tried)."""
    hint: Any = root
    for part in loc:
        hint = _unwrap(hint, part)
        if hint is None:
            return []
        if isinstance(part, int):
            continue
        keys = _keys(hint)
        if part in keys:
            hint = keys[part]
    hint = _unwrap(hint, None)
    return sorted(_keys(hint)) if hint is not None else []


def _unwrap(hint: Any, branch: Any) -> Any:
    """The TypedDict inside ``Optional``/``Required``/``list``/``Union`` (by branch name)."""
    for _ in range(8):
        if _is_typed_dict(hint):
            return hint
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if not args:
            return None
        dicts = [a for a in args if _is_typed_dict(a)]
        named = [a for a in dicts if getattr(a, "__name__", None) == branch]
        if named:
            return named[0]
        if len(dicts) == 1 and len(args) > 1:
            return dicts[0]
        hint = args[0] if len(args) == 1 or not dicts else dicts[0]
    return None


def _is_typed_dict(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, dict) and hasattr(hint, "__total__")


def _keys(hint: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(hint)
    except Exception:  # a forward reference the SDK leaves unresolved
        return dict(getattr(hint, "__annotations__", {}))
