"""Sans-I/O event attribution: every event, sent and received, filed under the turn it belongs to.

The driver feeds :class:`Timelines` each sent and received event with a monotonic time and
its size; nothing here does I/O or reads a clock. An event goes to the :class:`Timeline` of
the turn (cell, panel message or ``ask()``) that caused it, found by the ids the turn owns:
its request tag (``response.create`` metadata), its item ids, its response id and the
``event_id`` of each event it sent. Everything else (``rate_limits.updated``,
``session.updated``, responses started by server VAD or another client, errors naming no
event of a turn, the restore after a reconnect's settings) goes to the Session-level
timeline.

Streams are folded: consecutive deltas of one type (and ``input_audio_buffer.append``) make
one :class:`Entry` with a count, total size and first and last time, so the hot path adds
no entry per delta. Memory is bounded in bytes: event bodies are kept by reference and
counted by their frame size; past a turn's share the bodies are dropped (the entry stays),
and old finished turns are forgotten once the total passes the cap.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .events import Event
from .turns import Turn

__all__ = [
    "DEFAULT_CAP",
    "SESSION_CAP",
    "Entry",
    "EventLog",
    "Latency",
    "Timeline",
    "Timelines",
    "is_stream",
]

DEFAULT_CAP = 8 * 1024 * 1024  # bytes of event bodies kept for all turns together
SESSION_CAP = 1024 * 1024  # bytes of event bodies kept in the Session-level timeline
ENTRY_OVERHEAD = 200  # what an entry costs beyond its body (counted, so floods stay bounded)

# The metadata key that ties a response to its turn (the same as the client core's).
_TAG = "rt_notebook_request"


def is_stream(event_type: str) -> bool:
    """Whether events of this type are folded (deltas and audio appends)."""
    return event_type.endswith(".delta") or event_type == "input_audio_buffer.append"


@dataclass(slots=True)
class Entry:
    """One event (or one run of folded stream events) in a timeline."""

    direction: str  # "sent" or "received"
    type: str
    at: float  # monotonic seconds of the (first) event
    size: int  # characters of the frame(s) as sent or received
    event: Event | None  # the event (a folded run: its first one); None once over the cap
    count: int = 1
    last_at: float = 0.0

    @property
    def error(self) -> bool:
        """An error event (highlighted by views)."""
        return self.type == "error" or self.type.endswith(".failed")


@dataclass(frozen=True, slots=True)
class Latency:
    """Where a turn's time went, in seconds (``None``: that step did not happen)."""

    queued: float | None  # submitted -> its first event sent (only when it waited)
    created: float | None  # response.create sent -> response.created
    first_delta: float | None  # response.create sent -> first delta
    done: float | None  # response.create sent -> response.done
    total: float | None  # submitted -> response.done (or its last event)


@dataclass(slots=True)
class Timeline:
    """The events of one turn, in the order they were sent or received."""

    key: str  # the turn's request tag ("session" for the Session-level timeline)
    began_at: float
    entries: list[Entry] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)
    response_ids: list[str] = field(default_factory=list)
    queued: bool = False  # it waited behind another turn
    done: bool = False
    kept: int = 0  # bytes of bodies kept (plus entry overhead)
    size: int = 0  # bytes of every event seen
    # Open runs of stream events: by type (received) or "sent " + type.
    folds: dict[str, Entry] = field(default_factory=dict, repr=False)

    def add(self, direction: str, event: Event, size: int, now: float, cap: int) -> None:
        """File one event; a stream event joins the run of its type."""
        kind = event.get("type", "?")
        self.size += size
        fold = kind if direction == "received" else "sent " + kind
        if is_stream(kind):
            run = self.folds.get(fold)
            if run is not None:
                run.count += 1
                run.size += size
                run.last_at = now
                return
        body: Event | None = event if self.kept + size <= cap else None
        self.kept += ENTRY_OVERHEAD + (size if body is not None else 0)
        entry = Entry(direction, kind, now, size, body, 1, now)
        self.entries.append(entry)
        if is_stream(kind):
            self.folds[fold] = entry
        elif direction == "received" and kind.endswith(".done"):
            # A stream's .done ends its run: a later stream of that type starts a new entry.
            self.folds.pop(kind[:-5] + ".delta", None)

    def copy(self) -> Timeline:
        """A copy other threads may read while the I/O thread goes on."""
        return dataclasses.replace(
            self,
            entries=[dataclasses.replace(entry) for entry in self.entries],
            item_ids=list(self.item_ids),
            response_ids=list(self.response_ids),
            folds={},
        )

    def latency(self) -> Latency:
        """The latency breakdown, from the first ``response.create`` this turn sent."""
        request = first_delta = created = done = first_sent = None
        last = None
        for entry in self.entries:
            last = entry.last_at
            if entry.direction == "sent":
                if first_sent is None:
                    first_sent = entry.at
                if request is None and entry.type == "response.create":
                    request = entry.at
            elif request is not None:
                if created is None and entry.type == "response.created":
                    created = entry.at
                elif first_delta is None and entry.type.endswith(".delta"):
                    first_delta = entry.at
                elif done is None and entry.type == "response.done":
                    done = entry.at
        return Latency(
            queued=first_sent - self.began_at if self.queued and first_sent is not None else None,
            created=_since(request, created),
            first_delta=_since(request, first_delta),
            done=_since(request, done),
            total=_since(self.began_at, done if done is not None else last),
        )


def _since(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else max(0.0, end - start)


class Timelines:
    """Every turn's timeline and the Session-level one; see the module docstring.

    One owner (the I/O thread); readers on other threads call :meth:`find` and
    :meth:`copy_session` under the driver's lock.
    """

    def __init__(self, cap: int = DEFAULT_CAP, session_cap: int = SESSION_CAP) -> None:
        self.cap = cap
        self.session_cap = session_cap
        self.turns: OrderedDict[str, Timeline] = OrderedDict()  # by tag, oldest first
        self.session = Timeline("session", 0.0)
        self.last: str | None = None  # the tag of the turn begun last
        self._live: dict[str, Timeline] = {}  # tag, item, response and event ids -> turn
        self._turns: dict[str, Turn] = {}  # live turns by tag (their response id)
        self._index: dict[str, str] = {}  # response and item ids -> tag, while kept
        self._kept = 0
        self._session_entries: deque[Entry] = deque()

    # Feeding -------------------------------------------------------------------------

    def begin(self, turn: Turn, now: float) -> None:
        """A turn was submitted: what it sends and receives is filed under it from now on."""
        timeline = Timeline(turn.tag, now)
        for request in turn.items:
            if request.key:
                timeline.item_ids.append(request.key)
                self._live[request.key] = timeline
                self._index[request.key] = turn.tag
        self._live[turn.tag] = timeline
        self._turns[turn.tag] = turn
        self.turns[turn.tag] = timeline
        self.last = turn.tag
        self._evict()

    def queued(self, turn: Turn) -> None:
        """The turn waits behind another one (its queue wait is shown)."""
        timeline = self._live.get(turn.tag)
        if timeline is not None:
            timeline.queued = True

    def end(self, turn: Turn) -> None:
        """The turn finished: later events are no longer filed under it."""
        timeline = self.turns.get(turn.tag)
        self._turns.pop(turn.tag, None)
        if timeline is None:
            return
        timeline.done = True
        timeline.folds.clear()
        for key in [key for key, value in self._live.items() if value is timeline]:
            del self._live[key]
        self._kept += timeline.kept
        self._evict()

    def sent(self, event: Event, size: int, now: float) -> str | None:
        """File an event the client sent; return its turn's tag (``None``: the Session's)."""
        timeline = self._owner_of_sent(event)
        if timeline is None:
            self._add_session("sent", event, size, now)
            return None
        event_id = event.get("event_id")
        if event_id:
            self._live[event_id] = timeline
        timeline.add("sent", event, size, now, self._share())
        return timeline.key

    def received(self, event: Event, size: int, now: float) -> str | None:
        """File an event the server sent (after the client core applied it); return its
        turn's tag (``None``: the Session's)."""
        kind = event["type"]
        if kind.endswith(".delta"):  # the hot path: two lookups, then a fold
            timeline = self._live.get(event.get("response_id") or "")
            if timeline is not None:
                run = timeline.folds.get(kind)
                if run is not None:
                    run.count += 1
                    run.size += size
                    run.last_at = now
                    timeline.size += size
                    return timeline.key
        else:
            timeline = self._owner_of_received(kind, event)
        if timeline is None:
            self._add_session("received", event, size, now)
            return None
        timeline.add("received", event, size, now, self._share())
        return timeline.key

    # Reading -------------------------------------------------------------------------

    def find(self, key: str | None = None) -> Timeline | None:
        """A copy of the timeline of the last turn, or of the one a tag, response id or
        item id names."""
        if key is None:
            key = self.last
        if key is None:
            return None
        timeline = self.turns.get(self._index.get(key, key))
        return None if timeline is None else timeline.copy()

    def copy_session(self) -> Timeline:
        """A copy of the Session-level timeline."""
        copy = self.session.copy()
        copy.entries = [dataclasses.replace(entry) for entry in self._session_entries]
        return copy

    # Attribution ---------------------------------------------------------------------

    def _owner_of_sent(self, event: Event) -> Timeline | None:
        kind = event.get("type")
        if kind == "response.create":
            metadata = (event.get("response") or {}).get("metadata") or {}
            return self._live.get(str(metadata.get(_TAG, "")))
        if kind == "conversation.item.create":
            return self._live.get(str((event.get("item") or {}).get("id", "")))
        if kind == "response.cancel":
            return self._live.get(str(event.get("response_id", "")))
        return None

    def _owner_of_received(self, kind: str, event: Event) -> Timeline | None:
        if kind == "error":
            error = event.get("error")
            event_id = error.get("event_id") if isinstance(error, dict) else None
            return self._live.get(event_id) if isinstance(event_id, str) else None
        response = event.get("response")
        if kind == "response.created" and isinstance(response, dict):
            return self._claim(str(response.get("id", "")), response)
        response_id = event.get("response_id")
        if response_id is None and isinstance(response, dict):
            response_id = response.get("id")
        timeline = self._live.get(response_id) if isinstance(response_id, str) else None
        item = event.get("item")
        item_id = item.get("id") if isinstance(item, dict) else event.get("item_id")
        if timeline is None:
            return self._live.get(item_id) if isinstance(item_id, str) else None
        if kind == "response.output_item.added" and isinstance(item_id, str):
            # The turn's output items: their conversation events are filed with it too.
            self._live[item_id] = timeline
            self._index[item_id] = timeline.key
            timeline.item_ids.append(item_id)
        return timeline

    def _claim(self, response_id: str, response: dict[str, Any]) -> Timeline | None:
        """``response.created``: the turn it answers (the core has matched it already)."""
        tag = (response.get("metadata") or {}).get(_TAG)
        timeline = self._live.get(tag) if isinstance(tag, str) else None
        if timeline is None:  # a server that drops metadata: the core's match decides
            for turn in self._turns.values():
                if turn.response_id == response_id:
                    timeline = self._live.get(turn.tag)
        if timeline is not None and response_id:
            self._live[response_id] = timeline
            self._index[response_id] = timeline.key
            timeline.response_ids.append(response_id)
        return timeline

    # Bounds --------------------------------------------------------------------------

    def _share(self) -> int:
        """The bytes of bodies one turn may keep."""
        return self.cap // 4

    def _add_session(self, direction: str, event: Event, size: int, now: float) -> None:
        session = self.session
        kind = event.get("type", "?")
        entries = self._session_entries
        session.size += size
        if entries and is_stream(kind):
            last = entries[-1]
            if last.type == kind and last.direction == direction:
                last.count += 1
                last.size += size
                last.last_at = now
                return
        # One event bigger than the whole cap keeps its entry, not its body.
        body: Event | None = event if size <= self.session_cap else None
        entries.append(Entry(direction, kind, now, size, body, 1, now))
        session.kept += _cost(entries[-1])
        while session.kept > self.session_cap and len(entries) > 1:
            session.kept -= _cost(entries.popleft())

    def _evict(self) -> None:
        """Forget the oldest finished turns while the kept bytes pass the cap."""
        while self._kept > self.cap:
            victim = next((t for t in self.turns.values() if t.done), None)
            if victim is None:
                return
            del self.turns[victim.key]
            self._kept -= victim.kept
            for key in _ids(victim):
                if self._index.get(key) == victim.key:
                    del self._index[key]


class EventLog:
    """The Session's recent server events (deltas are never offered), bounded both in count
    and in bytes of their frames, oldest first."""

    def __init__(self, max_events: int = 1000, max_bytes: int = 2 * 1024 * 1024) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._events: deque[tuple[Event, int]] = deque()
        self._bytes = 0

    def append(self, event: Event, size: int = 0) -> None:
        """Keep ``event`` (``size``: its frame's length), dropping the oldest past a cap."""
        self._events.append((event, size))
        self._bytes += size
        while len(self._events) > 1 and (
            len(self._events) > self.max_events or self._bytes > self.max_bytes
        ):
            self._bytes -= self._events.popleft()[1]

    def clear(self) -> None:
        self._events.clear()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        return (event for event, _ in self._events)


def _cost(entry: Entry) -> int:
    return ENTRY_OVERHEAD + (entry.size if entry.event is not None else 0)


def _ids(timeline: Timeline) -> Iterable[str]:
    return [*timeline.item_ids, *timeline.response_ids]
