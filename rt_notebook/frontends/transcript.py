"""Front end, transcripts: rebuild a conversation from a recording (``%realtime record FILE``).

A recording is JSON lines of ``{"direction": "sent" | "received", "data": event}``, the
same shape as the reference captures (see :mod:`rt_notebook.client.recording`); the Session adds
``turn`` (the tag of the turn the event belongs to, absent for events of no turn) and ``at``
(monotonic seconds), from which :func:`load_timelines` rebuilds each turn's timeline. The
received events are replayed into the same sans-I/O
:class:`~rt_notebook.protocol.conversation.Conversation` mirror the Session uses, so a
transcript shows exactly what the Session saw. A line that cannot be read is skipped with
a note, never the whole file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..client.recording import load_recording, load_timelines
from ..protocol.conversation import Conversation
from ..render.items import transcript_markdown

__all__ = ["load_recording", "load_timelines", "to_json", "to_markdown"]


def timeline_text(path: str, turn: str | None, notes: list[str] | None = None) -> str:
    """The timeline of ``turn`` (a tag, response id or item id; ``None``: the last turn;
    ``"session"``: events of no turn) in the recording at ``path``, as Markdown."""
    from ..render.inspector import timeline_markdown

    with Path(path).open(encoding="utf-8", errors="replace") as stream:
        timelines = load_timelines(stream, notes)
    turns = [t for t in timelines.values() if t.key != "session"]
    if turn is None:
        if not turns:
            raise ValueError("no turn in this recording (recorded with timelines?)")
        found = turns[-1]
    else:
        match = timelines.get(turn) or next(
            (t for t in turns if turn in t.response_ids or turn in t.item_ids), None
        )
        if match is None:
            raise ValueError(f"no turn {turn!r} in this recording")
        found = match
    return timeline_markdown(found, title=f"Events of {turn or found.key}") + "\n"


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
    """The conversation as readable Markdown, one section per item (model text made safe),
    as the chat panel's transcript reads (:func:`~rt_notebook.render.items.transcript_markdown`)."""
    return transcript_markdown(conversation.items)


def main(path: str, output_format: str = "markdown", notes: list[str] | None = None) -> str:
    """The transcript of the recording at ``path`` in ``output_format`` (lines that
    cannot be read are skipped, with a note in ``notes``)."""
    # Bytes that are not UTF-8 spoil one line, not the file.
    with Path(path).open(encoding="utf-8", errors="replace") as stream:
        conversation = load_recording(stream, notes)
    if output_format == "json":
        return json.dumps(to_json(conversation), indent=2) + "\n"
    return to_markdown(conversation)
