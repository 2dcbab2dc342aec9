"""Front-end rendering: a Session's session settings as one inert Markdown line for
``%realtime status`` (what the server accepted, what is pending, what a restore lost)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .markdown import inline_code, safe_inline

__all__ = ["settings_markdown"]

# Long values (instructions, tool lists) are cut to this many characters.
SHOWN_CHARACTERS = 60
# Shown under these names first; everything else follows in alphabetical order.
_FIRST = (
    "instructions",
    "modalities",
    "voice",
    "reasoning_effort",
    "truncation",
    "turn_detection",
    "noise_reduction",
    "transcription",
    "tools",
    "tool_choice",
    "max_output_tokens",
)
# Shown through the names above (the view keeps the raw field beside its short name).
_HIDDEN = frozenset({"audio", "reasoning"})


def settings_markdown(
    accepted: Mapping[str, Any], pending: list[dict[str, Any]], lost: str | None
) -> str:
    """``Settings: instructions `…`, reasoning_effort `low`; pending: …`` (inert)."""
    line = f"Settings: {_describe(accepted) or 'the server defaults'}"
    if pending:
        line += "; pending (not acknowledged yet): " + "; ".join(_describe(p) for p in pending)
    if lost:
        line += f". **Lost on the last reconnect:** {safe_inline(lost)}"
    return line


def _describe(settings: Mapping[str, Any]) -> str:
    names = [n for n in _FIRST if n in settings]
    names += sorted(n for n in settings if n not in _FIRST and n not in _HIDDEN)
    return ", ".join(f"{safe_inline(name)} {inline_code(_short(settings[name]))}" for name in names)


def _short(value: Any) -> str:
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        text = ", ".join(str(v.get("name") or v.get("type") or "?") for v in value)  # tools
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= SHOWN_CHARACTERS else text[: SHOWN_CHARACTERS - 1] + "…"
