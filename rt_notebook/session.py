"""I/O layer: the Session, one Realtime conversation shared by cells, panels and code.

A :class:`Session` is a thin, thread-safe front of a sans-I/O
:class:`~rt_notebook.protocol.client.ClientCore` that a driver (:mod:`rt_notebook._driver`)
runs on the process-wide I/O thread with the ``openai`` SDK as transport. Every public
method may be called from any thread: it hands its request to the I/O thread and, where it
returns something, waits for the acknowledgement the core matched to it.

What the core guarantees, the Session inherits: turns (the items they add plus their
response) run in order, so each answer belongs to its own question; server errors fail the
request that caused them; a dropped or expiring connection is reopened with backoff and the
conversation restored on it (same item ids), before anything else is sent.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._driver import Driver
from ._ioloop import IOThread
from ._items import ItemWriter, item_request, message_with_images
from ._reading import ConversationReader
from ._voice_io import VoiceInput
from .errors import ConfigurationError, RealtimeConnectionError, RealtimeError
from .protocol import payloads
from .protocol.events import Dialect
from .protocol.sendable import check_sendable
from .protocol.turns import Request, State, Timing, Turn, TurnState
from .redaction import Secret, scrub_data
from .responses import ResponseHandle, SessionStatus
from .transport import Endpoint, Transport, resolve_endpoint

if TYPE_CHECKING:
    from .bridge import SessionConnection
    from .mcp_servers import MCPServer, MCPServers
    from .protocol.conversation import Conversation
    from .resume import ResumeReport
    from .mcp_servers.remote import RemoteMCPServer
    from .tools import Tool, Toolbox

__all__ = ["Session", "SessionStatus", "Timing", "check_settings", "connect", "get_session"]

log = logging.getLogger("rt_notebook")


class Session(ConversationReader, ItemWriter, VoiceInput):
    """One Realtime conversation, kept across reconnects. Create with :func:`connect`
    (one default Session per kernel, others by name) or directly; ``timing`` sets the
    give-up timers, backoff and renewal (:class:`~rt_notebook.protocol.turns.Timing`)."""

    def __init__(
        self,
        *,
        name: str = "default",
        model: str | None = None,
        api_key: str | Secret | None = None,
        base_url: str | None = None,
        websocket_base_url: str | None = None,
        dialect: str | Dialect = Dialect.GA,
        azure_endpoint: str | None = None,
        api_version: str | None = None,
        offline: bool | None = None,
        chat_base_url: str | None = None,
        chat_model: str | None = None,
        instructions: str | None = None,
        modalities: Sequence[str] = ("text",),
        voice: str | None = None,
        settings: Mapping[str, Any] | None = None,
        timing: Timing | None = None,
    ) -> None:
        # First: from here on no frame shows the key (a verbose traceback prints them).
        api_key = Secret.wrap(api_key)
        self.name = name
        # A fingerprint of the keywords connect() created this Session with (never the key).
        self.options: dict[str, Any] = {}
        endpoint, key = resolve_endpoint(
            model=model,
            api_key=api_key,
            base_url=base_url,
            websocket_base_url=websocket_base_url,
            dialect=dialect,
            azure_endpoint=azure_endpoint,
            api_version=api_version,
            offline=offline,
            chat_base_url=chat_base_url,
            chat_model=chat_model,
        )
        self.endpoint: Endpoint = endpoint
        self._io = IOThread.get()
        self._driver = Driver(self, Transport(endpoint, key), timing)
        self._voice_setup()
        # What connect() asks for on a fresh connection (the settings the server accepted
        # since, kept in the core, go over them): checked now, before anything is sent.
        self._connect_with: dict[str, Any] = {
            "instructions": instructions,
            "modalities": list(modalities),
            "voice": voice,
            **dict(settings or {}),
        }
        self._session_body(self._connect_with)
        from .tools import Toolbox  # pydantic-heavy: loaded with the first Session

        # Registered function tools and the runner that answers the model's calls to them.
        self.tools: Toolbox = Toolbox(self)
        # Local MCP servers whose tools are offered through self.tools: made on first use.
        self._mcp: MCPServers | None = None
        self._mcp_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"<rt_notebook.Session {self.name!r} {self.status.describe()}: "
            f"{self.endpoint.describe()}>"
        )

    # The connection -----------------------------------------------------------------

    @property
    def dialect(self) -> Dialect:
        """The dialect spoken on this connection."""
        return self.endpoint.dialect

    @property
    def model(self) -> str:
        """The model (or Azure deployment) this Session asked for."""
        return self.endpoint.model

    @property
    def connected(self) -> bool:
        """Ready, or reconnecting on its own (requests wait for the restore)."""
        return self._driver.core.state in (State.READY, State.RECONNECTING)

    @connected.setter
    def connected(self, value: bool) -> None:  # tests that feed events by hand
        self._driver.core.state = State.READY if value else State.CLOSED

    @property
    def status(self) -> SessionStatus:
        """The connection's state, reconnect attempt, restore count and last renewal."""
        core = self._driver.core
        return SessionStatus(
            core.state.value, core.attempt, core.restored, core.renewed_at, core.reason
        )

    @property
    def settings(self) -> dict[str, Any]:
        """The session settings the server accepted (instructions, modalities, voice, tools,
        reasoning_effort, truncation, turn_detection, …): what a reconnect restores. An
        update is here once ``session.updated`` acknowledges it, never before."""
        with self._driver.lock:
            accepted = self._driver.core.settings.accepted()
        return dict(scrub_data(payloads.settings_view(self.dialect, accepted)))  # MCP headers

    @property
    def pending_settings(self) -> list[dict[str, Any]]:
        """The updates sent or queued and not acknowledged yet, oldest first."""
        with self._driver.lock:
            pending = self._driver.core.settings.pending()
        return [payloads.settings_view(self.dialect, body) for body in pending]

    @property
    def settings_lost(self) -> str | None:
        """Why settings were lost, when a new connection refused the ones it restored
        (they are the server's defaults since); ``None`` otherwise."""
        with self._driver.lock:
            lost = self._driver.core.settings.lost
        return None if lost is None else lost.describe()

    def on_io_thread(self) -> bool:
        """Whether the caller runs on the I/O thread (where blocking calls are refused)."""
        return self._io.in_thread()

    def connect(self, timeout: float = 30.0) -> Session:
        """Open the connection, send the settings, wait until ready; no-op when ready.

        Concurrent calls share one connection; one that times out or fails leaves no
        socket and no task behind.
        """
        self._refuse_on_io_thread("connect")
        if self._driver.core.state is State.READY:
            return self
        future = self._io.call(self._driver.start, self._connect_settings()).result()
        try:
            future.result(timeout)
        except concurrent.futures.TimeoutError:
            why = f"no session.created from {self.endpoint.describe()} within {timeout} s"
            self._io.call(self._driver.give_up_waiting, future, why).result()
            raise RealtimeConnectionError(why) from None
        return self

    def move(
        self,
        *,
        websocket_base_url: str | None = None,
        base_url: str | None = None,
        api_key: str | Secret | None = None,
        timeout: float = 30.0,
    ) -> Session:
        """Carry this conversation to another endpoint (a server back on another port, or
        with a new token): a new connection there, the conversation and accepted settings
        restored on it, as after a drop (an answer under way is asked again). Returns once
        restored; if the new endpoint cannot be reached, raises
        :class:`RealtimeConnectionError` and keeps the conversation for another try.
        The model and dialect stay; ``api_key`` is the new endpoint's (``None``: from the
        environment, or none needed)."""
        # First: from here on no frame shows the key (a verbose traceback prints them).
        api_key = Secret.wrap(api_key)
        self._refuse_on_io_thread("move")
        if websocket_base_url is None and base_url is None and api_key is None:
            raise ConfigurationError("move() needs websocket_base_url, base_url or api_key")
        transport = Transport(
            *resolve_endpoint(
                model=self.model,
                api_key=api_key,
                base_url=base_url,
                websocket_base_url=websocket_base_url,
                dialect=self.dialect,
            )
        )
        endpoint = self.endpoint = transport.endpoint
        future = self._io.call(self._driver.move, transport).result()
        try:
            future.result(timeout)
        except concurrent.futures.TimeoutError:
            why = f"no session.created from {endpoint.describe()} within {timeout} s"
            self._io.call(self._driver.give_up_waiting, future, why).result()
            raise RealtimeConnectionError(why) from None
        return self

    def restore(self, conversation: Conversation, timeout: float = 30.0) -> Session:
        """Put ``conversation`` in place of this Session's and restore it on a new
        connection with the accepted settings, through the restore reconnects use (what
        :meth:`resume` does with a saved one). Returns once restored; raises
        :class:`RealtimeConnectionError` if the server cannot be reached."""
        self._refuse_on_io_thread("restore")
        future = self._io.call(self._driver.restore, conversation, "resumed").result()
        try:
            future.result(timeout)
        except concurrent.futures.TimeoutError:
            why = f"the resumed conversation was not restored within {timeout} s"
            self._io.call(self._driver.give_up_waiting, future, why).result()
            raise RealtimeConnectionError(why) from None
        return self

    def resume(
        self,
        path: str | os.PathLike[str],
        *,
        mode: str | None = None,
        namespace: Mapping[str, Any] | None = None,
    ) -> ResumeReport:
        """Rebuild a saved conversation in this Session without asking the model anything:
        a notebook's ``%%realtime`` answers, a recording (``.jsonl``) or a chat panel's
        export (``.json`` or ``.ipynb``). ``mode``: ``"replace"`` or ``"append"``, needed
        when this Session has items. See :mod:`rt_notebook.resume`."""
        from .resume import resume

        return resume(self, path, mode=mode, namespace=namespace)

    def close(self) -> None:
        """Close the connection; pending requests fail with :class:`RealtimeConnectionError`.

        A later :meth:`connect` starts a fresh, empty conversation.
        """
        self._refuse_on_io_thread("close")
        self._io.call(self._driver.close).result(10)
        if self._mcp is not None:
            self._mcp.stop_all()  # they start again on their next call

    def renew(self) -> None:
        """Move the conversation to a new connection now (it happens by itself before
        the server's time limit)."""
        self._io.call(self._with_flush, self._driver.core.renew, time.time()).result()

    def update_session(
        self,
        *,
        instructions: str | None = None,
        modalities: Sequence[str] | None = None,
        voice: str | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        reasoning_effort: str | None = None,
        truncation: str | dict[str, Any] | None = None,
        noise_reduction: str | dict[str, Any] | None = None,
        turn_detection: str | dict[str, Any] | None = None,
        timeout: float = 30.0,
        **fields: Any,
    ) -> dict[str, Any]:
        """Change session settings; wait for the server; return the session it confirms.

        Besides the keywords above (``noise_reduction`` and ``turn_detection`` take
        ``"none"`` for off), ``fields`` are any other session field under its protocol name
        (``parallel_tool_calls=True``, ``max_output_tokens=500``, ``tracing="auto"``,
        ``include=[...]``, ``audio={...}``). Everything is checked against the ``openai``
        SDK's session type first: an unknown field or a bad value raises
        :class:`~rt_notebook.errors.ConfigurationError` and nothing is sent. The update is
        :attr:`pending_settings` until the server accepts it; only then is it part of
        :attr:`settings` and of what a reconnect restores. A refusal raises
        :class:`~rt_notebook.errors.ServerError` with the server's message and leaves the
        settings as they were.
        """
        changes: dict[str, Any] = {
            "instructions": instructions,
            "modalities": list(modalities) if modalities is not None else None,
            "voice": voice,
            "tools": tools,
            "tool_choice": tool_choice,
            "reasoning_effort": reasoning_effort,
            "truncation": truncation,
            "noise_reduction": noise_reduction,
            "turn_detection": turn_detection,
            **fields,
        }
        body = self._session_body({k: v for k, v in changes.items() if v is not None})
        if not body:
            raise ConfigurationError("update_session() was given no setting to change")
        request = Request("update", {"type": "session.update", "session": body})
        result = self._wait(request, timeout, self._driver.core.request, time.time())
        return dict(result)

    # Function tools -------------------------------------------------------------------

    def tool(self, function: Callable[..., Any] | None = None, /, **options: Any) -> Any:
        """Decorator: offer a function to the model in this Session (see :mod:`.tools`).

        ``@session.tool`` or ``@session.tool(approval=True, timeout=10)``.
        """
        return self.tools.tool(function, **options)

    @property
    def mcp(self) -> MCPServers:
        """The local MCP servers added with :meth:`add_mcp_server`, by label."""
        with self._mcp_lock:
            if self._mcp is None:
                from .mcp_servers import MCPServers  # the mcp SDK loads with the first server

                self._mcp = MCPServers(self.tools)
            return self._mcp

    def add_mcp_server(
        self,
        label: str,
        *,
        command: Sequence[str] | None = None,
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
        """Offer an MCP server's tools to the model.

        ``url=...`` (or ``connector_id=...``): a remote server the service runs itself
        (the embedded server too, offline): its ``{"type": "mcp"}`` tool joins the session's
        tools, and its listings, calls and approval requests show where the answer does.
        ``require_approval`` is ``"always"`` (the default), ``"never"`` or the tools that
        ask; ``headers`` and ``authorization`` (an OAuth token) are credentials, never
        shown or saved.

        ``command=["python", "server.py"]`` (stdio) or ``url=..., via="kernel"``
        (Streamable HTTP): a local server the kernel connects to with the ``mcp`` SDK
        (``pip install 'rt-notebook[mcp]'``); its tool ``TOOL`` is offered as the function
        ``LABEL__TOOL``; ``approval`` asks before every call (``True``) or the named tools';
        ``env``, ``cwd``, ``timeout`` and ``start_timeout`` apply to it (``env`` values are
        secrets).

        ``allowed_tools`` limits which tools are offered, in both.
        """
        return self.mcp.add_server(
            label,
            command=command,
            url=url,
            connector_id=connector_id,
            via=via,
            allowed_tools=allowed_tools,
            require_approval=require_approval,
            approval=approval,
            headers=headers,
            authorization=authorization,
            **local,
        )

    def remove_mcp_server(self, label: str) -> None:
        """Stop the MCP server ``label`` and withdraw its tools."""
        self.mcp.remove(label)

    def register_tool(self, function: Callable[..., Any], **options: Any) -> Tool:
        """Offer ``function`` to the model; a connected Session sends ``session.update``."""
        return self.tools.register(function, **options)

    # Responses ----------------------------------------------------------------------------

    def create_response(
        self,
        *,
        instructions: str | None = None,
        modalities: Sequence[str] | None = None,
        voice: str | None = None,
        tools: Sequence[dict[str, Any] | str | Tool] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        max_output_tokens: int | str | None = None,
        reasoning_effort: str | None = None,
        metadata: dict[str, str] | None = None,
        conversation: str | None = None,
        input: list[dict[str, Any]] | None = None,
        items: Sequence[dict[str, Any]] = (),
        first: bool = False,
    ) -> ResponseHandle:
        """Request a response as a turn (queued behind the running one); return its handle.

        ``items`` are added just before it, as part of the same turn (unsent while it is
        queued). ``first`` puts the turn at the head of the queue (a tool round's
        follow-up). ``conversation="none"`` asks for an out-of-band response that runs at
        once beside the conversation, with ``input`` items (or item references) as context.
        ``tools`` entries may be definitions, registered tool names or Tool objects.
        ``reasoning_effort`` (reasoning models) is checked against the SDK's values.
        """
        handle = self._response_handle(
            instructions=instructions,
            modalities=modalities,
            voice=voice,
            tools=tools,
            tool_choice=tool_choice,
            max_output_tokens=max_output_tokens,
            reasoning_effort=reasoning_effort,
            metadata=metadata,
            conversation=conversation,
            input=input,
            items=items,
        )
        self._ensure_connected()
        self._io.call(self._submit, handle, first).result()
        return handle

    def _response_handle(
        self,
        *,
        instructions: str | None = None,
        modalities: Sequence[str] | None = None,
        voice: str | None = None,
        tools: Sequence[dict[str, Any] | str | Tool] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        max_output_tokens: int | str | None = None,
        reasoning_effort: str | None = None,
        metadata: dict[str, str] | None = None,
        conversation: str | None = None,
        input: list[dict[str, Any]] | None = None,
        items: Sequence[dict[str, Any]] = (),
    ) -> ResponseHandle:
        """The handle of a turn asking for a response (see :meth:`create_response`),
        not submitted yet."""
        out_of_band = conversation == "none"
        tool_schemas = None if tools is None else self.tools.schemas(tools)
        params = payloads.response_settings(
            self.dialect,
            instructions=instructions,
            wanted_modalities=modalities,
            voice=voice,
            tools=tool_schemas,
            tool_choice=tool_choice,
            max_output_tokens=max_output_tokens,
            reasoning_effort=reasoning_effort,
            conversation=conversation,
            input_items=input,
        )
        if reasoning_effort is not None:
            from .protocol.setting_checks import SettingsCheckError, check_response

            try:
                check_response({"reasoning": params["reasoning"]}, self.dialect)
            except SettingsCheckError as exc:
                raise ConfigurationError(str(exc)) from None
        params["metadata"] = dict(metadata or {})
        check_sendable(params, "the response request")
        turn = Turn([item_request(item, None) for item in items], params, out_of_band)
        handle = ResponseHandle(self, turn)
        if not out_of_band:
            # A tool round's follow-up asks for the same as this response did.
            self.tools.track(
                handle,
                {
                    "instructions": instructions,
                    "modalities": modalities,
                    "voice": voice,
                    "tools": tool_schemas,
                    "tool_choice": tool_choice,
                    "max_output_tokens": max_output_tokens,
                    "reasoning_effort": reasoning_effort,
                    "metadata": metadata,
                },
            )
        return handle

    def ask(
        self,
        text: str,
        *,
        role: str = "user",
        images: Sequence[Any] = (),
        image_detail: str | None = None,
        **overrides: Any,
    ) -> ResponseHandle:
        """Ask in one turn: ``text`` as a message, then its response (see
        :meth:`create_response`); returns at once. ``handle.item_ids[0]`` is the message.
        ``images`` (files, Figures, PIL images, arrays, PNG/JPEG bytes) follow the text,
        encoded and scaled down here; ``image_detail``: auto, low or high."""
        item = message_with_images(text, role, self.dialect, images, image_detail)
        return self.create_response(items=[item, *overrides.pop("items", ())], **overrides)

    def cancel(self) -> None:
        """Cancel every queued and running response of this Session."""
        self._io.call(self._with_flush, self._driver.core.cancel_all, time.time()).result()

    def connection(self, *, shape: str = "ga") -> SessionConnection:
        """``async with session.connection() as connection:``: the ``openai`` SDK's
        realtime connection surface on this Session (see :mod:`rt_notebook.bridge`).

        ``shape`` is the dialect the code is written in, whatever this Session speaks:
        ``"ga"`` (default) or ``"beta"`` (classic code: ``modalities``,
        ``response.text.delta``...); calls and events are translated between the two."""
        from .bridge import SessionConnection

        return SessionConnection(self, shape)

    # Internals ------------------------------------------------------------------------

    def _on_raw(self, raw: str | bytes) -> None:
        """Feed one server frame by hand (tests of views)."""
        self._driver.on_frame(raw)

    def _submit(self, handle: ResponseHandle, first: bool) -> None:
        self._driver.handles[handle.request_id] = handle
        turn = handle._turn
        with self._driver.lock:
            self._driver.timelines.begin(turn, time.monotonic())
        self._with_flush(self._driver.core.submit, turn, time.time(), first)
        if turn.state is TurnState.QUEUED:
            with self._driver.lock:
                self._driver.timelines.queued(turn)

    def _cancel_turn(self, turn: Turn) -> None:
        self._io.call(self._with_flush, self._driver.core.cancel, turn, time.time())

    def _abandon_turn(self, turn: Turn) -> None:
        """Finish ``turn`` as cancelled now, confirmed or not (see ``ClientCore.abandon``)."""
        self._io.call(self._with_flush, self._driver.core.abandon, turn, time.time()).result()

    def _with_flush(self, method: Callable[..., None], *args: Any) -> None:
        with self._driver.lock:
            method(*args)
        self._driver.flush()

    def _wait(
        self, request: Request, timeout: float, method: Callable[..., None], *args: Any
    ) -> Any:
        """Hand ``request`` to the core on the I/O thread; block until it is acknowledged."""
        self._refuse_on_io_thread(request.event["type"])
        self._ensure_connected()
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        request.owner = future
        self._io.call(self._with_flush, method, request, *args).result()
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(
                f"no acknowledgement of {request.event['type']} within {timeout} s"
            ) from None

    def _refuse_on_io_thread(self, what: str) -> None:
        if self._io.in_thread():
            raise RealtimeError(
                f"{what} blocks, so it cannot run on the I/O thread (inside a subscriber)"
            )

    def _ensure_connected(self) -> None:
        if self._driver.core.state is State.CLOSED:
            self.connect()

    def _session_body(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """A checked ``session.update`` body for ``config`` (:meth:`update_session`'s
        keywords) in this connection's dialect; refusals are ConfigurationErrors."""
        check_sendable(dict(config), "the session settings")
        tools = config.get("tools")
        if tools is not None and hasattr(self, "tools"):
            # Hand-written definitions plus every registered tool, always as a whole list.
            config = {**config, "tools": self.tools.session_schemas(tools)}
        return check_settings(config, self.dialect)

    def _connect_settings(self) -> dict[str, Any]:
        """What a fresh connection asks for: connect()'s settings, then every setting the
        server accepted since, with the tools registered now."""
        with self._driver.lock:
            accepted = self._driver.core.settings.accepted()
        body = self._session_body(self._connect_with)
        _merge_body(body, accepted)
        if body.get("tools") is not None or len(self.tools.registry) or self.tools.hosted:
            body["tools"] = self.tools.session_schemas(
                self.tools.hand_written(body.get("tools") or [])
            )
        if body and self.dialect is Dialect.GA:
            body["type"] = "realtime"
        return body


# update_session()'s keywords in rt_notebook's vocabulary (the rest are protocol fields).
_NAMED_SETTINGS = frozenset(
    {
        "instructions",
        "modalities",
        "voice",
        "tools",
        "tool_choice",
        "reasoning_effort",
        "truncation",
        "noise_reduction",
        "turn_detection",
        "transcription",
    }
)


def check_settings(config: Mapping[str, Any], dialect: Dialect) -> dict[str, Any]:
    """The ``session.update`` body for ``config`` (:meth:`Session.update_session`'s
    keywords), checked against the ``openai`` SDK's session type: a problem raises
    :class:`~rt_notebook.errors.ConfigurationError` with one line naming what is allowed."""
    from .protocol.setting_checks import SettingsCheckError, check_session

    fields = {k: v for k, v in config.items() if k not in _NAMED_SETTINGS}
    try:
        body = payloads.session_settings(
            dialect,
            instructions=config.get("instructions"),
            wanted_modalities=config.get("modalities"),
            voice=config.get("voice"),
            tools=config.get("tools"),
            tool_choice=config.get("tool_choice"),
            reasoning_effort=config.get("reasoning_effort"),
            truncation=config.get("truncation"),
            noise_reduction=config.get("noise_reduction"),
            turn_detection=config.get("turn_detection"),
            fields=fields,
        )
        if "transcription" in config:
            _merge_body(body, payloads.transcription_settings(dialect, config["transcription"]))
        if body:
            check_session(body, dialect)
    except (SettingsCheckError, ValueError) as exc:
        raise ConfigurationError(str(exc)) from None
    return body


def _merge_body(into: dict[str, Any], more: dict[str, Any]) -> None:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge_body(into[key], value)
        else:
            into[key] = value


from ._registry import connect, get_session  # noqa: E402 - the registry makes Sessions
