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
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..client.recording import RecordedFrame, read_line
from ..protocol.conversation import Conversation
from ..protocol.timeline import DEFAULT_CAP, Timeline
from ..render.items import transcript_markdown

__all__ = ["load_recording", "load_timelines", "to_json", "to_markdown"]


def load_recording(lines: Iterable[str], notes: list[str] | None = None) -> Conversation:
    """Replay the received events of a recording into a fresh mirror.

    A line that cannot be read (cut, garbage, a binary frame) is skipped, with a note
    appended to ``notes``; an event the mirror cannot apply is skipped the same way.
    """
    conversation = Conversation()
    for number, frame in _frames(lines, notes):
        if frame.direction != "received" or frame.event is None:
            continue
        try:
            conversation.apply(frame.event)
        except Exception as exc:  # a hostile event: the rest of the file still counts
            _note(notes, number, f"event not applied ({type(exc).__name__})")
    return conversation


def load_timelines(lines: Iterable[str], notes: list[str] | None = None) -> dict[str, Timeline]:
    """The turns' timelines of a recording (lines with a ``turn`` and an ``at``), by tag,
    in order; events of no turn under ``"session"``. Unreadable lines: as
    :func:`load_recording`."""
    timelines: dict[str, Timeline] = {}
    for _, frame in _frames(lines, notes):
        event, at = frame.event, frame.at
        if event is None or at is None:
            continue  # recorded before timelines were written
        tag = frame.turn or "session"
        timeline = timelines.get(tag)
        if timeline is None:
            timeline = timelines[tag] = Timeline(tag, at)
        size = len(json.dumps(event))
        timeline.add(frame.direction, event, size, at, DEFAULT_CAP)
        _note_ids(timeline, event)
    for timeline in timelines.values():
        timeline.done = True
        timeline.folds.clear()
    return timelines


def _frames(lines: Iterable[str], notes: list[str] | None) -> Iterator[tuple[int, RecordedFrame]]:
    """The readable frames of a recording with their line numbers; a note for the rest."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        frame = read_line(line)
        if isinstance(frame, str):
            _note(notes, number, frame)
        else:
            yield number, frame


def _note(notes: list[str] | None, number: int, why: str) -> None:
    if notes is not None:
        notes.append(f"line {number} skipped: {why}")


def _note_ids(timeline: Timeline, event: dict[str, Any]) -> None:
    kind = event.get("type")
    item, response = event.get("item"), event.get("response")
    item = item if isinstance(item, dict) else {}
    response = response if isinstance(response, dict) else {}
    item_id, response_id = item.get("id"), response.get("id")
    adds = kind in ("conversation.item.create", "response.output_item.added")
    if adds and isinstance(item_id, str) and item_id not in timeline.item_ids:
        timeline.item_ids.append(item_id)
    if kind == "response.created" and isinstance(response_id, str):
        timeline.response_ids.append(response_id)


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
