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
from collections.abc import Sequence
from typing import Any, Protocol

from .events import Event, new_id

__all__ = [
    "MCP_EVENT_STATUS",
    "MCP_ITEM_TYPES",
    "McpItem",
    "absorb_mcp",
    "approval_response",
    "arguments_object",
    "error_text",
    "mark_status",
    "restored_text",
    "result_text",
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


class McpItem(Protocol):
    """What of an item the MCP rules read and write (the mirror's ``Item`` is one)."""

    id: str
    type: str
    name: str | None
    call_id: str | None
    output: str | None
    status: str | None
    server_label: str | None
    error: str | None
    tools: tuple[dict[str, str], ...]

    @property
    def arguments(self) -> str: ...


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


def absorb_mcp(item: McpItem, wire: Event) -> None:
    """Take what a full MCP item snapshot says (the mirror calls this for MCP items)."""
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


def mark_status(item: McpItem, event_type: str) -> None:
    """Set the status a lifecycle event (one of :data:`MCP_EVENT_STATUS`) gives its item;
    a failure with no error yet says what failed (the events carry no reason)."""
    item.status = MCP_EVENT_STATUS[event_type]
    if event_type in _FAILED and item.error is None:
        item.error = _FAILED[event_type]


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


def restored_text(item: McpItem) -> str:
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


def result_text(content: Sequence[Any], structured: Any = None) -> str:
    """A tool result's content as text for the model: text blocks as they are, other blocks
    named (an image's type and size), the structured result when there is no content."""
    parts: list[str] = []
    for block in content:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(str(getattr(block, "text", "")))
        elif kind in ("image", "audio"):
            data = str(getattr(block, "data", ""))
            mime = getattr(block, "mime_type", "") or ""
            parts.append(f"[{kind} {mime}, {len(data) * 3 // 4} bytes]")
        elif kind == "resource_link":
            parts.append(f"[resource {getattr(block, 'uri', '')}]")
        elif kind == "resource":
            resource = getattr(block, "resource", None)
            parts.append(str(getattr(resource, "text", None) or f"[resource {kind}]"))
        else:
            parts.append(f"[{kind or 'content'}]")
    if not parts and structured is not None:
        return json.dumps(structured, default=str)
    return "\n".join(parts)
