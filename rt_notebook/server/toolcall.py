"""Sans-I/O rule by which the embedded server's offline responders decide to call a function
tool.

There is no model behind the embedded server, so a fixed, documented rule stands in for
the model's judgement. Given the user's message, the function tools of the response and
its ``tool_choice``:

1. ``tool_choice: "none"`` (or no function tools): never call.
2. Explicit form, always honoured for a configured tool: a message containing
   ``call NAME`` optionally followed by a JSON object, e.g.
   ``call get_weather {"city": "Paris"}``. Without a JSON object the arguments are filled
   by rule 5.
3. A named ``tool_choice`` (``{"type": "function", "name": NAME}``; in beta any string
   other than ``auto``/``none``/``required``) forces that tool.
4. Otherwise a tool is called when the words of its name appear in the message, after
   dropping a leading verb (get, set, list, fetch, find, search, lookup, look, query, check,
   read, create, make, add, update, delete, remove, send, run, compute, calculate, do).
   Name words come from ``snake_case``, ``kebab-case`` and ``camelCase``; a message word
   also matches with a trailing ``s``/``es``. ``get_weather`` is requested by "What is the
   weather in London?"; ``get_stock_price`` needs both "stock" and "price". The first
   matching tool in declaration order wins. With ``tool_choice: "required"`` and no match,
   the first tool is called.
5. Arguments come from the tool's JSON-schema ``parameters``, property by property in
   declaration order; required properties always get a value, optional ones only when the
   message supplies one:

   - ``string`` with ``enum``: the first enum value found in the message (else, if
     required, the first enum value);
   - ``string``: the next unused capitalised phrase that follows "in", "for", "of" or
     "about" ("the weather in New York" gives "New York"), then the next capitalised word
     that does not start a sentence, then (if required) the last capitalised word, or the
     message's last word;
   - ``integer`` / ``number``: the next unused number in the message (if required: 0);
   - ``boolean``: true when the message says "yes" or "true", else false;
   - ``array`` / ``object``: empty, and only when required.

So tools=[get_weather(city: string)] and "What is the weather in London?" give
``get_weather({"city": "London"})``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["PlannedCall", "choose_call", "fill_arguments", "tool_requested"]

LEADING_VERBS = frozenset(
    {
        "get", "set", "list", "fetch", "find", "search", "lookup", "look", "query", "check",
        "read", "create", "make", "add", "update", "delete", "remove", "send", "run",
        "compute", "calculate", "do",
    }
)  # fmt: skip
_PREPOSITIONS = ("in", "for", "of", "about")
_WORD = re.compile(r"[A-Za-z0-9][\w'-]*")
_CAPITALISED_RUN = re.compile(r"[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_EXPLICIT = re.compile(r"\bcall\s+([A-Za-z_][\w.-]*)", re.IGNORECASE)
_SENTENCE_START = re.compile(r"(?:^|[.!?]\s+)$")


@dataclasses.dataclass(frozen=True)
class PlannedCall:
    """A function call a responder decided to make: tool ``name`` with JSON ``arguments``."""

    name: str
    arguments: str


def choose_call(
    message: str, tools: Sequence[Mapping[str, Any]], tool_choice: object
) -> PlannedCall | None:
    """Apply the module's rule; return the call to make, or ``None`` to answer in text."""
    functions = [tool for tool in tools if tool.get("type", "function") == "function"]
    if tool_choice == "none" or not functions:
        return None
    by_name = {str(tool.get("name")): tool for tool in functions}

    explicit = _explicit_call(message, by_name)
    if explicit is not None:
        return explicit
    forced = _forced_name(tool_choice)
    if forced is not None and forced in by_name:
        return _call(by_name[forced], message)
    for tool in functions:
        if tool_requested(str(tool.get("name", "")), message):
            return _call(tool, message)
    if tool_choice == "required":
        return _call(functions[0], message)
    return None


def tool_requested(name: str, message: str) -> bool:
    """Whether the words of tool ``name`` (minus a leading verb) all appear in ``message``."""
    words = _name_words(name)
    if len(words) > 1 and words[0] in LEADING_VERBS:
        words = words[1:]
    if not words:
        return False
    said = {word.lower() for word in _WORD.findall(message)}
    return all(word in said or word + "s" in said or word + "es" in said for word in words)


def fill_arguments(parameters: object, message: str) -> dict[str, Any]:
    """Arguments for a tool with JSON-schema ``parameters``, filled from ``message``."""
    if not isinstance(parameters, Mapping):
        return {}
    properties = parameters.get("properties")
    if not isinstance(properties, Mapping):
        return {}
    required = set(parameters.get("required") or ())
    phrases = _phrases(message)
    numbers = _NUMBER.findall(message)
    arguments: dict[str, Any] = {}
    for name, schema in properties.items():
        value = _value_for(schema if isinstance(schema, Mapping) else {}, message, phrases, numbers)
        if value is not None:
            arguments[name] = value
        elif name in required:
            arguments[name] = _required_default(
                schema if isinstance(schema, Mapping) else {}, message
            )
    return arguments


# Helpers


def _explicit_call(message: str, by_name: Mapping[str, Mapping[str, Any]]) -> PlannedCall | None:
    for match in _EXPLICIT.finditer(message):
        tool = by_name.get(match.group(1))
        if tool is None:
            continue
        rest = message[match.end() :].lstrip()
        if rest.startswith("{"):
            try:
                arguments, _ = json.JSONDecoder().raw_decode(rest)
            except json.JSONDecodeError:
                arguments = None
            if isinstance(arguments, dict):
                return PlannedCall(match.group(1), _dump(arguments))
        return _call(tool, message[: match.start()] + message[match.end() :])
    return None


def _forced_name(tool_choice: object) -> str | None:
    if isinstance(tool_choice, Mapping) and tool_choice.get("type") == "function":
        name = tool_choice.get("name")
        return name if isinstance(name, str) else None
    if isinstance(tool_choice, str) and tool_choice not in ("auto", "none", "required"):
        return tool_choice
    return None


def _call(tool: Mapping[str, Any], message: str) -> PlannedCall:
    return PlannedCall(
        str(tool.get("name")), _dump(fill_arguments(tool.get("parameters"), message))
    )


def _dump(arguments: Mapping[str, Any]) -> str:
    return json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))


def _name_words(name: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return [word.lower() for word in re.split(r"[\s_.\-]+", spaced) if word]


def _phrases(message: str) -> list[str]:
    """Capitalised phrases, best first: after a preposition, then mid-sentence ones."""
    after_preposition: list[str] = []
    elsewhere: list[str] = []
    for match in _CAPITALISED_RUN.finditer(message):
        before = message[: match.start()]
        previous = _WORD.findall(before[-12:])
        if previous and previous[-1].lower() in _PREPOSITIONS:
            after_preposition.append(match.group())
        elif not _SENTENCE_START.search(before) and match.group() != "I":
            elsewhere.append(match.group())
    return after_preposition + [phrase for phrase in elsewhere if phrase not in after_preposition]


def _value_for(
    schema: Mapping[str, Any], message: str, phrases: list[str], numbers: list[str]
) -> object:
    kind = schema.get("type")
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        lowered = message.lower()
        return next((value for value in enum if str(value).lower() in lowered), None)
    if kind == "string":
        return phrases.pop(0) if phrases else None
    if kind in ("integer", "number"):
        if not numbers:
            return None
        number = float(numbers.pop(0))
        return int(number) if kind == "integer" else number
    if kind == "boolean":
        words = {word.lower() for word in _WORD.findall(message)}
        return bool(words & {"yes", "true"}) if words & {"yes", "true", "no", "false"} else None
    return None


def _required_default(schema: Mapping[str, Any], message: str) -> object:
    kind = schema.get("type")
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    if kind == "string":
        capitalised = _CAPITALISED_RUN.findall(message)
        if capitalised:
            return capitalised[-1]
        words = _WORD.findall(message)
        return words[-1] if words else ""
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    return {}
