"""Sans-I/O remote MCP items and events (protocol layer), folded into the conversation mirror.

When a session or response has a ``{"type": "mcp", ...}`` tool, the service (or the
embedded server) runs the MCP server itself and tells the client what it does:

- an ``mcp_list_tools`` item (``conversation.item.added``), then
  ``mcp_list_tools.in_progress`` and ``.completed`` (the item's tools arrive with
  ``conversation.item.done``) or ``.failed``;
- in a response, an ``mcp_call`` output item whose arguments stream
  (``response.mcp_call_arguments.delta`` / ``.done``), then
  ``response.mcp_call.in_progress`` and ``.completed`` (the output arrives with
  ``response.output_item.done``) or ``.failed`` (the item's ``error``);
- an ``mcp_approval_request`` output item when the tool needs the user's approval; the
  client answers with an ``mcp_approval_response`` item (:func:`approval_response`).

The mirror's :class:`~rt_notebook.protocol.conversation.Item` keeps what views show: the
server's label, the tool's name and arguments, the output or error, and a listing's tools.
An ``mcp_call`` and an ``mcp_approval_response`` keep the approval request's id as
``call_id``; an approval response keeps its decision as ``output``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .events import Event, new_id

if TYPE_CHECKING:
    from .conversation import Change, Conversation, Item

__all__ = [
    "MCP_EVENT_STATUS",
    "MCP_ITEM_TYPES",
    "absorb_mcp",
    "approval_response",
    "arguments_object",
    "error_text",
    "mcp_handlers",
    "restored_text",
]

MCP_ITEM_TYPES = frozenset(
    {"mcp_list_tools", "mcp_call", "mcp_approval_request", "mcp_approval_response"}
)

# The status each lifecycle event gives its item.
MCP_EVENT_STATUS = {
    "mcp_list_tools.in_progress": "in_progress",
    "mcp_list_tools.completed": "completed",
    "mcp_list_tools.failed": "failed",
    "response.mcp_call.in_progress": "in_progress",
    "response.mcp_call.completed": "completed",
    "response.mcp_call.failed": "failed",
}
# What a failure says when the server gave no reason (the events carry none).
_FAILED = {
    "mcp_list_tools.failed": "listing the MCP server's tools failed",
    "response.mcp_call.failed": "the MCP tool call failed",
}


def error_text(error: object) -> str | None:
    """An ``mcp_call`` item's ``error`` as one line (``protocol_error 404: …``)."""
    if error is None:
        return None
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        kind = error.get("type")
        code = error.get("code")
        message = error.get("message")
        head = " ".join(str(part) for part in (kind, code) if part is not None)
        return f"{head}: {message}" if head and message else str(message or head or "error")
    return str(error)


def absorb_mcp(item: Item, wire: Event) -> None:
    """Take what a full MCP item snapshot says (the mirror's ``Item._absorb`` calls this)."""
    label = wire.get("server_label")
    if isinstance(label, str):
        item.server_label = label
    if item.type in {"mcp_call", "mcp_approval_response"}:
        request_id = wire.get("approval_request_id")
        if isinstance(request_id, str):
            item.call_id = request_id
    if item.type == "mcp_call" and wire.get("error") is not None:
        item.error = error_text(wire["error"])
    if item.type == "mcp_approval_response" and isinstance(wire.get("approve"), bool):
        reason = wire.get("reason")
        decision = "approved" if wire["approve"] else "denied"
        item.output = f"{decision}: {reason}" if isinstance(reason, str) and reason else decision
    tools = wire.get("tools")
    if item.type == "mcp_list_tools" and isinstance(tools, list):
        item.tools = tuple(
            {
                "name": str(tool.get("name", "?")),
                "description": str(tool.get("description") or ""),
            }
            for tool in tools
            if isinstance(tool, dict)
        )


def mcp_handlers(conversation: Conversation) -> dict[str, Callable[[Event], list[Change]]]:
    """The mirror's handlers of the MCP server events, by GA type."""
    from .conversation import ItemDelta, ItemUpdated

    def on_status(event: Event) -> list[Change]:
        item = conversation.item(str(event.get("item_id", "")))
        if item is None:
            return []
        kind = str(event.get("type"))
        item.status = MCP_EVENT_STATUS[kind]
        if kind in _FAILED and item.error is None:
            item.error = _FAILED[kind]
        return [ItemUpdated(item.id)]

    def on_arguments_delta(event: Event) -> list[Change]:
        item = conversation.item(str(event.get("item_id", "")))
        delta = event.get("delta")
        if item is None or type(delta) is not str:
            return []
        item.arguments_chunks.append(delta)
        return [ItemDelta(item.id, event.get("response_id"), "arguments", delta)]

    def on_arguments_done(event: Event) -> list[Change]:
        item = conversation.item(str(event.get("item_id", "")))
        arguments = event.get("arguments")
        if item is None or not isinstance(arguments, str):
            return []
        item.arguments_chunks[:] = [arguments]
        return [ItemUpdated(item.id)]

    handlers: dict[str, Callable[[Event], list[Change]]] = dict.fromkeys(
        MCP_EVENT_STATUS, on_status
    )
    handlers["response.mcp_call_arguments.delta"] = on_arguments_delta
    handlers["response.mcp_call_arguments.done"] = on_arguments_done
    return handlers


def approval_response(request_id: str, approve: bool, reason: str | None = None) -> Event:
    """The ``mcp_approval_response`` item that answers approval request ``request_id``."""
    item: dict[str, Any] = {
        "type": "mcp_approval_response",
        "id": new_id("item"),
        "approval_request_id": request_id,
        "approve": approve,
    }
    if reason:
        item["reason"] = reason
    return item


def restored_text(item: Item) -> str:
    """What an MCP item was, as the text that stands for it on a new connection."""
    server = item.server_label or "?"
    if item.type == "mcp_list_tools":
        names = ", ".join(tool.get("name", "?") for tool in item.tools)
        found = f"failed ({item.error})" if item.error else (names or "none")
        return f"[MCP server {server!r} listed its tools: {found}]"
    call = f"{server}.{item.name or '?'}({item.arguments or ''})"
    if item.type == "mcp_call":
        result = f"failed: {item.error}" if item.error else f"returned {item.output or ''}"
        return f"[MCP call {call} {result}]"
    if item.type == "mcp_approval_request":
        return (
            f"[MCP approval asked for {call} (request {item.id}); an answer given after the "
            "connection moved cannot reach it: ask again]"
        )
    return f"[MCP approval {item.output or '?'} for request {item.call_id or '?'}]"


def arguments_object(arguments: str) -> Any:
    """A call's arguments decoded, or the text when it is not JSON (still streaming)."""
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments
