"""Rendering: Markdown tables of a Session's state, the conversation's items and the function
tools.

Every cell of model, server or user text passes through
:func:`~rt_notebook.render.markdown.safe_inline` (or is inline code), with ``|`` escaped so a
cell stays a cell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .items import item_summary
from .markdown import inline_code, safe_inline

if TYPE_CHECKING:
    from ..client.session import Session

__all__ = ["history_table", "tools_table"]


def history_table(session: Session) -> str:
    """The conversation as a Markdown table (one row per item)."""
    rows = ["| # | id | type | role | status | text |", "|---|---|---|---|---|---|"]
    for index, item in enumerate(session.items):
        cells = [item.type, item.role or "", item.status or "", item_summary(item)]
        type_, role, status, text = (_cell(value) for value in cells)
        rows.append(f"| {index} | {inline_code(item.id)} | {type_} | {role} | {status} | {text} |")
    return "\n".join(rows)


def tools_table(session: Session) -> str:
    """The Session's function tools as a Markdown table."""
    if not session.tools:
        return "No function tools: register one with `@session.tool` or `@rt_notebook.tool`."
    rows = ["| tool | parameters | approval | timeout | description |", "|---|---|---|---|---|"]
    from ..tools import toolbox

    for name, tool in toolbox(session).items():
        required = set(tool.parameters.get("required", []))
        parameters = ", ".join(
            name if name in required else f"{name}?" for name in tool.parameters["properties"]
        )
        description = _cell(tool.description)
        approval = "yes" if tool.approval else "no"
        rows.append(
            f"| {inline_code(name)} | {_cell(parameters)} | {approval} | "
            f"{tool.timeout:g} s | {description} |"
        )
    return "\n".join(rows)


def mcp_table(session: Session) -> str:
    """The Session's MCP servers and the tools each offers, as a Markdown table."""
    from ..tools.mcp_servers import mcp_servers

    servers = mcp_servers(session)
    remote = servers.remote
    if not servers and not remote:
        return (
            "No MCP servers: add one with `%realtime mcp add LABEL --command CMD` (the kernel "
            "runs it) or `%realtime mcp add LABEL URL` (the service runs it)."
        )
    rows = ["| server | where | running | tools | not offered |", "|---|---|---|---|---|"]
    for label, hosted in remote.items():
        listing = servers.listing(label)
        if listing is None or listing.status not in ("completed", "failed"):
            tools = "*listing…*"
        elif listing.status == "failed":
            tools = f"**listing failed** {_cell(listing.error or '')}"
        else:
            tools = ", ".join(inline_code(tool.get("name", "?")) for tool in listing.tools)
        rows.append(
            f"| {inline_code(label)} | {_cell(hosted.where)} (run by the service; approval: "
            f"{_cell(hosted.approval)}) | service | {tools or 'none'} | |"
        )
    for label, server in servers.items():
        tools = ", ".join(inline_code(name) for name in server.tools) or "none"
        skipped = "; ".join(f"{name}: {why}" for name, why in server.skipped.items())
        rows.append(
            f"| {inline_code(label)} | {_cell(server.spec.describe())} | "
            f"{'yes' if server.running else 'no'} | {tools} | {_cell(skipped)} |"
        )
    return "\n".join(rows)


def _cell(text: str) -> str:
    return safe_inline(text).replace("|", "\\|")  # inline_code() output holds no "|"
