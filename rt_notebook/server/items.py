"""Sans-I/O ordered store of a conversation's items, as the server keeps them.

Items are canonical GA-shaped dicts (see :mod:`rt_notebook.server.shapes`). The store
answers the placement questions of the protocol: where ``previous_item_id`` puts an item
(``None``: last, ``"root"``: first, an id: right after it) and which item precedes another.

A turn must not cost more as the conversation grows, so the store answers in constant
time what every response asks: the item before another (kept per item), the running
size of the conversation (each item is measured once when added, and again only when it
changes: :meth:`ItemStore.refresh`), and a :class:`ContextView` that copies an item only
when a responder reads it. Only placement by an explicit ``previous_item_id`` and
deletion search the list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import overload

from rt_notebook.protocol.events import Event
from rt_notebook.server.limits import item_chars

__all__ = ["ROOT", "ContextView", "ItemStore", "Measure"]

ROOT = "root"

Measure = Callable[[Event], tuple[int, int]]
"""The size of one item as two counts (words of text, characters of input audio)."""


class ContextView(Sequence[Event]):
    """The conversation's items at one moment, oldest first; each is copied when read.

    Responders read the last few items; copying the whole conversation for them would make
    every turn cost as much as the conversation is long. ``reads`` counts the copies made.
    """

    def __init__(self, items: Sequence[Event]) -> None:
        self._items = tuple(items)  # a snapshot of references: later changes do not show
        self.reads = 0

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> Event: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Event]: ...

    def __getitem__(self, index: int | slice) -> Event | Sequence[Event]:
        if isinstance(index, slice):
            chosen = self._items[index]
            self.reads += len(chosen)
            return [dict(item) for item in chosen]
        self.reads += 1
        return dict(self._items[index])

    def __repr__(self) -> str:
        return f"ContextView({len(self._items)} items)"


class ItemStore:
    """Conversation items in order, indexed by id, with their running size."""

    def __init__(self, measure: Measure | None = None) -> None:
        self._items: list[Event] = []  # in conversation order
        self._by_id: dict[str, Event] = {}  # the same dicts, by id
        self._previous: dict[str, str | None] = {}  # id -> id of the item before it
        self._measure = measure
        self._sizes: dict[str, tuple[int, int]] = {}  # id -> its measure when last taken
        self.size = (0, 0)  # the sum of every item's measure
        # Characters every item holds (see limits.item_chars): the memory cap's measure.
        self.chars = 0
        self._chars: dict[str, int] = {}
        self.measured = 0  # items measured so far (the work a turn does, for tests)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._by_id

    def __iter__(self) -> Iterator[Event]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def get(self, item_id: str) -> Event | None:
        return self._by_id.get(item_id)

    def can_follow(self, previous: str | None) -> bool:
        """Whether ``previous`` (a ``previous_item_id``) names a place in the conversation."""
        return previous is None or previous == ROOT or previous in self._by_id

    def insert(self, item: Event, previous: str | None = None) -> str | None:
        """Place ``item`` as ``previous`` says; return the id of the item now before it."""
        items = self._items
        if previous is None:
            position = len(items)
        elif previous == ROOT:
            position = 0
        else:
            position = items.index(self._by_id[previous]) + 1
        before = items[position - 1]["id"] if position > 0 else None
        if position < len(items):
            self._previous[items[position]["id"]] = item["id"]
        items.insert(position, item)
        self._by_id[item["id"]] = item
        self._previous[item["id"]] = before
        self.refresh(item["id"])
        return before

    def remove(self, item_id: str) -> Event | None:
        item = self._by_id.pop(item_id, None)
        if item is None:
            return None
        position = self._items.index(item)
        del self._items[position]
        before = self._previous.pop(item_id)
        if position < len(self._items):
            self._previous[self._items[position]["id"]] = before
        self._add_size(self._sizes.pop(item_id, (0, 0)), -1)
        self.chars -= self._chars.pop(item_id, 0)
        return item

    def refresh(self, item_id: str) -> None:
        """Measure an item again after it changed in place (content filled, truncated)."""
        chars = item_chars(self._by_id[item_id])
        self.chars += chars - self._chars.get(item_id, 0)
        self._chars[item_id] = chars
        if self._measure is None:
            return
        size = self._measure(self._by_id[item_id])
        self.measured += 1
        self._add_size(self._sizes.get(item_id, (0, 0)), -1)
        self._sizes[item_id] = size
        self._add_size(size, 1)

    def _add_size(self, size: tuple[int, int], sign: int) -> None:
        self.size = (self.size[0] + sign * size[0], self.size[1] + sign * size[1])

    def view(self) -> ContextView:
        """The items as they are now, for a responder (copied only when read)."""
        return ContextView(self._items)

    def last_id(self) -> str | None:
        return self._items[-1]["id"] if self._items else None

    def previous_id(self, item_id: str) -> str | None:
        """The id of the item before ``item_id`` (``None`` when first or absent)."""
        return self._previous.get(item_id)
