"""Sans-I/O responders: what the offline server answers, decided by fixed rules.

A responder gets a :class:`ResponseRequest` (the items the response sees, instructions,
tools, ``tool_choice``, modalities, metadata) and returns the outputs to stream: a
:class:`PlannedMessage` (text; spoken as beeps plus transcript when audio is requested)
and/or a :class:`PlannedCall` (a function call). Responders are pure and deterministic:
the same request always gives the same answer, and one instance may serve many
connections at once. No responder pretends to be a model.

``echo`` (:class:`EchoResponder`, the default)
    1. If the response follows function results (the newest items after the last user
       message are ``function_call_output``\\ s), it reports them, one paragraph each:
       ``get_weather returned: <output>``.
    2. Else, if the user's message asks for a tool by the rule in
       :mod:`rt_notebook.server.toolcall`, it calls that tool.
    3. Else it echoes the last user message. A single line that does not start a Markdown
       block is answered ``Echo: <text>``; anything else (several lines, a heading, a list,
       a quote, a code fence, a table) is answered ``Echo:``, a blank line, then the text
       verbatim, so the user's Markdown renders unchanged. Audio without a transcript is
       answered ``Echo: (audio, 1.20 s)``; an image is named after the text, from its data
       URI's PNG or JPEG header (``Echo: what is this? [image 640x480 PNG]``); no user
       message at all ``Echo: (nothing to echo yet)``. With ``max_words`` (the embedded
       server sets it from its pace, so that an echo streams for at most
       :data:`ECHO_SECONDS`), a longer message is echoed up to that many words, then a note
       on its own line: ``[offline echo truncated after 6,000 words: 200,000 characters
       received]`` (a code fence left open is closed first).

``scripted`` (:class:`ScriptedResponder`)
    Answers from a JSON script (:func:`load_script`)::

        {
          "rules": [
            {"match": "weather", "reply": "Let me look that up."},
            {"match": "^call me$", "call": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
            {"match": "get_weather returned: (.*)", "reply": "Here you are: {input}"}
          ],
          "turns": ["Hello! I am a scripted offline server.", {"reply": "Second answer."}],
          "fallback": "The script has no answer for that."
        }

    The text the script sees is the last user message or, after function results, the
    ``NAME returned: OUTPUT`` lines of the echo responder. Resolution order:

    1. ``rules``: the first entry whose ``match`` (a Python regular expression, searched
       case-insensitively) is found in the text answers with its ``reply`` (where
       ``{input}`` is replaced by the text) or makes its ``call``.
    2. The function-call rule of :mod:`rt_notebook.server.toolcall`, when tools are on.
    3. ``turns``: the n-th user message of the conversation (0-based) gets ``turns[n]``
       (a string, ``{"reply": ...}`` or ``{"call": ...}``). Responses that follow function
       results skip this step, so a scripted call cannot repeat itself forever.
    4. ``fallback`` if given, else the echo responder's answer.

    A file whose top level is a list is shorthand for ``{"turns": [...]}``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeAlias, runtime_checkable

from rt_notebook.protocol.events import Event
from rt_notebook.protocol.images import ImagePart
from rt_notebook.server.tone import BYTES_PER_MS
from rt_notebook.server.toolcall import PlannedCall, choose_call

__all__ = [
    "ECHO_SECONDS",
    "EchoResponder",
    "PlannedCall",
    "PlannedMessage",
    "PlannedOutput",
    "Responder",
    "ResponseRequest",
    "Script",
    "ScriptError",
    "ScriptedResponder",
    "echo_reply",
    "echo_words_for",
    "load_script",
    "make_responder",
]

RESPONDER_NAMES = ("echo", "scripted")


@dataclasses.dataclass(frozen=True)
class PlannedMessage:
    """An assistant message to stream: ``text`` (the transcript when spoken)."""

    text: str


PlannedOutput: TypeAlias = PlannedMessage | PlannedCall


@dataclasses.dataclass(frozen=True)
class ResponseRequest:
    """Everything a responder may look at to answer one ``response.create``."""

    context: Sequence[Event]
    """Items the response sees, oldest first, in GA shape (the conversation, or ``input``).

    Items are copies made as they are read: read from the end, as the built-in responders
    do, so that a turn does not cost more as the conversation grows."""
    instructions: str
    tools: tuple[Event, ...]
    """Function tools in effect (``{"type": "function", "name", "parameters", ...}``)."""
    tool_choice: object
    """``"auto"``, ``"none"``, ``"required"`` or a named choice."""
    output_modalities: tuple[str, ...]
    metadata: Mapping[str, str] | None = None
    in_conversation: bool = True
    """False for out-of-band responses (``conversation: "none"``)."""
    max_output_tokens: int | None = None
    """The response's output token budget (``None``: no limit)."""


@runtime_checkable
class Responder(Protocol):
    """Decides what the offline server answers. Implementations must be deterministic."""

    @property
    def name(self) -> str:
        """Short name shown in the session instructions (``echo``, ``scripted``)."""
        ...

    def respond(self, request: ResponseRequest) -> Sequence[PlannedOutput]:
        """The outputs of the response, in order (may be empty)."""
        ...


# The echo responder


ECHO_SECONDS = 120.0
"""How long, at most, the embedded server's echo of one message streams at its pace."""


def echo_words_for(pace: float) -> int | None:
    """The ``max_words`` of an echo that streams for at most :data:`ECHO_SECONDS`."""
    return None if pace <= 0 else max(100, int(ECHO_SECONDS / pace))


class EchoResponder:
    """Echoes the last user message, calls tools on request, reports tool results.

    ``max_words`` caps how much of a message is echoed (``None``: all of it).
    """

    name = "echo"
    max_words: int | None = None  # also for subclasses that do not call __init__

    def __init__(self, max_words: int | None = None) -> None:
        if max_words is not None and max_words < 1:
            raise ValueError(f"max_words must be >= 1 or None, not {max_words}")
        self.max_words = max_words

    def respond(self, request: ResponseRequest) -> Sequence[PlannedOutput]:
        results = tool_results(request.context)
        if results:
            return [PlannedMessage(results)]
        text = last_user_text(request.context)
        if text is not None:
            call = choose_call(text, request.tools, request.tool_choice)
            if call is not None:
                return [call]
        return [PlannedMessage(echo_reply(text, max_words=self.max_words))]

    def __repr__(self) -> str:
        return f"EchoResponder(max_words={self.max_words})" if self.max_words else "EchoResponder()"


_MARKDOWN_BLOCK = re.compile(r"(#{1,6}\s|[-*+]\s|>|\d+[.)]\s|```|~~~|\||\s{4}|\t|---|===)")


_ECHO_WORD = re.compile(r"\s*\S+")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.MULTILINE)


def echo_reply(text: str | None, *, max_words: int | None = None) -> str:
    """The echo responder's answer to user text ``text`` (see the module docstring)."""
    if text is None or not text.strip():
        return "Echo: (nothing to echo yet)"
    if max_words is not None:
        text = _truncated(text, max_words)
    if "\n" not in text.strip() and not _MARKDOWN_BLOCK.match(text):
        return f"Echo: {text.strip()}"
    return f"Echo:\n\n{text}"


def _truncated(text: str, max_words: int) -> str:
    """``text`` cut after ``max_words`` words, with a note saying so (unchanged if shorter)."""
    words = _ECHO_WORD.finditer(text)
    end = 0
    for count, word in enumerate(words, 1):
        end = word.end()
        if count == max_words:
            break
    else:
        return text
    if not text[end:].strip():
        return text
    kept = text[:end]
    fences = _FENCE.findall(kept)
    if len(fences) % 2:  # the cut falls inside a code block: close it
        kept += "\n" + fences[-1]
    return (
        f"{kept}\n\n[offline echo truncated after {max_words:,} words: "
        f"{len(text):,} characters received]"
    )


def last_user_text(context: Sequence[Event]) -> str | None:
    """Text of the newest user message in ``context`` (audio described), if any."""
    for item in reversed(context):
        if item.get("type") == "message" and item.get("role") == "user":
            return _message_text(item)
    return None


def tool_results(context: Sequence[Event]) -> str | None:
    """``NAME returned: OUTPUT`` paragraphs when ``context`` ends with function results."""
    outputs: list[Event] = []
    for item in reversed(context):
        if item.get("type") != "function_call_output":
            break
        outputs.append(item)
    if not outputs:
        return None
    # The calls answered, found by reading back from the results only as far as needed.
    wanted = {item.get("call_id") for item in outputs}
    names: dict[object, object] = {}
    for index in range(len(context) - len(outputs) - 1, -1, -1):
        if not wanted - names.keys():
            break
        item = context[index]
        if item.get("type") == "function_call" and item.get("call_id") not in names:
            names[item.get("call_id")] = item.get("name")
    lines = []
    for item in reversed(outputs):
        name = names.get(item.get("call_id")) or item.get("call_id")
        lines.append(f"{name} returned: {item.get('output', '')}")
    return "\n\n".join(lines)


def _message_text(item: Event) -> str:
    pieces: list[str] = []
    images: list[str] = []
    for part in item.get("content") or ():
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            pieces.append(str(part.get("text", "")))
        elif kind in ("input_audio", "output_audio", "audio"):
            transcript = part.get("transcript")
            pieces.append(transcript if transcript else f"(audio, {_audio_seconds(part):.2f} s)")
        elif kind == "input_image":
            url = part.get("image_url")
            label = ImagePart.from_url(url).short_label if isinstance(url, str) else "image"
            images.append(f"[{label}]")
    text = "\n\n".join(piece for piece in pieces if piece)
    # Images close the text's last line: "what is this? [image 640x480 PNG]".
    return " ".join(piece for piece in (text, *images) if piece)


def _audio_seconds(part: Mapping[str, Any]) -> float:
    try:
        size = len(base64.b64decode(part.get("audio") or "", validate=True))
    except (binascii.Error, ValueError):
        size = 0
    return size / BYTES_PER_MS / 1000


# The scripted responder


class ScriptError(ValueError):
    """A script file that cannot be used, with where and why."""


@dataclasses.dataclass(frozen=True)
class _ScriptAnswer:
    reply: str | None = None
    call: PlannedCall | None = None

    def render(self, text: str) -> PlannedOutput:
        if self.call is not None:
            return self.call
        assert self.reply is not None
        return PlannedMessage(self.reply.replace("{input}", text))


@dataclasses.dataclass(frozen=True)
class Script:
    """A parsed script: regex ``rules``, ordered ``turns`` and a ``fallback``."""

    rules: tuple[tuple[re.Pattern[str], _ScriptAnswer], ...] = ()
    turns: tuple[_ScriptAnswer, ...] = ()
    fallback: str | None = None


def load_script(path: str | os.PathLike[str]) -> Script:
    """Read and check a script file (format in the module docstring)."""
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except OSError as exc:
        raise ScriptError(f"{path}: cannot read the script: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ScriptError(f"{path}: not valid JSON: {exc}") from exc
    return parse_script(data, source=str(path))


def parse_script(data: object, *, source: str = "script") -> Script:
    """Check and convert already-decoded script ``data``."""
    if isinstance(data, list):
        data = {"turns": data}
    if not isinstance(data, dict):
        raise ScriptError(f"{source}: the top level must be an object or a list of turns")
    unknown = set(data) - {"rules", "turns", "fallback"}
    if unknown:
        raise ScriptError(f"{source}: unknown keys {sorted(unknown)}; use rules, turns, fallback")
    rules = []
    for index, entry in enumerate(_list(data, "rules", source)):
        where = f"{source}: rules[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("match"), str):
            raise ScriptError(f"{where}: expected an object with a 'match' regular expression")
        try:
            pattern = re.compile(entry["match"], re.IGNORECASE)
        except re.error as exc:
            raise ScriptError(f"{where}: invalid regular expression: {exc}") from exc
        rules.append((pattern, _answer({k: v for k, v in entry.items() if k != "match"}, where)))
    turns = tuple(
        _answer(entry, f"{source}: turns[{index}]")
        for index, entry in enumerate(_list(data, "turns", source))
    )
    fallback = data.get("fallback")
    if fallback is not None and not isinstance(fallback, str):
        raise ScriptError(f"{source}: fallback must be a string")
    return Script(rules=tuple(rules), turns=turns, fallback=fallback)


def _list(data: Mapping[str, Any], key: str, source: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ScriptError(f"{source}: {key} must be a list")
    return value


def _answer(entry: object, where: str) -> _ScriptAnswer:
    if isinstance(entry, str):
        return _ScriptAnswer(reply=entry)
    if isinstance(entry, dict) and set(entry) == {"reply"} and isinstance(entry["reply"], str):
        return _ScriptAnswer(reply=entry["reply"])
    if isinstance(entry, dict) and set(entry) == {"call"} and isinstance(entry["call"], dict):
        call = entry["call"]
        name, arguments = call.get("name"), call.get("arguments", {})
        if (
            isinstance(name, str)
            and isinstance(arguments, dict)
            and set(call) <= {"name", "arguments"}
        ):
            return _ScriptAnswer(call=PlannedCall(name, json.dumps(arguments, ensure_ascii=False)))
        raise ScriptError(f"{where}: call must be {{'name': str, 'arguments': object}}")
    raise ScriptError(f"{where}: expected a string, {{'reply': str}} or {{'call': {{...}}}}")


class ScriptedResponder:
    """Answers from a :class:`Script` (see the module docstring for the rules)."""

    name = "scripted"

    def __init__(self, script: Script) -> None:
        self.script = script

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ScriptedResponder:
        return cls(load_script(path))

    def respond(self, request: ResponseRequest) -> Sequence[PlannedOutput]:
        results = tool_results(request.context)
        text = results if results is not None else last_user_text(request.context)
        seen = text or ""
        for pattern, answer in self.script.rules:
            if pattern.search(seen):
                return [answer.render(seen)]
        if results is None and text is not None:
            call = choose_call(text, request.tools, request.tool_choice)
            if call is not None:
                return [call]
            turn = _user_message_count(request.context) - 1
            if 0 <= turn < len(self.script.turns):
                return [self.script.turns[turn].render(seen)]
        if self.script.fallback is not None:
            return [PlannedMessage(self.script.fallback.replace("{input}", seen))]
        return EchoResponder().respond(request)

    def __repr__(self) -> str:
        return f"ScriptedResponder(rules={len(self.script.rules)}, turns={len(self.script.turns)})"


def _user_message_count(context: Sequence[Event]) -> int:
    return sum(
        1 for item in context if item.get("type") == "message" and item.get("role") == "user"
    )


# Construction by name (EmbeddedServer, CLI)


def make_responder(
    spec: str | Responder = "echo",
    script: str | os.PathLike[str] | None = None,
    *,
    echo_max_words: int | None = None,
) -> Responder:
    """A responder from a name (``"echo"``, ``"scripted"``) or an instance.

    Giving ``script`` implies ``"scripted"`` (the default ``"echo"`` is overridden).
    ``echo_max_words`` is the ``max_words`` of an echo responder made by name.
    """
    if not isinstance(spec, str):
        if not isinstance(spec, Responder):
            raise TypeError(f"responder must be a name or a Responder, not {type(spec).__name__}")
        return spec
    if spec == "scripted" or (spec == "echo" and script is not None):
        if script is None:
            raise ValueError("responder 'scripted' needs script=PATH (a JSON script file)")
        return ScriptedResponder.from_file(script)
    if spec == "echo":
        return EchoResponder(max_words=echo_max_words)
    raise ValueError(f"unknown responder {spec!r}; choose one of {', '.join(RESPONDER_NAMES)}")
