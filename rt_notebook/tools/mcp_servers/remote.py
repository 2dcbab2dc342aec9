"""Remote MCP servers run by the service (pure configuration): the ``{"type": "mcp"}`` tool.

``session.add_mcp_server(label, url=...)`` (or ``connector_id=...``) does not connect to
anything from the kernel: it adds a tool ``{"type": "mcp", "server_label", "server_url" |
"connector_id", "allowed_tools", "require_approval", "headers", "authorization"}`` (the
SDK's GA ``RealtimeResponseCreateMcpTool``) to the session's tools, and the service (or the
embedded server, offline) lists the server's tools and calls them itself. What it does
arrives as MCP items and events (:mod:`rt_notebook.protocol.mcp`).

``headers`` values and ``authorization`` are credentials: they are kept as
:class:`~rt_notebook.redaction.Secret` and registered for scrubbing, revealed only in the
definition handed to the transport (:meth:`RemoteMCPServer.definition`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...errors import ConfigurationError
from ...redaction import Secret, register_secret
from .naming import check_label

__all__ = ["CONNECTORS", "RemoteMCPServer", "approval_setting", "remote_server"]

# The connector ids the installed SDK's GA types accept (OpenAI-hosted servers).
CONNECTORS = (
    "connector_dropbox",
    "connector_gmail",
    "connector_googlecalendar",
    "connector_googledrive",
    "connector_microsoftteams",
    "connector_outlookcalendar",
    "connector_outlookemail",
    "connector_sharepoint",
)


@dataclass(frozen=True, eq=False)
class RemoteMCPServer:
    """A remote MCP server the service runs for this Session (its credentials hidden)."""

    label: str
    url: str | None
    connector_id: str | None
    allowed_tools: tuple[str, ...] | None
    require_approval: str | tuple[str, ...]  # "always", "never" or the tools that ask
    headers: Mapping[str, Secret] = field(default_factory=dict)
    authorization: Secret | None = None
    description: str | None = None

    def __repr__(self) -> str:
        hidden = [*(f"{name}: ***" for name in self.headers)]
        if self.authorization is not None:
            hidden.append("authorization: ***")
        extra = f" {', '.join(hidden)}" if hidden else ""
        return f"<RemoteMCPServer {self.label!r} {self.where!r}{extra}>"

    @property
    def where(self) -> str:
        """The server's URL or connector id (no credentials)."""
        return self.url or self.connector_id or "?"

    @property
    def approval(self) -> str:
        """``always``, ``never`` or the tools that ask, as one line."""
        if isinstance(self.require_approval, str):
            return self.require_approval
        return ", ".join(self.require_approval) or "never"

    def definition(self) -> dict[str, Any]:
        """The session tool, credentials revealed: for the transport only."""
        tool: dict[str, Any] = {"type": "mcp", "server_label": self.label}
        if self.url is not None:
            tool["server_url"] = self.url
        if self.connector_id is not None:
            tool["connector_id"] = self.connector_id
        if self.allowed_tools is not None:
            tool["allowed_tools"] = list(self.allowed_tools)
        tool["require_approval"] = approval_setting(self.require_approval)
        if self.headers:
            tool["headers"] = {name: value.reveal() for name, value in self.headers.items()}
        if self.authorization is not None:
            tool["authorization"] = self.authorization.reveal()
        if self.description:
            tool["server_description"] = self.description
        return tool


def approval_setting(require: str | tuple[str, ...]) -> Any:
    """``require_approval`` as the service takes it: ``"always"``, ``"never"`` or a filter
    naming the tools that ask (the others do not)."""
    if isinstance(require, str):
        return require
    return {"always": {"tool_names": list(require)}}


def remote_server(
    label: str,
    *,
    url: str | None,
    connector_id: str | None,
    allowed_tools: Collection[str] | None,
    require_approval: bool | str | Collection[str],
    headers: Mapping[str, str] | None,
    authorization: str | None,
    description: str | None = None,
) -> RemoteMCPServer:
    """A checked :class:`RemoteMCPServer`; a mistake is a one-line ConfigurationError."""
    check_label(label)
    if (url is None) == (connector_id is None):
        raise ConfigurationError(
            "a remote MCP server takes url=... or connector_id=..., one (see %realtime help)"
        )
    if url is not None and (
        not isinstance(url, str) or not url.startswith(("http://", "https://"))
    ):
        raise ConfigurationError(f"url= must be an http:// or https:// URL, not {url!r}")
    if connector_id is not None and connector_id not in CONNECTORS:
        raise ConfigurationError(
            f"connector_id={connector_id!r} is not one of {', '.join(CONNECTORS)}"
        )
    allowed = _names(allowed_tools, "allowed_tools")
    require: str | tuple[str, ...]
    if require_approval is True or require_approval is False:
        require = "always" if require_approval else "never"
    elif isinstance(require_approval, str):
        if require_approval not in ("always", "never"):
            raise ConfigurationError(
                "require_approval= takes 'always', 'never' or a list of tool names, "
                f"not {require_approval!r}"
            )
        require = require_approval
    else:
        require = _names(require_approval, "require_approval") or ()
    secrets: dict[str, Secret] = {}
    for name, value in (headers or {}).items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ConfigurationError("headers= takes header names and values as strings")
        secrets[name] = _secret(value)
    if authorization is not None and not isinstance(authorization, str):
        raise ConfigurationError("authorization= takes the OAuth access token, a string")
    return RemoteMCPServer(
        label=label,
        url=url,
        connector_id=connector_id,
        allowed_tools=allowed,
        require_approval=require,
        headers=secrets,
        authorization=None if authorization is None else _secret(authorization),
        description=description,
    )


def _secret(value: str) -> Secret:
    """``value`` kept hidden; a ``Bearer TOKEN`` value's token is scrubbed on its own too."""
    words = value.split()
    if len(words) > 1:
        register_secret(words[-1])
    secret = Secret.wrap(value)
    assert secret is not None
    return secret


def _names(names: Collection[str] | None, option: str) -> tuple[str, ...] | None:
    if names is None:
        return None
    if isinstance(names, str):
        raise ConfigurationError(f"{option}= takes a list of tool names, e.g. ['get_time']")
    checked = tuple(names)
    if not all(isinstance(name, str) and name for name in checked):
        raise ConfigurationError(f"{option}= takes tool names, as non-empty strings")
    return checked
