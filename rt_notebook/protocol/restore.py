"""Sans-I/O restore plan: the items that rebuild a conversation on a new connection.

A new Realtime connection starts with an empty conversation. To carry a conversation
over, the client re-creates its items in order with ``conversation.item.create``: messages
of every role as text (audio as its transcript, or a short placeholder when there is none),
a user message's images as the same ``input_image`` parts (GA), function calls with their
outputs, and remote MCP listings, calls and approvals as system messages saying what they
were (which tool, its arguments, its result: only the service can make those items).
Items keep their ids (the client may choose item ids), so every id the user holds
(``--after``, cell anchors, the panel) stays valid: the old-to-new id map is the identity
unless a server assigns other ids.

Items still ``in_progress`` (the partial output of a response the drop interrupted) are
left out: that response is requested again instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .conversation import Item
from .events import Dialect
from .mcp import MCP_ITEM_TYPES, restored_text

__all__ = ["AUDIO_PLACEHOLDER", "restore_items"]

AUDIO_PLACEHOLDER = "[audio message: no transcript was available when the conversation moved]"


def restore_items(
    items: Iterable[Item], dialect: Dialect, skip_response: str | None = None
) -> list[dict[str, Any]]:
    """``conversation.item.create`` bodies (``item`` objects) re-creating ``items`` in order.

    Items of ``skip_response`` (the interrupted response) and unfinished items are skipped.
    """
    plan: list[dict[str, Any]] = []
    for item in items:
        if item.status == "in_progress" or (
            skip_response is not None and item.response_id == skip_response
        ):
            continue
        wire = _wire(item, dialect)
        if wire is not None:
            plan.append(wire)
    return plan


def _wire(item: Item, dialect: Dialect) -> dict[str, Any] | None:
    if item.type == "function_call":
        return {
            "id": item.id,
            "type": "function_call",
            "call_id": item.call_id or "",
            "name": item.name or "",
            "arguments": item.arguments or "{}",
        }
    if item.type == "function_call_output":
        return {
            "id": item.id,
            "type": "function_call_output",
            "call_id": item.call_id or "",
            "output": item.output or "",
        }
    if item.type in MCP_ITEM_TYPES:
        # Only the service makes them: carried over as their text, in a system message.
        text = restored_text(item)
        content = [{"type": "input_text", "text": text}]
        return {"id": item.id, "type": "message", "role": "system", "content": content}
    if item.type != "message":
        return None  # other server-side items cannot be re-created by a client
    role = item.role if item.role in ("user", "assistant", "system") else "user"
    resend = role == "user" and dialect is not Dialect.BETA
    images = [image.wire() for image in item.images] if resend else []
    text = item.text or ("" if images or role == "system" else AUDIO_PLACEHOLDER)
    if role == "assistant":
        part = "text" if dialect is Dialect.BETA else "output_text"
    else:
        part = "input_text"
    content = [{"type": part, "text": text}] if text or not images else []
    return {"id": item.id, "type": "message", "role": role, "content": [*content, *images]}
