"""MCP servers of one Session: their tools offered as ordinary function tools.

``session.mcp`` (an :class:`MCPServers`) holds the servers added with
``session.add_mcp_server``. Each server's tools are registered on the Session's
:class:`~rt_notebook.tools.Toolbox` under the names :func:`.naming.exposed_name` gives, so
the runner calls them like any other tool (approval, timeout, rendering) whatever the
backend. A server starts when it is added (its tools must be known before the model can
call them), starts again on the next call after it crashed, and stops with the Session
or :meth:`MCPServers.remove`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...errors import ConfigurationError, register_secret
from ..schema import DEFAULT_TIMEOUT, Tool, ToolArgumentsError
from .connection import MCPConnection, ServerSpec, require_sdk
from .naming import check_label, exposed_name
from .remote import RemoteMCPServer, remote_server

if TYPE_CHECKING:
    from mcp import types as mcp_types

    from ...client.responses import ItemSnapshot
    from ...client.session import Session
    from .. import Toolbox

__all__ = ["DEFAULT_START_TIMEOUT", "MCPServer", "MCPServers", "MCPTool", "mcp_servers"]

log = logging.getLogger("rt_notebook")

DEFAULT_START_TIMEOUT = 20.0  # seconds a server has to answer initialize and list its tools
# Statuses of a finished listing.
_SETTLED = ("completed", "failed")


@dataclass(frozen=True, eq=False)
class MCPTool(Tool):
    """A tool of an MCP server: its arguments are checked against the server's JSON
    schema (not a Python signature) and passed on as they are."""

    server: str = ""  # the label of the server that runs it
    remote_name: str = ""  # the tool's name on that server

    def validate(self, arguments: str | Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments or "{}")
            except json.JSONDecodeError as exc:
                raise ToolArgumentsError(f"arguments are not valid JSON: {exc}") from None
        if not isinstance(arguments, Mapping):
            raise ToolArgumentsError("arguments must be a JSON object")
        import jsonschema  # type: ignore[import-untyped]  # a dependency of the mcp SDK

        validator = jsonschema.validators.validator_for(self.parameters)(self.parameters)
        problems = [
            f"{'.'.join(str(p) for p in error.absolute_path) or 'arguments'}: {error.message}"
            for error in validator.iter_errors(dict(arguments))
        ]
        if problems:
            raise ToolArgumentsError("invalid arguments: " + "; ".join(problems[:5]))
        return [], dict(arguments)

    def call_validated(self, args: list[Any], kwargs: dict[str, Any]) -> Any:
        # Argument names need not be Python identifiers: pass the object whole.
        return self.function(kwargs)


class MCPServer:
    """One MCP server of a Session: how to reach it, which tools it offers, its connection."""

    def __init__(
        self,
        spec: ServerSpec,
        *,
        allowed_tools: Collection[str] | None,
        approval: bool | Collection[str],
        timeout: float,
        start_timeout: float,
    ) -> None:
        self.spec = spec
        self.label = spec.label
        self.allowed_tools = None if allowed_tools is None else frozenset(allowed_tools)
        self.approval = approval
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.tools: dict[str, str] = {}  # exposed name -> the server's tool name
        self.skipped: dict[str, str] = {}  # the server's tool name -> why it is not offered
        # Told of a new listing (list_changed, or a restart): set by MCPServers.
        self.on_tools_changed: Callable[[list[mcp_types.Tool]], None] | None = None
        self._connection: MCPConnection | None = None
        self._lock = threading.Lock()  # one start at a time

    def __repr__(self) -> str:
        return f"<MCPServer {self.label!r} {self.spec.describe()!r} tools={list(self.tools)}>"

    @property
    def running(self) -> bool:
        """Whether the server is connected now."""
        connection = self._connection
        return connection is not None and connection.alive

    def needs_approval(self, remote_name: str) -> bool:
        """Whether calls to the server's tool ``remote_name`` ask the user first."""
        if isinstance(self.approval, bool):
            return self.approval
        return remote_name in self.approval

    def connect(self) -> list[mcp_types.Tool]:
        """Start the server unless it runs; return its tools when it was (re)started."""
        with self._lock:
            if self.running:
                return []
            self._connection = MCPConnection(self.spec, self.on_tools_changed)
            return self._connection.start(self.start_timeout)

    def call(self, remote_name: str, arguments: Mapping[str, Any]) -> str:
        """Run one tool call (from a runner worker); start the server again if it stopped."""
        connection = self._connection
        if connection is None or not connection.alive:
            listed = self.connect()
            if listed and self.on_tools_changed is not None:
                self.on_tools_changed(listed)  # it may offer other tools than before
            connection = self._connection
        assert connection is not None
        return connection.call(remote_name, arguments, self.timeout)

    def stop(self) -> None:
        """Stop the server's connection (its process, for stdio)."""
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is not None:
            connection.stop()


class MCPServers(Mapping[str, MCPServer]):
    """The MCP servers of one Session, by label (``session.mcp``). Thread-safe."""

    def __init__(self, toolbox: Toolbox) -> None:
        self._toolbox = toolbox
        self._servers: dict[str, MCPServer] = {}
        # Servers the service runs (their tool is in the session's tools), by label.
        self._remote: dict[str, RemoteMCPServer] = {}
        self._lock = threading.RLock()
        toolbox.hosted = self._hosted_definitions

    @property
    def remote(self) -> dict[str, RemoteMCPServer]:
        """The remote MCP servers the service runs, by label (a copy)."""
        with self._lock:
            return dict(self._remote)

    def add_server(
        self,
        label: str,
        *,
        command: Sequence[str] | str | None = None,
        url: str | None = None,
        connector_id: str | None = None,
        via: str | None = None,
        allowed_tools: Collection[str] | None = None,
        require_approval: bool | str | Collection[str] | None = None,
        approval: bool | Collection[str] | None = None,
        headers: Mapping[str, str] | None = None,
        authorization: str | None = None,
        **local: Any,
    ) -> MCPServer | RemoteMCPServer:
        """``command=`` or ``url=..., via="kernel"``: a local server (:meth:`add`); else a
        remote one the service runs (:meth:`add_remote`)."""
        if approval is not None and require_approval is not None:
            raise ConfigurationError("give approval= or require_approval=, not both")
        if command is not None or via == "kernel":
            if connector_id is not None or authorization is not None:
                raise ConfigurationError(
                    "connector_id= and authorization= are for servers the service runs "
                    "(url=... without via='kernel')"
                )
            asked = approval if require_approval is None else _local_approval(require_approval)
            return self.add(
                label,
                command=command,
                url=url,
                via=via,
                allowed_tools=allowed_tools,
                approval=False if asked is None else asked,
                headers=headers,
                **local,
            )
        if via not in (None, "service"):
            raise ConfigurationError(f"via= takes 'kernel' or 'service', not {via!r}")
        listing_timeout = local.pop("start_timeout", DEFAULT_START_TIMEOUT)
        if local:
            raise ConfigurationError(
                f"{', '.join(sorted(local))}= only apply to local servers "
                "(command=... or via='kernel')"
            )
        asked = require_approval if approval is None else approval
        return self.add_remote(
            label,
            url=url,
            connector_id=connector_id,
            allowed_tools=allowed_tools,
            require_approval="always" if asked is None else asked,
            headers=headers,
            authorization=authorization,
            listing_timeout=listing_timeout,
        )

    def add_remote(
        self,
        label: str,
        *,
        url: str | None = None,
        connector_id: str | None = None,
        allowed_tools: Collection[str] | None = None,
        require_approval: bool | str | Collection[str] = "always",
        headers: Mapping[str, str] | None = None,
        authorization: str | None = None,
        description: str | None = None,
        listing_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> RemoteMCPServer:
        """Offer a remote MCP server the service runs (see ``Session.add_mcp_server``);
        connected, wait up to ``listing_timeout`` s for the service to list its tools."""
        server = remote_server(
            label,
            url=url,
            connector_id=connector_id,
            allowed_tools=allowed_tools,
            require_approval=require_approval,
            headers=headers,
            authorization=authorization,
            description=description,
        )
        session = self._toolbox.session
        before = {item.id for item in self._listings(label)} if session.connected else set()
        with self._lock:
            self._refuse_taken(label)
            self._remote[label] = server
        self._toolbox.hosted_changed()
        if session.connected and not session.on_io_thread():
            self._await_listing(label, before, listing_timeout)
        return server

    def asks_approval(self) -> bool:
        """Whether a remote server may send approval requests (a view must be ready)."""
        with self._lock:
            return any(server.approval != "never" for server in self._remote.values())

    def listing(self, label: str) -> ItemSnapshot | None:
        """The latest ``mcp_list_tools`` item of the remote server ``label`` (its tools, its
        status), or ``None`` before the service listed it."""
        listings = self._listings(label)
        return listings[-1] if listings else None

    def _listings(self, label: str) -> list[ItemSnapshot]:
        return [
            item
            for item in self._toolbox.session.items
            if item.type == "mcp_list_tools" and item.server_label == label
        ]

    def _await_listing(self, label: str, before: set[str], timeout: float) -> None:
        """Until the service listed the new server's tools (or said it could not), so that
        the next question can use them; a slow listing is left to finish by itself."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            latest = self.listing(label)
            if latest is not None and latest.id not in before and latest.status in _SETTLED:
                return
            time.sleep(0.05)  # items change on the I/O thread; a listing takes a round trip
        log.warning("rt_notebook: MCP server %r: its tools are not listed yet", label)

    def _hosted_definitions(self) -> list[dict[str, Any]]:
        with self._lock:
            servers = list(self._remote.values())
        return [server.definition() for server in servers]

    def _refuse_taken(self, label: str) -> None:
        if label in self._servers or label in self._remote:
            raise ConfigurationError(
                f"an MCP server labelled {label!r} exists: remove it first "
                f"(session.remove_mcp_server({label!r}) or %realtime mcp remove {label})"
            )

    def __getitem__(self, label: str) -> MCPServer:
        with self._lock:
            return self._servers[label]

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._servers))

    def __len__(self) -> int:
        with self._lock:
            return len(self._servers)

    def __repr__(self) -> str:
        return f"<MCPServers {list(self)}>"

    def add(
        self,
        label: str,
        *,
        command: Sequence[str] | str | None = None,
        url: str | None = None,
        via: str | None = None,
        env: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        cwd: str | None = None,
        allowed_tools: Collection[str] | None = None,
        approval: bool | Collection[str] = False,
        timeout: float = DEFAULT_TIMEOUT,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> MCPServer:
        """Start an MCP server and offer its tools (see ``Session.add_mcp_server``)."""
        spec = _spec(label, command=command, url=url, via=via, env=env, headers=headers, cwd=cwd)
        if isinstance(approval, str):
            raise ConfigurationError("approval= takes True, False or a list of tool names")
        if not timeout > 0 or not start_timeout > 0:
            raise ConfigurationError("timeout= and start_timeout= must be above 0 seconds")
        require_sdk()
        with self._lock:
            self._refuse_taken(label)
        server = MCPServer(
            spec,
            allowed_tools=allowed_tools,
            approval=approval if isinstance(approval, bool) else frozenset(approval),
            timeout=timeout,
            start_timeout=start_timeout,
        )
        server.on_tools_changed = lambda listed: self._refresh(server, listed)
        tools = server.connect()
        with self._lock:
            if label in self._servers or label in self._remote:  # added meanwhile
                server.stop()
                raise ConfigurationError(f"an MCP server labelled {label!r} exists")
            try:
                self._install(server, tools)
            except ConfigurationError:
                server.stop()
                raise
            self._servers[label] = server
        return server

    def remove(self, label: str) -> None:
        """Stop the server labelled ``label`` and withdraw its tools."""
        with self._lock:
            remote = self._remote.pop(label, None)
            server = None if remote is not None else self._servers.pop(label, None)
            if remote is None and server is None:
                known = ", ".join([*self._servers, *self._remote]) or "none"
                raise ConfigurationError(f"no MCP server labelled {label!r} (added: {known})")
            names = [] if server is None else list(server.tools)
            if server is not None:
                server.tools = {}
        if server is None:
            self._toolbox.hosted_changed()  # the service stops offering its tools
            return
        server.stop()
        self._toolbox.registry.replace(names, ())

    def stop_all(self) -> None:
        """Stop every server (they start again on their next call); tools stay offered."""
        with self._lock:
            servers = list(self._servers.values())
        for server in servers:
            server.stop()

    # Internals ---------------------------------------------------------------------

    def _install(self, server: MCPServer, listed: Sequence[mcp_types.Tool]) -> None:
        """Register ``server``'s tools (replacing its earlier ones); refuse a name clash."""
        wanted: dict[str, MCPTool] = {}
        server.skipped = {}
        for remote in listed:
            if server.allowed_tools is not None and remote.name not in server.allowed_tools:
                continue
            problem = _schema_problem(remote.input_schema)
            if problem is not None:
                server.skipped[remote.name] = problem
                log.warning(
                    "rt_notebook: MCP server %r: tool %r not offered: %s",
                    server.label,
                    remote.name,
                    problem,
                )
                continue
            name = exposed_name(server.label, remote.name)
            if name in wanted:
                raise ConfigurationError(
                    f"MCP server {server.label!r}: tools {wanted[name].remote_name!r} and "
                    f"{remote.name!r} would both be offered as {name!r}"
                )
            wanted[name] = _tool(server, name, remote)
        own = set(server.tools)
        for name in wanted:
            for other in self._servers.values():
                if other is not server and name in other.tools:
                    raise ConfigurationError(
                        f"MCP tool name clash: {name!r} is offered by MCP servers "
                        f"{other.label!r} and {server.label!r} (choose another label)"
                    )
            if name not in own and name in self._toolbox.registry:
                raise ConfigurationError(
                    f"MCP tool name clash: {name!r} (server {server.label!r}) is already a "
                    "registered tool"
                )
        server.tools = {name: tool.remote_name for name, tool in wanted.items()}
        self._toolbox.registry.replace(own - set(wanted), wanted.values())

    def _refresh(self, server: MCPServer, listed: Sequence[mcp_types.Tool]) -> None:
        """The server said its tools changed: offer the new list (on a thread of its own)."""
        with self._lock:
            if self._servers.get(server.label) is not server:
                return  # removed meanwhile
            try:
                self._install(server, listed)
            except ConfigurationError as exc:
                log.warning(
                    "rt_notebook: MCP server %r: new tool list refused: %s", server.label, exc
                )


def _spec(
    label: str,
    *,
    command: Sequence[str] | str | None,
    url: str | None,
    via: str | None,
    env: Mapping[str, str] | None,
    headers: Mapping[str, str] | None,
    cwd: str | None,
) -> ServerSpec:
    check_label(label)
    if (command is None) == (url is None):
        raise ConfigurationError("add_mcp_server takes command=[...] (stdio) or url=... , one")
    if url is not None:
        if via != "kernel":
            raise ConfigurationError(
                "url= MCP servers are connected from the kernel only with via='kernel' "
                "(the service running remote MCP servers is not supported yet)"
            )
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"url= must be an http:// or https:// URL, not {url!r}")
        if env:
            raise ConfigurationError("env= is for command= servers; a url= server takes headers=")
    else:
        if via not in (None, "kernel"):
            raise ConfigurationError(f"via= takes 'kernel', not {via!r}")
        if headers:
            raise ConfigurationError("headers= is for url= servers; a command= server takes env=")
        if isinstance(command, str):
            raise ConfigurationError(
                "command= takes a list of words, e.g. ['python', 'server.py'] "
                "(or use %realtime mcp add LABEL --command 'python server.py')"
            )
        command = list(command or [])
        if not command or not all(isinstance(word, str) and word for word in command):
            raise ConfigurationError("command= needs the program and its arguments, as strings")
    for secret in [*(env or {}).values(), *(headers or {}).values()]:
        register_secret(secret)  # from here on scrubbed from every message that leaves
        register_secret(secret.split()[-1] if secret.split() else None)  # "Bearer TOKEN"
    return ServerSpec(
        label=label,
        command=tuple(command or ()),
        url=url,
        env=dict(env or {}),
        headers=dict(headers or {}),
        cwd=cwd,
    )


def _local_approval(require: bool | str | Collection[str]) -> bool | Collection[str]:
    """``require_approval`` (the service's words) as a local server's ``approval``."""
    if isinstance(require, str):
        if require not in ("always", "never"):
            raise ConfigurationError(
                f"require_approval= takes 'always', 'never' or tool names, not {require!r}"
            )
        return require == "always"
    return require


def _schema_problem(schema: Any) -> str | None:
    """Why ``schema`` cannot describe a function's arguments, or ``None``."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return "its input schema is not a JSON schema of type object"
    import jsonschema  # a dependency of the mcp SDK

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        return f"its input schema is invalid: {exc.message}"[:200]
    return None


def _tool(server: MCPServer, name: str, remote: mcp_types.Tool) -> MCPTool:
    remote_name = remote.name
    parameters = dict(remote.input_schema)
    parameters.setdefault("properties", {})
    parameters.pop("title", None)

    def call(arguments: Mapping[str, Any]) -> str:
        return server.call(remote_name, arguments)

    description = remote.description or remote.title or ""
    return MCPTool(
        name=name,
        description=f"{description} (tool {remote_name!r} of MCP server {server.label!r})".strip(),
        function=call,
        parameters=parameters,
        approval=server.needs_approval(remote_name),
        timeout=server.timeout,
        server=server.label,
        remote_name=remote_name,
    )


def mcp_servers(session: Session) -> MCPServers:
    """``session.mcp`` as the :class:`MCPServers` it is (the Session, a layer below, knows
    it only by the interface it needs: ``client.tool_host.McpHost``)."""
    servers = session.mcp
    if not isinstance(servers, MCPServers):
        raise TypeError(f"session.mcp is a {type(servers).__name__}, not MCPServers")
    return servers
