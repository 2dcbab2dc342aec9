"""Sans-I/O remote MCP servers of one connection, run by the embedded server as the service does.

A session tool ``{"type": "mcp", "server_label", "server_url", ...}`` makes the server list
that MCP server's tools and call them for the model. This module decides what happens and
what is sent; the I/O (an MCP client over Streamable HTTP) is the driver's:

- :meth:`RemoteMcp.configure` (a ``session.update``): for each new MCP tool, an
  ``mcp_list_tools`` item (``conversation.item.added``), ``mcp_list_tools.in_progress``, and
  a :class:`ListTools` request for the driver; a ``connector_id`` tool (OpenAI-hosted)
  cannot run offline: ``mcp_list_tools.failed`` and an ``error`` that says so.
- :meth:`RemoteMcp.listed` (the driver's answer): ``mcp_list_tools.completed`` and
  ``conversation.item.done`` with the tools, or ``mcp_list_tools.failed``.
- :meth:`RemoteMcp.plan` (a response starts): the offline rule for the model's choice, the
  responders' ``call NAME {json}`` (:mod:`rt_notebook.server.toolcall`) with ``NAME`` a
  listed tool: an ``mcp_call`` output (its arguments streamed, then a :class:`CallTool`
  request; the streamer waits for :meth:`RemoteMcp.called`), or an
  ``mcp_approval_request`` when the tool requires approval. A response that follows an
  ``mcp_approval_response`` runs the approved call, or says it was declined.

Requests wait in :attr:`RemoteMcp.requests` until the driver takes them
(:meth:`RemoteMcp.take_requests`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from rt_notebook.protocol.events import Event, new_id
from rt_notebook.server import shapes
from rt_notebook.server.items import ItemStore
from rt_notebook.server.plan import OutputKind, OutputStream, split_text, split_tokens

__all__ = [
    "CONNECTOR_OFFLINE",
    "CallTool",
    "ListTools",
    "McpOutcome",
    "McpRequest",
    "RemoteMcp",
]

CONNECTOR_OFFLINE = (
    "MCP server {label!r} uses connector_id {connector!r}: OpenAI-hosted connectors cannot "
    "run offline (the embedded server reaches server_url MCP servers only)"
)
_EXPLICIT = re.compile(r"\bcall\s+([A-Za-z_][\w.-]*)", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class ListTools:
    """Ask the driver to list the tools of the MCP server at ``url``."""

    item_id: str  # the mcp_list_tools item the answer completes
    url: str
    headers: Mapping[str, str]


@dataclasses.dataclass(frozen=True)
class CallTool:
    """Ask the driver to call tool ``name`` of the MCP server at ``url``."""

    response_id: str
    item_id: str  # the mcp_call item the answer completes
    url: str
    headers: Mapping[str, str]
    name: str
    arguments: Mapping[str, Any]


McpRequest = ListTools | CallTool


@dataclasses.dataclass(frozen=True)
class McpOutcome:
    """What a call gave: its output text, or an ``error`` object (SDK ``mcp_call`` error)."""

    output: str | None = None
    error: Event | None = None


@dataclasses.dataclass
class _Server:
    """One MCP tool of the session and what its listing found."""

    tool: Event  # the session tool, as configured
    item_id: str  # its mcp_list_tools item
    tools: dict[str, Event] | None = None  # by name, once listed
    listing: bool = True  # its listing is under way


class RemoteMcp:
    """The MCP servers of one connection (see the module docstring)."""

    def __init__(self, wire: shapes.Wire, conversation: ItemStore) -> None:
        self.wire = wire
        self.conversation = conversation
        self._servers: dict[str, _Server] = {}  # by label
        self.requests: list[McpRequest] = []

    def listing(self) -> bool:
        """Whether a server's listing is under way (a response waits for it, as on the
        service: the model is offered the tools the listing finds)."""
        return any(server.listing for server in self._servers.values())

    def take_requests(self) -> list[McpRequest]:
        """The requests made since the driver last asked."""
        requests, self.requests = self.requests, []
        return requests

    # Listing

    def configure(self, tools: Sequence[Any]) -> list[Event]:
        """The session's tools changed: list the tools of every new (or changed) server."""
        out: list[Event] = []
        wanted = {
            tool["server_label"]: tool
            for tool in tools
            if isinstance(tool, dict) and tool.get("type") == "mcp"
        }
        for label in [label for label in self._servers if label not in wanted]:
            del self._servers[label]
        for label, tool in wanted.items():
            known = self._servers.get(label)
            if known is not None and _where(known.tool) == _where(tool):
                known.tool = tool  # allowed tools and approvals apply from now on
                continue
            out.extend(self._start_listing(label, tool))
        return out

    def _start_listing(self, label: str, tool: Event) -> list[Event]:
        item: Event = {"id": new_id("item"), "type": "mcp_list_tools", "server_label": label}
        item["tools"] = []
        self._servers[label] = _Server(tool, item["id"])
        previous = self.conversation.insert(item)
        out = [
            self.wire.event(
                "conversation.item.added", previous_item_id=previous, item=self.wire.item(item)
            ),
            self.wire.event("mcp_list_tools.in_progress", item_id=item["id"]),
        ]
        connector = tool.get("connector_id")
        if not tool.get("server_url"):
            self._servers[label].listing = False
            message = CONNECTOR_OFFLINE.format(label=label, connector=connector)
            error = {
                "type": "invalid_request_error",
                "code": "mcp_connector_offline",
                "message": message,
                "param": "session.tools",
                "event_id": None,
            }
            out.append(self.wire.event("mcp_list_tools.failed", item_id=item["id"]))
            out.append(self.wire.event("error", error=error))
            return out
        headers = dict(tool.get("headers") or {})
        if isinstance(tool.get("authorization"), str):
            headers.setdefault("Authorization", f"Bearer {tool['authorization']}")
        self.requests.append(ListTools(item["id"], str(tool["server_url"]), headers))
        return out

    def listed(self, item_id: str, tools: Sequence[Event] | None) -> list[Event]:
        """The driver listed a server's tools (``None``: it failed)."""
        server = next((s for s in self._servers.values() if s.item_id == item_id), None)
        item = self.conversation.get(item_id)
        if server is None or item is None:
            return []  # removed meanwhile
        server.listing = False
        if tools is None:
            return [self.wire.event("mcp_list_tools.failed", item_id=item_id)]
        allowed = _allowed(server.tool)
        offered = [tool for tool in tools if allowed is None or tool["name"] in allowed]
        server.tools = {tool["name"]: tool for tool in offered}
        item["tools"] = [dict(tool) for tool in offered]
        self.conversation.refresh(item_id)
        return [
            self.wire.event("mcp_list_tools.completed", item_id=item_id),
            self.wire.event(
                "conversation.item.done",
                previous_item_id=self.conversation.previous_id(item_id),
                item=self.wire.item(item),
            ),
        ]

    # Calls

    def plan(self, context: Sequence[Event], tools: Sequence[Any]) -> list[OutputStream] | None:
        """The outputs of a response that runs (or asks about) an MCP tool, else ``None``."""
        labels = {
            tool.get("server_label")
            for tool in tools
            if isinstance(tool, dict) and tool.get("type") == "mcp"
        }
        servers = [s for label, s in self._servers.items() if label in labels and s.tools]
        if not servers or not context:
            return None
        last = context[-1]
        if last.get("type") == "mcp_approval_response":
            return self._answer_approval(last)
        if last.get("type") != "message" or last.get("role") != "user":
            return None
        text = " ".join(
            str(part.get("text") or part.get("transcript") or "")
            for part in last.get("content") or ()
        )
        for match in _EXPLICIT.finditer(text):
            name = match.group(1)
            server = next((s for s in servers if s.tools and name in s.tools), None)
            if server is None:
                continue
            arguments = _json_after(text[match.end() :])
            label = str(server.tool["server_label"])
            if _needs_approval(server.tool, name):
                return [_approval_stream(label, name, arguments)]
            return [_call_stream(label, name, arguments, None)]
        return None

    def _answer_approval(self, answer: Event) -> list[OutputStream] | None:
        request = self.conversation.get(str(answer.get("approval_request_id")))
        if request is None or request.get("type") != "mcp_approval_request":
            return None  # nothing to run: the responder answers
        name, label = str(request["name"]), str(request["server_label"])
        if not answer.get("approve"):
            reason = answer.get("reason")
            text = f"I did not run {name} (MCP server {label}): you declined" + (
                f" ({reason})." if reason else "."
            )
            return [_message_stream(text)]
        if label not in self._servers:
            return [_message_stream(f"I cannot run {name}: MCP server {label} is gone.")]
        return [_call_stream(label, name, str(request["arguments"]), str(request["id"]))]

    def call_request(self, response_id: str, stream: OutputStream) -> CallTool | McpOutcome:
        """The driver's request for a call whose arguments are complete, or its outcome
        when it cannot run (bad arguments, the server gone)."""
        item = stream.item
        server = self._servers.get(str(item["server_label"]))
        if server is None or server.tools is None:
            return McpOutcome(error=_execution_error("the MCP server is no longer configured"))
        try:
            arguments = json.loads(item["arguments"] or "{}")
        except ValueError as exc:
            return McpOutcome(error=_execution_error(f"arguments are not JSON: {exc}"))
        if not isinstance(arguments, dict):
            return McpOutcome(error=_execution_error("arguments must be a JSON object"))
        headers = dict(server.tool.get("headers") or {})
        if isinstance(server.tool.get("authorization"), str):
            headers.setdefault("Authorization", f"Bearer {server.tool['authorization']}")
        request = CallTool(
            response_id,
            str(item["id"]),
            str(server.tool["server_url"]),
            headers,
            str(item["name"]),
            arguments,
        )
        self.requests.append(request)
        return request


def _where(tool: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes a server another one (a new listing): its address and credentials."""
    return (
        tool.get("server_url"),
        tool.get("connector_id"),
        json.dumps(tool.get("headers"), sort_keys=True),
        tool.get("authorization"),
    )


def _allowed(tool: Mapping[str, Any]) -> set[str] | None:
    allowed = tool.get("allowed_tools")
    if isinstance(allowed, list):
        return {str(name) for name in allowed}
    if isinstance(allowed, dict) and isinstance(allowed.get("tool_names"), list):
        return {str(name) for name in allowed["tool_names"]}
    return None


def _needs_approval(tool: Mapping[str, Any], name: str) -> bool:
    """The service's rule: ``always`` (also the default), ``never``, or a filter."""
    setting = tool.get("require_approval", "always")
    if setting is None or setting == "always":
        return True
    if setting == "never":
        return False
    if isinstance(setting, dict):
        never = (setting.get("never") or {}).get("tool_names") or []
        always = (setting.get("always") or {}).get("tool_names") or []
        if name in never:
            return False
        return name in always or not always
    return True


def _json_after(text: str) -> str:
    """The JSON object that follows ``call NAME`` (``{}`` without one)."""
    start = text.lstrip()
    if not start.startswith("{"):
        return "{}"
    try:
        value, _ = json.JSONDecoder().raw_decode(start)
    except ValueError:
        return start.split("\n", 1)[0]  # as written: the call fails on it, visibly
    return json.dumps(value)


def _execution_error(message: str) -> Event:
    return {"type": "tool_execution_error", "message": message}


def _call_stream(label: str, name: str, arguments: str, approval: str | None) -> OutputStream:
    item: Event = {
        "id": new_id("item"),
        "type": "mcp_call",
        "server_label": label,
        "name": name,
        "arguments": "",
        "approval_request_id": approval,
        "output": None,
        "error": None,
    }
    return OutputStream(
        kind=OutputKind.MCP_CALL, item=item, deltas=split_tokens(arguments), name=name
    )


def _approval_stream(label: str, name: str, arguments: str) -> OutputStream:
    item: Event = {
        "id": new_id("item"),
        "type": "mcp_approval_request",
        "server_label": label,
        "name": name,
        "arguments": arguments,
    }
    return OutputStream(kind=OutputKind.MCP_APPROVAL, item=item, deltas=[], name=name)


def _message_stream(text: str) -> OutputStream:
    item: Event = {
        "id": new_id("item"),
        "type": "message",
        "status": "in_progress",
        "role": "assistant",
        "content": [],
    }
    return OutputStream(kind=OutputKind.TEXT, item=item, deltas=split_text(text))


def result_message(stream: OutputStream) -> OutputStream:
    """The assistant's words after a call: what it returned, or why it failed."""
    item = stream.item
    if item.get("error"):
        text = f"{item['name']} failed: {item['error'].get('message', 'error')}"
    else:
        text = f"{item['name']} returned: {item.get('output') or ''}"
    return _message_stream(text)
