"""Sans-I/O ordered store of a conversation's items, as the server keeps them.

Items are canonical GA-shaped dicts (see :mod:`rt_notebook.server.shapes`). The store
answers the placement questions of the protocol: where ``previous_item_id`` puts an item
(``None``: last, ``"root"``: first, an id: right after it) and which item precedes another.
"""

from __future__ import annotations

from collections.abc import Iterator

from rt_notebook.protocol.events import Event

__all__ = ["ROOT", "ItemStore"]

ROOT = "root"


class ItemStore:
    """Conversation items in order, indexed by id."""

    def __init__(self) -> None:
        self._items: list[Event] = []  # in conversation order
        self._by_id: dict[str, Event] = {}  # the same dicts, by id

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
        if previous == ROOT:
            position = 0
        elif previous is not None:
            position = self._items.index(self._by_id[previous]) + 1
        else:
            position = len(self._items)
        self._items.insert(position, item)
        self._by_id[item["id"]] = item
        return self._items[position - 1]["id"] if position > 0 else None

    def remove(self, item_id: str) -> Event | None:
        item = self._by_id.pop(item_id, None)
        if item is not None:
            self._items.remove(item)
        return item

    def last_id(self) -> str | None:
        return self._items[-1]["id"] if self._items else None

    def previous_id(self, item_id: str) -> str | None:
        """The id of the item before ``item_id`` (``None`` when first or absent)."""
        item = self._by_id.get(item_id)
        if item is None:
            return None
        position = self._items.index(item)
        return self._items[position - 1]["id"] if position > 0 else None
