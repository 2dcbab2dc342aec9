"""Sans-I/O client event bodies in each dialect: messages, session and response settings.

rt_notebook speaks in one vocabulary (``modalities=["text"]``, ``voice=...``,
``max_output_tokens=...``); these functions write it the way each dialect wants it: GA
nests the voice under ``audio.output`` and says ``output_modalities``, beta keeps
``voice`` and ``modalities`` at the top and calls the limit ``max_response_output_tokens``.
Values left as ``None`` are omitted, so the server keeps its own defaults.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from typing import Any

from .events import BETA_TO_GA_RESPONSE_FIELD, BETA_TO_GA_SESSION_FIELD, Dialect

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


def message_item(text: str, role: str, dialect: Dialect) -> dict[str, Any]:
    """A ``message`` item holding ``text`` (assistant text is ``output_text`` in GA)."""
    if role not in ("user", "assistant", "system"):
        raise ValueError(f"role must be 'user', 'assistant' or 'system', not {role!r}")
    if role == "assistant":
        part_type = "text" if dialect is Dialect.BETA else "output_text"
    else:
        part_type = "input_text"
    return {"type": "message", "role": role, "content": [{"type": part_type, "text": text}]}


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
) -> dict[str, Any]:
    """The ``session`` of a ``session.update``; empty when there is nothing to change."""
    payload = _shared_settings(
        dialect,
        instructions=instructions,
        wanted_modalities=wanted_modalities,
        voice=voice,
        tools=tools,
        tool_choice=tool_choice,
    )
    if payload and dialect is Dialect.GA:
        payload = {"type": "realtime", **payload}
    return payload


def response_settings(
    dialect: Dialect,
    *,
    instructions: str | None = None,
    wanted_modalities: Sequence[str] | None = None,
    voice: str | None = None,
    tools: list[dict[str, Any]] | None = None,
    tool_choice: str | dict[str, Any] | None = None,
    max_output_tokens: int | str | None = None,
    conversation: str | None = None,
    input_items: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The ``response`` of a ``response.create`` (per-response overrides)."""
    payload = _shared_settings(
        dialect,
        instructions=instructions,
        wanted_modalities=wanted_modalities,
        voice=voice,
        tools=tools,
        tool_choice=tool_choice,
    )
    if max_output_tokens is not None:
        limit = "max_response_output_tokens"
        _put(payload, limit, max_output_tokens, dialect, BETA_TO_GA_RESPONSE_FIELD)
    if conversation is not None:
        payload["conversation"] = conversation
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
