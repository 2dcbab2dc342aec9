"""Sans-I/O wire shapes of the embedded server: sessions, items, responses, per dialect.

Inside the server, conversation items are kept in the GA shape (GA is canonical in
rt_notebook, see :mod:`rt_notebook.protocol.events`); sessions are kept in the shape of the
connection's dialect, because ``session.update`` arrives and ``session.updated`` leaves in
that shape. This module builds what goes on the wire: default sessions as the service
sends them, the merge of a ``session.update``, the settings a response runs with, and the
item and response objects of each dialect (field order as in the captures).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rt_notebook.protocol.events import GA_TO_BETA_EVENT, Dialect, Event, new_id

# The C string encoder json.dumps uses (ensure_ascii=False): quotes and escapes one string.
encode_string: Callable[[str], str] = json.encoder.encode_basestring

__all__ = [
    "DeltaTemplate",
    "EncodedEvent",
    "ResponseSettings",
    "Wire",
    "default_session",
    "merge_session",
    "normalize_item",
    "offline_instructions",
    "public_item",
    "render_item",
    "render_response",
    "response_settings",
    "usage",
    "wire_type",
]

SESSION_LIFETIME_S = 3600

_PCM_24K = {"type": "audio/pcm", "rate": 24000}
_SERVER_VAD = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 200,
    "idle_timeout_ms": None,
    "create_response": True,
    "interrupt_response": True,
}
_SEMANTIC_VAD = {
    "type": "semantic_vad",
    "eagerness": "auto",
    "create_response": True,
    "interrupt_response": True,
}
_GA_TO_BETA_CONTENT = {"output_text": "text", "output_audio": "audio"}
_BETA_TO_GA_CONTENT = {beta: ga for ga, beta in _GA_TO_BETA_CONTENT.items()}
# Events the beta dialect does not have (its clients would fail to parse them).
_NOT_IN_BETA = frozenset({"conversation.item.done"})


def offline_instructions(responder_name: str) -> str:
    """Default instructions: they say plainly that no model is answering."""
    return (
        "rt_notebook offline Realtime server. Replies come from the deterministic "
        f"'{responder_name}' responder, not from a language model."
    )


def wire_type(ga_type: str, dialect: Dialect) -> str | None:
    """The event type to send in ``dialect``, or ``None`` when the dialect has no such event."""
    if dialect is Dialect.GA:
        return ga_type
    if ga_type in _NOT_IN_BETA:
        return None
    return GA_TO_BETA_EVENT.get(ga_type, ga_type)


# Sessions


def default_session(
    dialect: Dialect,
    *,
    model: str,
    responder_name: str,
    now: float,
    lifetime: float = SESSION_LIFETIME_S,
) -> Event:
    """The session of ``session.created``, with the service's defaults.

    ``expires_at`` is ``now + lifetime`` in whole seconds, rounded down (a client renewing
    before it is never late).
    """
    common_tail = {
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": math.floor(now + lifetime),
    }
    instructions = offline_instructions(responder_name)
    if dialect is Dialect.GA:
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": new_id("sess"),
            "model": model,
            "output_modalities": ["audio"],
            "instructions": instructions,
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            **common_tail,
            "audio": {
                "input": {
                    "format": dict(_PCM_24K),
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": dict(_SERVER_VAD),
                },
                "output": {"format": dict(_PCM_24K), "voice": "alloy", "speed": 1.0},
            },
            "include": None,
        }
    return {
        "object": "realtime.session",
        "id": new_id("sess"),
        "model": model,
        "modalities": ["audio", "text"],
        "instructions": instructions,
        "voice": "alloy",
        "output_audio_format": "pcm16",
        "tools": [],
        "tool_choice": "auto",
        "temperature": 0.8,
        "max_response_output_tokens": "inf",
        "turn_detection": dict(_SERVER_VAD),
        "speed": 1.0,
        **common_tail,
        "input_audio_noise_reduction": None,
        "input_audio_format": "pcm16",
        "input_audio_transcription": None,
        "client_secret": None,
        "include": None,
    }


def merge_session(session: Event, update: Mapping[str, Any], dialect: Dialect) -> Event:
    """Return ``session`` with a validated ``session.update`` payload applied.

    Nested objects merge key by key; turn detection and transcription are completed with
    the service's defaults for their type; tools are put in the service's field order.
    An empty ``instructions`` keeps the current ones: the GA capture shows the service
    doing exactly that.
    """
    merged = copy.deepcopy(session)
    normalizers = _GA_NORMALIZERS if dialect is Dialect.GA else _BETA_NORMALIZERS
    _merge_into(merged, update, (), normalizers)
    return merged


def _merge_into(
    target: dict[str, Any],
    update: Mapping[str, Any],
    path: tuple[str, ...],
    normalizers: Mapping[tuple[str, ...], Callable[[Any], Any]],
) -> None:
    for key, value in update.items():
        here = (*path, key)
        if here == ("type",) or (here == ("instructions",) and value == ""):
            continue
        if here in normalizers:
            target[key] = normalizers[here](value)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge_into(target[key], value, here, normalizers)
        else:
            target[key] = copy.deepcopy(value)


def _turn_detection(value: Any) -> Any:
    if not isinstance(value, Mapping):
        return value
    defaults = _SEMANTIC_VAD if value.get("type") == "semantic_vad" else _SERVER_VAD
    return {**defaults, **value}


def _transcription(value: Any) -> Any:
    if not isinstance(value, Mapping):
        return value
    return {"model": None, "language": None, "prompt": None, **value}


def _tools(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    order = ("type", "name", "description", "parameters")
    return [
        {
            **{key: tool[key] for key in order if key in tool},
            **{key: tool[key] for key in tool if key not in order},
        }
        for tool in value
    ]


_GA_NORMALIZERS: dict[tuple[str, ...], Callable[[Any], Any]] = {
    ("audio", "input", "turn_detection"): _turn_detection,
    ("audio", "input", "transcription"): _transcription,
    ("tools",): _tools,
}
_BETA_NORMALIZERS: dict[tuple[str, ...], Callable[[Any], Any]] = {
    ("turn_detection",): _turn_detection,
    ("input_audio_transcription",): _transcription,
    ("tools",): _tools,
}


def input_bytes_per_ms(session: Mapping[str, Any], dialect: Dialect) -> int:
    """Bytes per millisecond of the session's input audio format (PCM16 24 kHz or G.711)."""
    if dialect is Dialect.GA:
        kind = session["audio"]["input"]["format"].get("type", "audio/pcm")
        return 48 if kind == "audio/pcm" else 8
    return 48 if session.get("input_audio_format") == "pcm16" else 8


# Responses


@dataclasses.dataclass(frozen=True)
class ResponseSettings:
    """What one response runs with: session settings overridden by ``response.create``."""

    modalities: list[str]
    """Output modalities as the dialect writes them (GA ``["text"]``, beta ``["text"]``…)."""
    instructions: str
    tools: list[Event]
    tool_choice: Any
    max_output_tokens: int | str
    metadata: dict[str, str] | None
    out_of_band: bool
    voice: Any
    audio_format: Any
    temperature: float | None

    @property
    def audio(self) -> bool:
        return "audio" in self.modalities

    @property
    def token_budget(self) -> int | None:
        return self.max_output_tokens if isinstance(self.max_output_tokens, int) else None


def response_settings(
    session: Mapping[str, Any], params: Mapping[str, Any], dialect: Dialect
) -> ResponseSettings:
    """Resolve the settings of a response from the session and its ``response`` params."""

    def pick(name: str, session_value: Any) -> Any:
        value = params.get(name)
        return copy.deepcopy(session_value if value is None else value)

    out_of_band = params.get("conversation") == "none"
    metadata = params.get("metadata")
    if dialect is Dialect.GA:
        output = session["audio"]["output"]
        response_output = (params.get("audio") or {}).get("output") or {}
        return ResponseSettings(
            modalities=pick("output_modalities", session["output_modalities"]),
            instructions=pick("instructions", session["instructions"]),
            tools=pick("tools", session["tools"]),
            tool_choice=pick("tool_choice", session["tool_choice"]),
            max_output_tokens=pick("max_output_tokens", session["max_output_tokens"]),
            metadata=dict(metadata) if metadata is not None else None,
            out_of_band=out_of_band,
            voice=copy.deepcopy(response_output.get("voice") or output["voice"]),
            audio_format=copy.deepcopy(response_output.get("format") or output["format"]),
            temperature=None,
        )
    return ResponseSettings(
        modalities=pick("modalities", session["modalities"]),
        instructions=pick("instructions", session["instructions"]),
        tools=pick("tools", session["tools"]),
        tool_choice=pick("tool_choice", session["tool_choice"]),
        max_output_tokens=pick("max_response_output_tokens", session["max_response_output_tokens"]),
        metadata=dict(metadata) if metadata is not None else None,
        out_of_band=out_of_band,
        voice=pick("voice", session["voice"]),
        audio_format=pick("output_audio_format", session["output_audio_format"]),
        temperature=pick("temperature", session["temperature"]),
    )


def render_response(
    *,
    response_id: str,
    status: str,
    status_details: Event | None,
    output: Sequence[Event],
    conversation_id: str | None,
    settings: ResponseSettings,
    usage: Event | None,
    dialect: Dialect,
) -> Event:
    """The ``response`` object of ``response.created`` / ``response.done``."""
    head = {
        "object": "realtime.response",
        "id": response_id,
        "status": status,
        "status_details": status_details,
        "output": [render_item(item, dialect) for item in output],
        "conversation_id": conversation_id,
    }
    if dialect is Dialect.GA:
        return {
            **head,
            "output_modalities": list(settings.modalities),
            "max_output_tokens": settings.max_output_tokens,
            "audio": {"output": {"format": settings.audio_format, "voice": settings.voice}},
            "usage": usage,
            "metadata": settings.metadata,
        }
    return {
        **head,
        "modalities": list(settings.modalities),
        "voice": settings.voice,
        "output_audio_format": settings.audio_format,
        "temperature": settings.temperature,
        "max_output_tokens": settings.max_output_tokens,
        "usage": usage,
        "metadata": settings.metadata,
    }


def usage(*, input_text: int, input_audio: int, output_text: int, output_audio: int) -> Event:
    """A ``usage`` object with every detail field the service fills."""
    input_tokens = input_text + input_audio
    output_tokens = output_text + output_audio
    return {
        "total_tokens": input_tokens + output_tokens,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "input_token_details": {
            "text_tokens": input_text,
            "audio_tokens": input_audio,
            "image_tokens": 0,
            "cached_tokens": 0,
            "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": output_text, "audio_tokens": output_audio},
    }


# Items


def normalize_item(item: Mapping[str, Any]) -> Event:
    """A validated client item in the canonical GA shape, with an id and a status.

    Beta content names become GA names; the beta-only ``object`` field is dropped. Field
    order follows the captures (``function_call_output`` items carry no status).
    """
    item_id = item.get("id") or new_id("item")
    kind = item["type"]
    if kind == "message":
        role = item["role"]
        content = []
        for given in item["content"]:
            part = dict(given)
            if role == "assistant" and part["type"] in _BETA_TO_GA_CONTENT:
                part["type"] = _BETA_TO_GA_CONTENT[part["type"]]
            if part["type"] == "input_audio":
                part.setdefault("transcript", None)
            content.append(part)
        return {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "role": role,
            "content": content,
        }
    if kind == "function_call":
        return {
            "id": item_id,
            "type": "function_call",
            "status": "completed",
            "name": item["name"],
            "call_id": item.get("call_id") or new_id("call", 16),
            "arguments": item.get("arguments", ""),
        }
    if kind == "mcp_approval_response":
        answer = {
            "id": item_id,
            "type": "mcp_approval_response",
            "approval_request_id": item["approval_request_id"],
            "approve": item["approve"],
        }
        if item.get("reason") is not None:
            answer["reason"] = item["reason"]
        return answer
    return {
        "id": item_id,
        "type": "function_call_output",
        "call_id": item["call_id"],
        "output": item["output"],
    }


def public_item(item: Event) -> Event:
    """``item`` as echoed in ``conversation.item.added``: input audio bytes left out."""
    content = item.get("content")
    if not isinstance(content, list) or not any("audio" in part for part in content):
        return item
    return {
        **item,
        "content": [{k: v for k, v in part.items() if k != "audio"} for part in content],
    }


def render_item(item: Event, dialect: Dialect) -> Event:
    """A copy of canonical ``item`` in ``dialect`` (beta: ``object`` and content renamed)."""
    content = item.get("content")
    if dialect is Dialect.GA:
        rendered = dict(item)
        if isinstance(content, list):
            rendered["content"] = [dict(part) for part in content]
        return rendered
    rendered = {"id": item["id"], "object": "realtime.item"}
    rendered.update((key, value) for key, value in item.items() if key != "id")
    if isinstance(content, list):
        rendered["content"] = [
            {**part, "type": _GA_TO_BETA_CONTENT.get(part["type"], part["type"])}
            if item.get("role") == "assistant"
            else dict(part)
            for part in content
        ]
    return rendered


# Events

# Real text deltas carry an ``obfuscation`` pad so that frame sizes do not reveal the text;
# a fixed pad keeps ours deterministic.
_PAD = "rtnbOfflinePad16"
_PADS = tuple(_PAD[: len(_PAD) - size] for size in range(len(_PAD) + 1))  # by delta length


class EncodedEvent(dict[str, Any]):
    """A server event that carries its own JSON ``text``, built from a template.

    It is an ordinary event dict (tests and the driver read its fields) whose wire text was
    assembled from pre-encoded pieces instead of by :func:`json.dumps`. Never modify one:
    the text would no longer match.
    """

    __slots__ = ("text",)
    text: str


class DeltaTemplate:
    """Pre-encoded pieces of the delta events of one output stream.

    Only the ``event_id``, the delta and its pad change from one delta to the next, so the
    rest of the frame is encoded once, when the stream opens. ``padded`` deltas carry an
    ``obfuscation`` pad (text, transcripts, function arguments; not audio bytes).
    """

    __slots__ = ("_fields", "_head", "_middle", "_padded", "_type", "_wire")

    def __init__(self, wire: Wire, ga_type: str, fields: Mapping[str, Any], *, padded: bool):
        event_type = wire_type(ga_type, wire.dialect)
        assert event_type is not None, ga_type
        self._wire = wire
        self._type = event_type
        self._fields = dict(fields)
        self._padded = padded
        self._head = '{"type":' + encode_string(event_type) + ',"event_id":"'
        encoded_fields = "".join(
            "," + encode_string(name) + ":" + _encode(value) for name, value in fields.items()
        )
        self._middle = '"' + encoded_fields + ',"delta":'

    def __call__(self, delta: str) -> EncodedEvent:
        event_id = self._wire.next_event_id()
        event = EncodedEvent(type=self._type, event_id=event_id, **self._fields, delta=delta)
        text = self._head + event_id + self._middle + encode_string(delta)
        if self._padded:
            pad = _PADS[min(len(delta), len(_PAD))]
            event["obfuscation"] = pad
            text += ',"obfuscation":"' + pad + '"}'
        else:
            text += "}"
        event.text = text
        return event


def _encode(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Wire:
    """Builds server events in one dialect: names, fresh ``event_id``\\ s, item shapes."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        # Event ids: a random stem per connection and a counter, as unique as random ids
        # and far cheaper (one is minted for every frame); 21 characters, like the service's.
        self._id_stem = new_id("event", 13)
        self._id_count = itertools.count()

    def next_event_id(self) -> str:
        return f"{self._id_stem}{next(self._id_count):08x}"

    def event(self, ga_type: str, **fields: Any) -> Event:
        """A server event named by its GA type; it must exist in the dialect."""
        wire = wire_type(ga_type, self.dialect)
        assert wire is not None, ga_type
        return {"type": wire, "event_id": self.next_event_id(), **fields}

    def optional_event(self, ga_type: str, **fields: Any) -> list[Event]:
        """``[event]``, or ``[]`` when the dialect has no such event (beta item.done)."""
        if wire_type(ga_type, self.dialect) is None:
            return []
        return [self.event(ga_type, **fields)]

    def delta_template(
        self, ga_type: str, fields: Mapping[str, Any], *, padded: bool = True
    ) -> DeltaTemplate:
        """The template of ``ga_type`` deltas with these fields between the id and the delta."""
        return DeltaTemplate(self, ga_type, fields, padded=padded)

    def item(self, item: Event) -> Event:
        return render_item(item, self.dialect)

    @staticmethod
    def pad(delta: str) -> str:
        """The ``obfuscation`` of a text-like delta: pads it to 16 characters."""
        return _PADS[min(len(delta), len(_PAD))]
