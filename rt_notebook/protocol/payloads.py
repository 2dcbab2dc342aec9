"""Sans-I/O client event bodies in each dialect: messages, session and response settings.

rt_notebook speaks in one vocabulary (``modalities=["text"]``, ``voice=...``,
``max_output_tokens=...``); these functions write it the way each dialect wants it: GA
nests the voice under ``audio.output`` and says ``output_modalities``, beta keeps
``voice`` and ``modalities`` at the top and calls the limit ``max_response_output_tokens``.
Values left as ``None`` are omitted, so the server keeps its own defaults.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .events import BETA_TO_GA_RESPONSE_FIELD, BETA_TO_GA_SESSION_FIELD, Dialect
from .options import ResponseOptions, Unpack

__all__ = [
    "MAX_APPEND_AUDIO_CHARS",
    "MAX_OUTPUT_TOKENS",
    "METADATA_MAX_KEY",
    "METADATA_MAX_PAIRS",
    "METADATA_MAX_VALUE",
    "TURN_DETECTION_PARAMS",
    "append_events",
    "message_item",
    "modalities",
    "response_settings",
    "session_settings",
    "settings_view",
    "transcription_settings",
    "turn_detection_settings",
]

# Limits the service enforces that the SDK's types do not express.
MAX_OUTPUT_TOKENS = 4096  # max_output_tokens: 1..4096 or "inf"
METADATA_MAX_PAIRS = 16
METADATA_MAX_KEY = 64
METADATA_MAX_VALUE = 512
# input_audio_buffer.append: at most 15 MiB of base64 audio per event.
MAX_APPEND_AUDIO_CHARS = 15 * 1024 * 1024

# The turn detection settings each mode takes (besides ``type``).
TURN_DETECTION_PARAMS: dict[str, frozenset[str]] = {
    "server_vad": frozenset(
        {
            "threshold",
            "prefix_padding_ms",
            "silence_duration_ms",
            "create_response",
            "interrupt_response",
            "idle_timeout_ms",
        }
    ),
    "semantic_vad": frozenset({"eagerness", "create_response", "interrupt_response"}),
}


def modalities(wanted: Iterable[str], dialect: Dialect) -> list[str]:
    """User-facing modalities to the dialect's: GA takes one of text/audio, beta a set."""
    chosen = set(wanted)
    unknown = chosen - {"text", "audio"}
    if unknown:
        raise ValueError(f"modalities must be 'text' and/or 'audio', not {sorted(unknown)}")
    if "audio" in chosen:
        return ["audio", "text"] if dialect is Dialect.BETA else ["audio"]
    return ["text"]


def message_item(
    text: str, role: str, dialect: Dialect, images: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """A ``message`` item holding ``text`` (assistant text is ``output_text`` in GA), then
    ``images`` (``input_image`` parts: user messages only, GA only)."""
    if role not in ("user", "assistant", "system"):
        raise ValueError(f"role must be 'user', 'assistant' or 'system', not {role!r}")
    if images and (role != "user" or dialect is Dialect.BETA):
        raise ValueError("images go in user messages only, and only in the GA dialect")
    if role == "assistant":
        part_type = "text" if dialect is Dialect.BETA else "output_text"
    else:
        part_type = "input_text"
    content: list[dict[str, Any]] = (
        [{"type": part_type, "text": text}] if text or not images else []
    )
    content += [dict(image) for image in images]
    return {"type": "message", "role": role, "content": content}


def _shared_settings(
    dialect: Dialect,
    *,
    instructions: str | None,
    wanted_modalities: Sequence[str] | None,
    voice: str | None,
    tools: list[dict[str, Any]] | None,
    tool_choice: str | dict[str, Any] | None,
) -> dict[str, Any]:
    """The settings a session and a single response both take, in ``dialect``'s names."""
    payload: dict[str, Any] = {}
    if instructions is not None:
        payload["instructions"] = instructions
    if wanted_modalities is not None:
        _put(payload, "modalities", modalities(wanted_modalities, dialect), dialect)
    if voice is not None:
        _put(payload, "voice", voice, dialect)  # the same place for a session and a response
    if tools is not None:
        payload["tools"] = tools
    if tool_choice is not None:
        payload["tool_choice"] = tool_choice
    return payload


def session_settings(
    dialect: Dialect,
    *,
    instructions: str | None = None,
    wanted_modalities: Sequence[str] | None = None,
    voice: str | None = None,
    tools: list[dict[str, Any]] | None = None,
    tool_choice: str | dict[str, Any] | None = None,
    reasoning_effort: str | None = None,
    truncation: str | dict[str, Any] | None = None,
    noise_reduction: str | Mapping[str, Any] | None = None,
    turn_detection: str | dict[str, Any] | None = None,
    fields: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``session`` of a ``session.update``; empty when there is nothing to change.

    ``noise_reduction`` and ``turn_detection`` take ``"none"`` for off, a type
    (``"near_field"``, ``"semantic_vad"``) or the whole object (``{"type": ..., ...}``).
    ``fields`` are any other session fields in the dialect's own names, merged last.
    """
    payload = _shared_settings(
        dialect,
        instructions=instructions,
        wanted_modalities=wanted_modalities,
        voice=voice,
        tools=tools,
        tool_choice=tool_choice,
    )
    beta = dialect is Dialect.BETA
    if reasoning_effort is not None:
        payload["reasoning"] = {"effort": reasoning_effort}
    if truncation is not None:
        payload["truncation"] = truncation
    if noise_reduction is not None:
        if isinstance(noise_reduction, Mapping):
            value: dict[str, Any] | None = dict(noise_reduction)
        else:
            value = None if noise_reduction == "none" else {"type": noise_reduction}
        if beta:
            payload["input_audio_noise_reduction"] = value
        else:
            _merge_into(payload, {"audio": {"input": {"noise_reduction": value}}})
    if turn_detection is not None:
        detection = {"type": turn_detection} if isinstance(turn_detection, str) else turn_detection
        mode = detection.get("type")
        params = {k: v for k, v in detection.items() if k != "type"}
        _merge_into(
            payload, turn_detection_settings(dialect, None if mode == "none" else mode, params)
        )
    if fields:
        _merge_into(payload, fields)
    if payload and not beta:
        payload = {"type": "realtime", **payload}
    return payload


def settings_view(dialect: Dialect, session: Mapping[str, Any]) -> dict[str, Any]:
    """A ``session`` body in rt_notebook's vocabulary (``modalities``, ``voice``,
    ``turn_detection``, ``transcription``, ``noise_reduction``, ``reasoning_effort``), with
    every other field under its own name: how a Session shows its settings."""
    view = {k: v for k, v in session.items() if k not in ("type", "audio", *_BETA_NAMED)}
    if dialect is Dialect.BETA:
        audio_in = {
            "turn_detection": session.get("turn_detection", ...),
            "transcription": session.get("input_audio_transcription", ...),
            "noise_reduction": session.get("input_audio_noise_reduction", ...),
        }
        modalities, voice = session.get("modalities"), session.get("voice")
    else:
        audio = session.get("audio") or {}
        if audio:
            view["audio"] = audio
        given = audio.get("input") or {}
        audio_in = {
            key: given.get(key, ...)
            for key in ("turn_detection", "transcription", "noise_reduction")
        }
        modalities = session.get("output_modalities")
        voice = (audio.get("output") or {}).get("voice")
    if modalities is not None:
        view["modalities"] = list(modalities)
    if voice is not None:
        view["voice"] = voice
    if audio_in["turn_detection"] is not ...:
        view["turn_detection"] = audio_in["turn_detection"]
    if audio_in["transcription"] is not ...:
        transcription = audio_in["transcription"]
        view["transcription"] = transcription.get("model") if transcription else None
    if audio_in["noise_reduction"] is not ...:
        noise = audio_in["noise_reduction"]
        view["noise_reduction"] = noise.get("type") if noise else None
    effort = (session.get("reasoning") or {}).get("effort")
    if effort is not None:
        view["reasoning_effort"] = effort
    return view


# Beta fields the view shows under rt_notebook's names.
_BETA_NAMED = (
    "modalities",
    "output_modalities",
    "voice",
    "turn_detection",
    "input_audio_transcription",
    "input_audio_noise_reduction",
)


def _merge_into(into: dict[str, Any], more: Mapping[str, Any]) -> None:
    for key, value in more.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge_into(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value


def response_settings(dialect: Dialect, **options: Unpack[ResponseOptions]) -> dict[str, Any]:
    """The ``response`` of a ``response.create`` (per-response overrides, see
    :class:`~.options.ResponseOptions`); ``tools`` must be definitions by now."""
    tools = options.get("tools")
    definitions = None
    if tools is not None:
        if not all(isinstance(tool, Mapping) for tool in tools):
            raise ValueError("response tools must be definitions here (names are resolved first)")
        definitions = [dict(tool) for tool in tools if isinstance(tool, Mapping)]
    payload = _shared_settings(
        dialect,
        instructions=options.get("instructions"),
        wanted_modalities=options.get("modalities"),
        voice=options.get("voice"),
        tools=definitions,
        tool_choice=options.get("tool_choice"),
    )
    max_output_tokens = options.get("max_output_tokens")
    if max_output_tokens is not None:
        limit = "max_response_output_tokens"
        _put(payload, limit, max_output_tokens, dialect, BETA_TO_GA_RESPONSE_FIELD)
    reasoning_effort = options.get("reasoning_effort")
    if reasoning_effort is not None:
        payload["reasoning"] = {"effort": reasoning_effort}
    metadata = options.get("metadata")
    if metadata is not None:
        payload["metadata"] = dict(metadata)
    conversation = options.get("conversation")
    if conversation is not None:
        payload["conversation"] = conversation
    input_items = options.get("input")
    if input_items is not None:
        payload["input"] = input_items
    return payload


def append_events(pcm: bytes, max_chars: int | None = None) -> list[dict[str, Any]]:
    """``input_audio_buffer.append`` events carrying ``pcm`` in order, each at most
    ``max_chars`` (default :data:`MAX_APPEND_AUDIO_CHARS`) of base64; whole samples per
    event: the step is a multiple of 6 bytes, which base64 encodes without padding."""
    if max_chars is None:
        max_chars = MAX_APPEND_AUDIO_CHARS
    step = max(6, (max_chars // 8) * 6)  # 6 bytes -> 8 base64 characters
    return [
        {
            "type": "input_audio_buffer.append",
            "audio": base64.b64encode(pcm[start : start + step]).decode("ascii"),
        }
        for start in range(0, len(pcm), step)
    ]


def turn_detection_settings(
    dialect: Dialect, mode: str | None, params: dict[str, Any]
) -> dict[str, Any]:
    """The ``session`` of a ``session.update`` that sets turn detection (``None``: off,
    the client commits). Unknown modes or settings raise :class:`ValueError`."""
    if mode is None:
        if params:
            raise ValueError(f"turn detection off takes no settings, got {sorted(params)}")
        value: dict[str, Any] | None = None
    else:
        allowed = TURN_DETECTION_PARAMS.get(mode)
        if allowed is None:
            raise ValueError(
                f"turn detection must be 'server_vad', 'semantic_vad' or None, not {mode!r}"
            )
        unknown = set(params) - allowed
        if unknown:
            raise ValueError(f"{mode} does not take {sorted(unknown)}; it takes {sorted(allowed)}")
        value = {"type": mode, **params}
    return _session_setting("turn_detection", value, dialect)


def transcription_settings(dialect: Dialect, model: str | None) -> dict[str, Any]:
    """The ``session`` of a ``session.update`` that turns input transcription on with
    ``model`` (``None``: off)."""
    if model is not None and (not isinstance(model, str) or not model):
        raise ValueError(f"the transcription model must be a non-empty string, not {model!r}")
    value = None if model is None else {"model": model}
    return _session_setting("input_audio_transcription", value, dialect)


def _put(
    payload: dict[str, Any],
    beta_name: str,
    value: Any,
    dialect: Dialect,
    table: dict[str, tuple[str, ...]] = BETA_TO_GA_SESSION_FIELD,
) -> None:
    """Set the setting called ``beta_name`` in beta where ``dialect`` keeps it (GA: its
    path in the dialect ``table``)."""
    path = (beta_name,) if dialect is Dialect.BETA else table[beta_name]
    *parents, last = path
    for key in parents:
        payload = payload.setdefault(key, {})
    payload[last] = value


def _session_setting(beta_name: str, value: Any, dialect: Dialect) -> dict[str, Any]:
    """A ``session.update`` body setting just ``beta_name`` (GA: typed, nested)."""
    payload: dict[str, Any] = {} if dialect is Dialect.BETA else {"type": "realtime"}
    _put(payload, beta_name, value, dialect)
    return payload
