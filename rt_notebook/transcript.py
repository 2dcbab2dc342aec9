"""Transcripts: rebuild a conversation from a recording (``%realtime record FILE``).

A recording is JSON lines of ``{"direction": "sent" | "received", "data": event}``, the
same shape as the reference captures. The received events are replayed into the same
sans-I/O :class:`~rt_notebook.protocol.conversation.Conversation` mirror the Session uses,
so a transcript shows exactly what the Session saw.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .protocol.conversation import Conversation
from .render.markdown import fenced, inline_code, safe_inline, safe_markdown

__all__ = ["load_recording", "to_json", "to_markdown"]


def load_recording(lines: Iterable[str]) -> Conversation:
    """Replay the received events of a recording into a fresh mirror."""
    conversation = Conversation()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {number} is not JSON: {exc.msg}") from None
        if record.get("direction") == "received":
            conversation.apply(record["data"])
    return conversation


def to_json(conversation: Conversation) -> dict[str, Any]:
    """Items (id, type, role, status, text, call_id, name, arguments, output) and
    responses (id, status, usage) as plain data."""
    return {
        "items": [item.as_dict() for item in conversation.items],
        "responses": [
            {"id": r.id, "status": r.status, "usage": r.usage}
            for r in conversation.responses.values()
        ],
    }


def to_markdown(conversation: Conversation) -> str:
    """The conversation as readable Markdown, one section per item (model text made safe)."""
    sections = []
    for item in conversation.items:
        if item.type == "message":
            sections.append(f"**{safe_inline(item.role or '')}:**\n\n{safe_markdown(item.text)}")
        elif item.type == "function_call":
            call = f"**function call** {inline_code(item.name or '?')}"
            sections.append(f"{call}\n\n{fenced(item.arguments or '', 'json')}")
        elif item.type == "function_call_output":
            output = f"**function output** ({inline_code(item.call_id or '?')})"
            sections.append(f"{output}\n\n{fenced(item.output or '')}")
    return "\n\n---\n\n".join(sections) + "\n"


def main(path: str, output_format: str = "markdown") -> str:
    """The transcript of the recording at ``path`` in ``output_format``."""
    with Path(path).open(encoding="utf-8") as stream:
        conversation = load_recording(stream)
    if output_format == "json":
        return json.dumps(to_json(conversation), indent=2) + "\n"
    return to_markdown(conversation)
