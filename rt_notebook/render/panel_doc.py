"""Pure panel view: the chat panel's list of entries, and the ops that change it.

The chat panel's page code (``widgets/chat_view.js``) holds the list of what the panel
shows: one *entry* per bubble (a conversation item, a message not sent yet, an error) or
Approve / Deny row. The kernel never resends the list: it sends *ops* (add or replace one
entry, append streamed text to one, change its label, move, remove) and keeps this copy,
:class:`PanelDoc`, from which a page that joins late (a reload, a second view) gets the
whole list once. Every op is a small dict of plain data; this module makes them and
applies them to the copy exactly as the page does.

An entry is ``{"key", "kind", "meta", "blocks", "tail"}`` and maybe ``"plain"``: ``kind``
``bubble`` or ``approval``; ``meta`` what the label and data attributes say; ``blocks``
the body as Markdown trees (:mod:`rt_notebook.render.markdown_tree`: already sanitized,
plain data, never HTML); ``tail`` streamed text not yet in a finished block, shown as
text; ``plain`` the rest of an answer past :data:`PANEL_MARKDOWN_LIMIT` characters
(bounded rendering, as in cells, with a lower bound: the page builds a bubble's elements
in one go, where a cell renders block by block): plain text (credentials scrubbed), which
the page folds behind a "show all" control of its own and never parses.

Everything here is fixed-vocabulary or plain text: the page makes elements from a fixed
list and puts every string in a text node, so no value can become markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..redaction import scrub
from .blocks import BlockScanner
from .items import ROLE_LABELS, image_labels, item_label, pretty_json, role_label
from .items import item_body as markdown_body
from .markdown import normalise_lines
from .markdown_tree import Node, markdown_tree, tree_text

if TYPE_CHECKING:
    from ..client.responses import ItemSnapshot

__all__ = [
    "PANEL_MARKDOWN_LIMIT",
    "Entry",
    "PanelDoc",
    "approval_entry",
    "bounded_blocks",
    "error_entry",
    "is_streaming",
    "item_body",
    "item_meta",
    "outgoing_entry",
    "utf16_length",
]

# Characters of an answer the panel shows as Markdown; the rest is folded plain text.
# Lower than a cell's 100 KB: the page builds a bubble's elements at once (a pasted text
# and its echo are two bubbles), and 100 KB dense in links and code is thousands of them.
PANEL_MARKDOWN_LIMIT = 30_000

Entry = dict[str, Any]
Op = dict[str, Any]

# Response statuses worth a flag on a bubble (completed is the quiet default).
_NOTABLE = frozenset({"cancelled", "failed", "incomplete"})
# The only bubble kinds (rt-chat-KIND classes, styled in chat.css); the page checks too.
KINDS = frozenset({*ROLE_LABELS, "function-call", "function-output", "error", "other"})
# What a message the panel sent, not (yet) in the conversation, says about itself.
OUTGOING_FLAGS = {
    "queued": "queued",  # waiting for its turn (another answer is running)
    "stopped": "not sent: stopped",  # Stop cancelled its turn before it was sent
    "failed": "not sent: error",  # its turn failed before the server had it
}


def utf16_length(text: str) -> int:
    """``text``'s length as the page counts it (JavaScript strings are UTF-16)."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def is_streaming(item: ItemSnapshot, response_status: str | None) -> bool:
    """Whether an item is still growing (its final state is shown without pacing)."""
    if item.response_id is None:
        return False  # client-created items are complete when they arrive
    return (item.status or "in_progress") == "in_progress" and response_status in (
        None,
        "in_progress",
    )


# Remote MCP items (drawn as calls and outputs are), and their bubbles' kind.
_MCP_KINDS = {
    "mcp_call": "function-call",
    "mcp_approval_request": "function-call",
    "mcp_list_tools": "function-output",
    "mcp_approval_response": "function-output",
}


def _kind(item: ItemSnapshot) -> str:
    if item.type in _MCP_KINDS:
        return _MCP_KINDS[item.type]
    if item.type == "function_call":
        return "function-call"
    if item.type == "function_call_output":
        return "function-output"
    role = item.role or "assistant"
    return role if role in ROLE_LABELS else "other"


def item_meta(
    item: ItemSnapshot,
    response_status: str | None,
    events: str = "",
    footer: str = "",
    thumbs: Sequence[str] = (),
) -> dict[str, Any]:
    """What an item's bubble says about it: kind, label, data attributes, flags, the
    "events" link (``#rt-events-…``, ids only), a footer line (plain text), its images'
    labels and ``thumbs``: the page's tokens of the images it pasted (see
    ``widgets/thumbs.js``; a token the page does not hold draws nothing)."""
    streaming = is_streaming(item, response_status)
    code = ""
    if item.type == "function_call":
        label, code = "Function call", item.name or "?"
    elif item.type == "function_call_output":
        label, code = "Function output", item.call_id or ""
    elif item.type in _MCP_KINDS:
        label = item_label(item)
    else:
        label = role_label(item.role or "assistant")
    notable = response_status if response_status in _NOTABLE else ""
    return {
        "kind": _kind(item),
        "label": scrub(label),
        "code": scrub(code),
        "streaming": streaming,
        "flag": "" if streaming else scrub(notable or ""),
        "data": {
            "item-id": scrub(item.id),
            "type": scrub(item.type),
            "role": scrub(item.role or ""),
            "status": "in_progress" if streaming else scrub(item.status or "in_progress"),
            "response-status": scrub(response_status or ""),
        },
        "events": events,
        "footer": scrub(footer),
        "images": image_labels(item),
        "thumbs": list(thumbs),
    }


def item_body(item: ItemSnapshot) -> list[Node]:
    """An item's body as blocks: message text as Markdown; arguments and outputs as code."""
    if item.type == "function_call":
        return [["pre", ["code", scrub(pretty_json(item.arguments or ""))]]]
    if item.type == "function_call_output":
        return [["pre", ["code", scrub(pretty_json(item.output or ""))]]]
    if item.type in _MCP_KINDS:  # the one renderer's safe Markdown, as blocks
        return markdown_tree(scrub(markdown_body(item)))
    # A user message's images as labels after its text (never their bytes).
    labels: list[Node] = [["p", ["em", f"[{label}]"]] for label in image_labels(item)]
    return [*markdown_tree(item.text), *labels]


def bounded_blocks(text: str, limit: int = PANEL_MARKDOWN_LIMIT) -> tuple[list[Node], str]:
    """``text`` as Markdown blocks up to the last block boundary within ``limit``
    characters, and the rest as plain text ("": it all fits)."""
    if len(text) <= limit:
        return markdown_tree(text), ""
    cut = BlockScanner().feed(text[:limit])
    return markdown_tree(text[:cut]), plain_text(text[cut:])


def plain_text(text: str) -> str:
    """Model text shown as text (past the Markdown limit): scrubbed, one kind of newline."""
    return scrub(normalise_lines(text))


def outgoing_entry(
    key: str, item_id: str, text: str, state: str, thumbs: Sequence[str] = ()
) -> Entry:
    """A user message the panel sent that the server does not have (yet), with the
    thumbnails of the images pasted with it (``thumbs``: the page's tokens)."""
    state = state if state in OUTGOING_FLAGS else "queued"
    meta = {
        "kind": "user",
        "label": "You",
        "code": "",
        "streaming": False,
        "flag": OUTGOING_FLAGS[state],
        "data": {"item-id": scrub(item_id), "type": "message", "role": "user", "status": state},
        "events": "",
        "footer": "",
        "images": [],
        "thumbs": list(thumbs),
    }
    return {"key": key, "kind": "bubble", "meta": meta, "blocks": markdown_tree(text), "tail": ""}


def error_entry(key: str, message: str) -> Entry:
    """An error bubble: the message as text (never Markdown)."""
    meta = {
        "kind": "error",
        "label": "Error",
        "code": "",
        "streaming": False,
        "flag": "",
        "data": {"type": "error", "role": "", "status": "error"},
        "events": "",
        "footer": "",
    }
    blocks: list[Node] = [["p", scrub(message)]]
    return {"key": key, "kind": "bubble", "meta": meta, "blocks": blocks, "tail": ""}


def approval_entry(key: str, call: str, name: str, arguments: str, decided: str = "") -> Entry:
    """Approve / Deny for one tool call (``call``: the key the page sends back); once
    ``decided``, the row says the outcome and the buttons go."""
    label = (
        f"{_one_line(name, 60)}: {decided}"
        if decided
        else (f"Run {_one_line(name, 60)}({_one_line(arguments)})?")
    )
    meta = {"call": call, "label": label, "decided": decided}
    return {"key": key, "kind": "approval", "meta": meta, "blocks": [], "tail": ""}


def _one_line(text: str, limit: int = 120) -> str:
    text = " ".join(scrub(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def entry_text(entry: Entry) -> str:
    """The text an entry's body shows (blocks, then the tail, then the plain rest)."""
    return tree_text(entry["blocks"]) + str(entry["tail"]) + str(entry.get("plain", ""))


@dataclass
class PanelDoc:
    """The kernel's copy of the page's list; each method changes it and returns the op."""

    entries: dict[str, Entry] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def reset(self) -> Op:
        """The whole list, for a page that joins (or rejoins)."""
        return {"op": "reset", "entries": [self.entries[key] for key in self.order]}

    def put(self, entry: Entry, after: str | None) -> Op:
        """Add or replace ``entry``, placed after the entry ``after`` (``None``: first)."""
        key = entry["key"]
        self.entries[key] = dict(entry)  # the op keeps what was sent; the copy changes
        self._place(key, after)
        return {"op": "put", "entry": entry, "after": after}

    def meta(self, key: str, meta: dict[str, Any]) -> Op:
        """Replace an entry's label and attributes."""
        self.entries[key]["meta"] = meta
        return {"op": "meta", "key": key, "meta": meta}

    def grow(
        self,
        key: str,
        append: str,
        seal: list[Node] | None = None,
        cut: int = 0,
        *,
        plain: str = "",
        keep: int | None = None,
    ) -> Op:
        """Append ``append`` to the tail; with ``seal``, add those blocks to the body and
        drop the tail's first ``cut`` characters (the text they show). Then keep the
        first ``keep`` characters of the plain rest (None: all) and append ``plain``."""
        entry = self.entries[key]
        tail = entry["tail"] + append
        op: Op = {"op": "grow", "key": key, "append": append}
        if seal is not None:
            entry["blocks"] = [*entry["blocks"], *seal]
            op["seal"] = seal
            op["cut"] = utf16_length(tail[:cut])
            tail = tail[cut:]
        entry["tail"] = tail
        if plain or keep is not None:
            old = entry.get("plain", "")
            if keep is not None:
                op["keep"] = utf16_length(old[:keep])
                old = old[:keep]
            entry["plain"] = old + plain
            op["plain"] = plain
        return op

    def remove(self, key: str) -> Op:
        """Drop an entry."""
        del self.entries[key]
        self.order.remove(key)
        return {"op": "remove", "key": key}

    def arrange(self, wanted: list[str], gone: set[str] | None = None) -> list[Op]:
        """Ops that bring the order to ``wanted`` (keys of entries already put): entries
        not wanted are removed (``gone``, when the caller knows them), then those out of
        place moved. Appends and a changed end cost a few ops, not one per entry; the
        comparisons are built-in list operations."""
        if gone is None:
            gone = self.entries.keys() - set(wanted)
        ops = [self.remove(key) for key in gone if key in self.entries]
        order = self.order
        if order == wanted:
            return ops
        # The longest common prefix, by halving (each step one list comparison).
        low, high = 0, min(len(order), len(wanted))
        while low < high:
            middle = (low + high + 1) // 2
            if order[:middle] == wanted[:middle]:
                low = middle
            else:
                high = middle - 1
        for index in range(low, len(wanted)):
            key = wanted[index]
            after = wanted[index - 1] if index else None
            current = self.order.index(key)
            if (current == 0 and after is None) or (
                current > 0 and self.order[current - 1] == after
            ):
                continue
            self._place(key, after)
            ops.append({"op": "move", "key": key, "after": after})
        return ops

    def _place(self, key: str, after: str | None) -> None:
        if key in self.order:
            self.order.remove(key)
        index = 0 if after is None else self.order.index(after) + 1
        self.order.insert(index, key)
