"""Client layer, pure recording format: each frame, sent or received, as one valid JSON line.

``%realtime record FILE`` writes one line per frame::

    {"direction": "received", "turn": "t3", "at": 12.5, "data": {...the event...}}

``turn`` (the tag of the turn the frame belongs to) is absent for frames of no turn; ``at``
is monotonic seconds. A frame that is not a JSON object is still one valid line, flagged:

- text that does not parse (a cut frame, garbage): ``"text": "...", "not_json": true``;
- bytes that are not UTF-8 (a binary frame): ``"base64": "...", "binary": true``.

Registered credentials (:func:`~rt_notebook.redaction.register_secret`) are replaced by
``***`` in every frame unless the recording is *raw* (``--raw``: the frames as they were,
keys included). :func:`read_line` is the reader's side: it never raises, it says why a line
was skipped.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..protocol.conversation import Conversation
from ..protocol.timeline import DEFAULT_CAP, Timeline
from ..redaction import scrub, scrub_bytes

__all__ = ["RecordedFrame", "load_recording", "load_timelines", "read_line", "record_line"]


def record_line(
    direction: str, frame: str | bytes, turn: str | None, at: float, *, raw: bool = False
) -> bytes:
    """One recording line (ending in a newline) for ``frame``, whatever its content."""
    line: dict[str, Any] = {"direction": direction}
    if turn is not None:
        line["turn"] = turn
    line["at"] = round(at, 6)
    text: str | None
    if isinstance(frame, bytes):
        try:
            text = frame.decode("utf-8")
        except UnicodeDecodeError:
            text = None
            data = frame if raw else scrub_bytes(frame)
            line["base64"] = base64.b64encode(data).decode("ascii")
            line["binary"] = True
    else:
        text = frame
    if text is not None:
        if not raw:
            text = scrub(text)
        event = _json_object(text)
        if event is None:
            line["text"] = text
            line["not_json"] = True
        else:
            line["data"] = event
    try:
        encoded = json.dumps(line, ensure_ascii=False, allow_nan=False)
    except ValueError:  # NaN or Infinity in the frame: not JSON, kept as its text
        line.pop("data", None)
        line["text"], line["not_json"] = text, True
        encoded = json.dumps(line, ensure_ascii=False)
    # A lone surrogate cannot be UTF-8: such a frame goes out escaped (still valid JSON).
    try:
        return (encoded + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(line, ensure_ascii=True, allow_nan=False) + "\n").encode("ascii")


def _json_object(text: str) -> Any:
    """``text`` parsed, if it is JSON (any value a frame could carry), else ``None``."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # cut, garbage, or nested past the parser
        return None


@dataclass(frozen=True, slots=True)
class RecordedFrame:
    """One line of a recording, read back."""

    direction: str
    event: dict[str, Any] | None  # None: the frame was not a JSON object (see the flags)
    turn: str | None
    at: float | None


def read_line(line: str) -> RecordedFrame | str:
    """The frame on ``line``, or why it cannot be read (a short note, never an exception)."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as exc:
        return f"not JSON ({getattr(exc, 'msg', type(exc).__name__)})"
    if not isinstance(record, dict):
        return "not a recorded frame (a JSON object)"
    direction = record.get("direction")
    if direction not in ("sent", "received"):
        return "not a recorded frame (no direction)"
    if record.get("binary"):
        return f"a binary frame ({direction})"
    if record.get("not_json"):
        return f"a frame that is not JSON ({direction})"
    event = record.get("data")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return f"a frame that is not an event ({direction})"
    turn = record.get("turn")
    return RecordedFrame(
        direction, event, turn if isinstance(turn, str) else None, _seconds(record.get("at"))
    )


def _seconds(value: Any) -> float | None:
    """``value`` as a finite number of seconds, or ``None``."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) else None


# Reading a recording back ----------------------------------------------------------


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
