"""Front end, cell-anchored items: a ``%%realtime`` cell that runs again replaces its own turn.

Each cell remembers the ids of the items its last run added (its message, the answer, any
tool round). Running it again deletes them and places the new message where they stood, so
editing and re-running a cell does not pile up old turns. The outputs that answered the
cell's function calls go with them, even those another cell added (``--function-output``):
an output whose call is gone would be an orphan the model cannot place. That other cell,
run again, puts its new output right after the new call.

A message placed in the middle of the conversation is answered out of band from the items
up to it (an in-conversation answer would see the later items and land at the end), and
:func:`insert_answer` then puts the answer's messages and function calls right after it.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..protocol import payloads

if TYPE_CHECKING:
    from ..client.responses import ItemSnapshot, ResponseHandle, ResponseResult
    from ..client.session import Session

__all__ = ["CellAnchors", "Replacement", "insert_answer", "item_ids", "plan_replacement"]


@dataclass(frozen=True)
class Replacement:
    """What re-running a cell does to the conversation before its new item is added."""

    delete: tuple[str, ...]  # the cell's old items and the outputs answering its calls
    after: str | None  # where the new item goes (``None``: at the end)
    others: tuple[str, ...] = ()  # outputs deleted that another cell (or code) had added
    vacated: bool = False  # the cell ran before, but none of its items is left


def plan_replacement(
    order: Sequence[str], old: Sequence[str], answers: Sequence[str], after: str | None
) -> Replacement:
    """Plan a re-run (sans-I/O): ``order`` is the conversation's item ids, ``old`` the ids
    the cell's last run added, ``answers`` the ids of the function_call_output items that
    answer its function calls, ``after`` the ``--after`` the cell names (if any)."""
    if not old:
        return Replacement((), after)
    mine = set(old)
    doomed = mine | set(answers)
    delete = tuple(item_id for item_id in order if item_id in doomed)
    own = [index for index, item_id in enumerate(order) if item_id in mine]
    others = tuple(item_id for item_id in delete if item_id not in mine)
    if not own:
        return Replacement(delete, after, others, vacated=True)
    first = own[0]
    if after is None and not set(order[first:]) <= doomed:
        after = order[first - 1] if first > 0 else "root"
    # Otherwise appending is simpler (and the same): the old items were the last ones.
    return Replacement(delete, after, others)


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
        """The running cell's id (Jupyter sends it as ``cellId``), else a hash of its text.

        The text is the cell as the kernel received it: IPython expands ``{name}`` on the
        magic's line before the magic sees it, so a line like ``--function-output {call_id}``
        would otherwise name another cell each time ``call_id`` changes.
        """
        source = line
        with contextlib.suppress(Exception):  # plain IPython has no kernel
            parent = shell.kernel.get_parent()
            cell_id = parent["metadata"].get("cellId")
            if cell_id:
                return f"id:{cell_id}"
            code = parent["content"].get("code")
            if isinstance(code, str) and cell.strip() in code:  # IPython adds a newline
                source = code
        return "text:" + hashlib.sha256(f"{source}\n{cell}".encode()).hexdigest()

    def clear(self, session: Session, key: tuple[str, str], after: str | None) -> Replacement:
        """Delete the items this cell added last time, and the outputs answering its
        function calls; return the plan (``after``: where its new item goes)."""
        old = self._items.pop(key, [])
        if not old:
            return Replacement((), after)
        # Ids only (and the outputs of its own calls): a cell costs the same at any length.
        plan = plan_replacement(session.item_ids(), old, session.outputs_answering(old), after)
        for item_id in plan.delete:
            session.delete_item(item_id)
        return plan


def item_ids(handle: ResponseHandle) -> list[str]:
    """Ids of a finished in-conversation response's items (none if it failed)."""
    if handle.error is not None or handle.out_of_band:
        return []
    return [item.id for item in handle.wait(0).items]


def insert_answer(
    session: Session, after: str, result: ResponseResult
) -> list[tuple[str, ItemSnapshot]]:
    """Add an out-of-band answer's messages and function calls to the conversation after
    item ``after``, in order; return each new item's id with the item it copies (the
    calls keep their ``call_id``, so ``--function-output`` and tool rounds answer them)."""
    added: list[tuple[str, ItemSnapshot]] = []
    for item in result.items:
        if item.type == "message" and item.text:
            body = payloads.message_item(item.text, item.role or "assistant", session.dialect)
        elif item.type == "function_call" and item.call_id:
            body = {
                "type": "function_call",
                "call_id": item.call_id,
                "name": item.name or "",
                "arguments": item.arguments or "{}",
            }
        else:
            continue
        after = session.add_item(body, after=after)
        added.append((after, item))
    return added
