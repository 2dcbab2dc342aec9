"""Cell-anchored items: a ``%%realtime`` cell that runs again replaces its own turn.

Each cell remembers the ids of the items its last run added (its message, the answer, any
tool round). Running it again deletes them and places the new message where they stood, so
editing and re-running a cell does not pile up old turns. A message placed in the middle of
the conversation is answered out of band from the items up to it (an in-conversation answer
would see the later items and land at the end), and :func:`insert_answer` then puts the
answer's text right after it.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import TYPE_CHECKING, Any

from .protocol import payloads

if TYPE_CHECKING:
    from .responses import ResponseHandle, ResponseResult
    from .session import Session

__all__ = ["CellAnchors", "insert_answer", "item_ids"]


class CellAnchors:
    """The items each cell added, by (Session name, cell key)."""

    def __init__(self) -> None:
        # The list is the one the magic extends as tool rounds and answers add items.
        self._items: dict[tuple[str, str], list[str]] = {}

    def remember(self, key: tuple[str, str], items: list[str]) -> None:
        """Record ``items`` (a list the caller may still extend) as the cell's turn."""
        self._items[key] = items

    @staticmethod
    def cell_key(shell: Any, line: str, cell: str) -> str:
        """The running cell's id (Jupyter sends it as ``cellId``), else a hash of its text."""
        with contextlib.suppress(Exception):  # plain IPython has no kernel
            cell_id = shell.kernel.get_parent()["metadata"].get("cellId")
            if cell_id:
                return f"id:{cell_id}"
        return "text:" + hashlib.sha256(f"{line}\n{cell}".encode()).hexdigest()

    def clear(self, session: Session, key: tuple[str, str], after: str | None) -> str | None:
        """Delete the items this cell added last time; return where its new item goes
        (``after`` if given, else where the old ones stood)."""
        old = self._items.pop(key, [])
        if not old:
            return after
        order = session.item_ids()  # ids only: a cell costs the same at any length
        known = set(order)
        present = [item_id for item_id in old if item_id in known]
        if not present:
            return after
        first = order.index(present[0])
        anchor = order[first - 1] if first > 0 else "root"
        for item_id in present:
            session.delete_item(item_id)
        if after is not None:
            return after
        # Appending is simpler (and the same) when the old items were the last ones.
        return None if list(order[first:]) == present else anchor


def item_ids(handle: ResponseHandle) -> list[str]:
    """Ids of a finished in-conversation response's items (none if it failed)."""
    if handle.error is not None or handle.out_of_band:
        return []
    return [item.id for item in handle.wait(0).items]


def insert_answer(session: Session, after: str, result: ResponseResult) -> list[str]:
    """Add the text of an out-of-band answer to the conversation after item ``after``;
    return the new items' ids. (Function calls of such answers are not run.)"""
    added = []
    for item in result.items:
        if item.type == "message" and item.text:
            after = session.add_item(
                payloads.message_item(item.text, item.role or "assistant", session.dialect),
                after=after,
            )
            added.append(after)
    return added
