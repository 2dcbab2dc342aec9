"""Client layer: the Session, one Realtime conversation shared by cells, panels and code.

A :class:`Session` is a thin, thread-safe front of a sans-I/O
:class:`~rt_notebook.protocol.client.ClientCore` that a driver (:mod:`rt_notebook.client.driver`)
runs on the process-wide I/O thread with the ``openai`` SDK as transport. Every public
method may be called from any thread: it hands its request to the I/O thread and, where it
returns something, waits for the acknowledgement the core matched to it.

What the core guarantees, the Session inherits: turns (the items they add plus their
response) run in order, so each answer belongs to its own question; server errors fail the
request that caused them; a dropped or expiring connection is reopened with backoff and the
conversation restored on it (same item ids), before anything else is sent.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..protocol.events import Dialect, Event
from ..protocol.options import ResponseOptions, ToolLike, Unpack
from ..protocol.turns import State, Timing
from ..redaction import Secret
from .driver import Driver, Subscriber
from .io_thread import IOThread
from .item_writes import ItemWriter
from .link import Link
from .reading import ConversationReader
from .responding import Responder
from .responses import ItemSnapshot, ResponseHandle, SessionStatus
from .settings_keeper import SettingsKeeper, check_settings
from .tool_host import McpHost, SessionTools, ToolOptions, provider
from .transport import Endpoint, Transport, resolve_endpoint
from .voice_input import VoiceInput

if TYPE_CHECKING:
    from ..protocol.conversation import Conversation
    from ..protocol.timeline import Timeline
    from .bridge import SessionConnection
    from .resume import ResumeReport

__all__ = ["Session", "SessionStatus", "Timing", "check_settings"]

log = logging.getLogger("rt_notebook")


class Session:
    """One Realtime conversation, kept across reconnects. Create with :func:`connect`
    (one default Session per kernel, others by name) or directly; ``timing`` sets the
    give-up timers, backoff and renewal (:class:`~rt_notebook.protocol.turns.Timing`).

    A facade: each method hands its call to one of the parts below, which own their
    state (the line to the driver, the reader, the item writer, the responder, voice
    input, the settings, the tools).
    """

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
        # The keywords are spelled out (not **options) so that a misspelt one fails at
        # the call, before any frame holds the key.
        api_key = Secret.wrap(api_key)
        self.name = name
        # A fingerprint of the keywords connect() created this Session with (never the key).
        self.options: dict[str, Any] = {}
        endpoint, key = resolve_endpoint(  # EndpointOptions: a test keeps the names alike
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
        self._io = IOThread.get()
        self._driver = Driver(self, Transport(endpoint, key), timing)

        def connect_settings() -> dict[str, Any]:
            return self._settings.for_connect()  # made below: it waits through the link

        self._link = Link(self._io, self._driver, endpoint, connect_settings)
        self._reader = ConversationReader(self._driver, self._io)
        self._items = ItemWriter(self._link, self._reader)
        # Registered function tools and the runner that answers the model's calls to them
        # (an rt_notebook.tools.Toolbox, from the provider the package installed).
        self._tool_provider = provider()
        self.tools: SessionTools = self._tool_provider.toolbox(self)
        self._responder = Responder(
            lambda turn: ResponseHandle(self, turn), self._link, self._driver, self.tools
        )
        self._voice = VoiceInput(self._link, self._driver, self._responder)
        # What connect() asks for on a fresh connection (the settings the server accepted
        # since, kept in the core, go over them): checked now, before anything is sent.
        connect_with = {
            "instructions": instructions,
            "modalities": list(modalities),
            "voice": voice,
            **dict(settings or {}),
        }
        self._settings = SettingsKeeper(self._link, self._driver, self.tools, connect_with)
        # Local MCP servers whose tools are offered through self.tools: made on first use.
        self._mcp: McpHost | None = None
        self._mcp_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"<rt_notebook.Session {self.name!r} {self.status.describe()}: "
            f"{self.endpoint.describe()}>"
        )

    # The connection -----------------------------------------------------------------

    @property
    def endpoint(self) -> Endpoint:
        """Where this Session connects (:meth:`move` changes it)."""
        return self._link.endpoint

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
        return self._link.state in (State.READY, State.RECONNECTING)

    @connected.setter
    def connected(self, value: bool) -> None:  # tests that feed events by hand
        self._driver.assume_ready(value)

    @property
    def driver(self) -> Driver:
        """The I/O driver of this Session (internal: for its handles and the SDK bridge)."""
        return self._driver

    @property
    def status(self) -> SessionStatus:
        """The connection's state, reconnect attempt, restore count and last renewal."""
        return self._link.status()

    def on_io_thread(self) -> bool:
        """Whether the caller runs on the I/O thread (where blocking calls are refused)."""
        return self._link.in_io_thread()

    def connect(self, timeout: float = 30.0) -> Session:
        """Open the connection, send the settings, wait until ready; no-op when ready.

        Concurrent calls share one connection; one that times out or fails leaves no
        socket and no task behind.
        """
        self._link.connect(timeout)
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
        self._link.move(
            websocket_base_url=websocket_base_url,
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
        )
        return self

    def restore(self, conversation: Conversation, timeout: float = 30.0) -> Session:
        """Put ``conversation`` in place of this Session's and restore it on a new
        connection with the accepted settings, through the restore reconnects use (what
        :meth:`resume` does with a saved one). Returns once restored; raises
        :class:`RealtimeConnectionError` if the server cannot be reached."""
        self._link.restore(conversation, timeout)
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
        when this Session has items. See :mod:`rt_notebook.client.resume`."""
        from .resume import resume

        return resume(self, path, mode=mode, namespace=namespace)

    def close(self) -> None:
        """Close the connection; pending requests fail with :class:`RealtimeConnectionError`.

        A later :meth:`connect` starts a fresh, empty conversation.
        """
        self._link.close()
        if self._mcp is not None:
            self._mcp.stop_all()  # they start again on their next call

    def renew(self) -> None:
        """Move the conversation to a new connection now (it happens by itself before
        the server's time limit)."""
        self._driver.renew().result()

    # Settings ---------------------------------------------------------------------------

    @property
    def settings(self) -> dict[str, Any]:
        """The session settings the server accepted (instructions, modalities, voice, tools,
        reasoning_effort, truncation, turn_detection, …): what a reconnect restores. An
        update is here once ``session.updated`` acknowledges it, never before."""
        return self._settings.accepted()

    @property
    def pending_settings(self) -> list[dict[str, Any]]:
        """The updates sent or queued and not acknowledged yet, oldest first."""
        return self._settings.pending()

    @property
    def settings_lost(self) -> str | None:
        """Why settings were lost, when a new connection refused the ones it restored
        (they are the server's defaults since); ``None`` otherwise."""
        return self._settings.lost()

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
        return self._settings.update(changes, timeout)

    def resend_tools(self, timeout: float = 30.0) -> dict[str, Any]:
        """Send the session's tool list again, now: the hand-written definitions the server
        holds, then every registered tool (registering a tool on a connected Session does
        this); wait for the server and return the session it confirms."""
        return self._settings.resend_tools(timeout)

    # Reading the conversation -------------------------------------------------------------

    @property
    def items(self) -> list[ItemSnapshot]:
        """The conversation's items in server order."""
        return self._reader.items

    def item_ids(self) -> tuple[str, ...]:
        """The ids of the conversation's items in server order (cheap: no item copied)."""
        return self._reader.item_ids()

    def outputs_answering(self, item_ids: Iterable[str]) -> tuple[str, ...]:
        """The ids of the ``function_call_output`` items (in conversation order) that answer
        the function calls among ``item_ids`` (no item copied)."""
        return self._reader.outputs_answering(item_ids)

    @property
    def item_count(self) -> int:
        """How many items the conversation holds."""
        return self._reader.item_count

    def item(self, item_id: str) -> ItemSnapshot | None:
        """One item (in the conversation or out of band), or ``None``."""
        return self._reader.item(item_id)

    def item_index(self, item_id: str) -> int | None:
        """An item's position in the conversation, or ``None``."""
        return self._reader.item_index(item_id)

    def response_text(self, response_id: str) -> str:
        """The text (or transcript) of a response so far."""
        return self._reader.response_text(response_id)

    def response_items(self, response_id: str) -> list[ItemSnapshot]:
        """The output items of a response so far."""
        return self._reader.response_items(response_id)

    def item_audio_bytes(self, item_id: str) -> int:
        """Bytes of output audio (PCM16 24 kHz mono) the mirror keeps for an item."""
        return self._reader.item_audio_bytes(item_id)

    def response_info(self, response_id: str) -> dict[str, Any] | None:
        """Status, usage and metadata of a response, or ``None`` if unknown."""
        return self._reader.response_info(response_id)

    @property
    def active_response_id(self) -> str | None:
        """The in-conversation response now running, if any."""
        return self._reader.active_response_id

    @property
    def pending_responses(self) -> int:
        """Requested responses not yet finished (queued or running)."""
        return self._reader.pending_responses

    @property
    def events(self) -> list[Event]:
        """Recent server events (deltas left out) and protocol errors, oldest first."""
        return self._reader.events

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Every server error received, oldest first."""
        return self._reader.errors

    @property
    def session_config(self) -> dict[str, Any]:
        """The session configuration the server last reported."""
        return self._reader.session_config

    def timeline(self, key: str | None = None) -> Timeline | None:
        """A copy of the events, sent and received, of the last turn, or of the turn a
        request tag, response id or item id names (``None``: unknown or forgotten)."""
        return self._reader.timeline(key)

    def session_timeline(self) -> Timeline:
        """A copy of the recent events that belong to no turn (rate limits, settings,
        responses the server started, errors naming no request)."""
        return self._reader.session_timeline()

    def usages(self) -> list[tuple[str, dict[str, Any]]]:
        """``(response id, usage)`` of every response of the conversation that has one."""
        return self._reader.usages()

    # Observers ------------------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(session, changes)`` on the I/O thread after each server event.

        Deltas that arrive together (read from the socket in one go) come in one call (up
        to 64; the first of them at once, alone), as soon as the reader has taken them;
        every change comes once and in order, and before any response waiting on it
        finishes. Callbacks must be quick (mark something dirty, wake a thread): they run
        on the I/O thread. Returns a function that unsubscribes.
        """
        return self._reader.subscribe(callback)

    def subscribe_audio(
        self, handle: ResponseHandle, callback: Callable[[bytes], None]
    ) -> Callable[[], None]:
        """Call ``callback(pcm)`` with each piece of ``handle``'s output audio (PCM16
        24 kHz mono), in order, starting with any that already arrived; on the I/O thread
        (the catch-up on this one). Must be quick. Returns a function that unsubscribes.
        """
        return self._reader.subscribe_audio(handle, callback)

    def listen(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` on the I/O thread with every server event as received
        (must be quick). Returns a function that stops it."""
        return self._reader.listen(callback)

    def on_server_response(self, callback: Callable[[ResponseHandle], None]) -> Callable[[], None]:
        """Call ``callback(handle)`` for each response the server starts by itself (server
        VAD with ``create_response``), on the I/O thread, before any of its deltas: stream
        it (``for delta in handle``, :meth:`subscribe_audio`), ``handle.cancel()`` it or
        ``handle.truncate(ms)`` it like a turn of your own. Such responses never take a
        queued turn's place. Returns a function that unsubscribes."""
        return self._voice.on_server_response(callback)

    def record(self, path: str | Path, *, raw: bool = False) -> None:
        """Write every frame, sent and received, to ``path`` as JSON lines from now on
        (each with the tag of the turn it belongs to and its monotonic time; see
        :mod:`rt_notebook.client.recording`). Registered keys are replaced by ``***`` unless
        ``raw``: then the frames are kept as they were, keys included (with a warning)."""
        self._reader.record(path, raw=raw)

    def stop_recording(self) -> None:
        """Stop :meth:`record`."""
        self._reader.stop_recording()

    # Items ----------------------------------------------------------------------------------

    def add_message(
        self,
        text: str,
        *,
        role: str = "user",
        after: str | None = None,
        timeout: float = 30.0,
        images: Sequence[Any] = (),
        image_detail: str | None = None,
    ) -> str:
        """Add a message item; return its id once the server has it. While a turn runs,
        it waits its turn. ``after`` places it after that item id (``"root"``: first).
        ``images`` (files, Figures, PIL images, arrays, PNG/JPEG bytes) follow the text
        (see :func:`rt_notebook.client.images.image_part`)."""
        return self._items.add_message(
            text, role=role, after=after, timeout=timeout, images=images, image_detail=image_detail
        )

    def add_function_output(
        self, call_id: str, output: str, *, after: str | None = None, timeout: float = 30.0
    ) -> str:
        """Add a ``function_call_output`` item for ``call_id``; return its id."""
        return self._items.add_function_output(call_id, output, after=after, timeout=timeout)

    def add_item(
        self,
        item: dict[str, Any],
        *,
        after: str | None = None,
        timeout: float = 30.0,
        first: bool = False,
    ) -> str:
        """Add any conversation item (API shape); return its id once the server has it.
        While a turn runs it waits its turn (``first``: at the head of the queue)."""
        return self._items.add_item(item, after=after, timeout=timeout, first=first)

    def delete_item(self, item_id: str, *, timeout: float = 30.0) -> None:
        """Delete an item from the conversation."""
        self._items.delete_item(item_id, timeout=timeout)

    def retrieve_item(self, item_id: str, *, timeout: float = 30.0) -> ItemSnapshot:
        """Ask the server for an item's full state; return the refreshed snapshot."""
        return self._items.retrieve_item(item_id, timeout=timeout)

    def truncate_item(
        self, item_id: str, *, audio_end_ms: int, content_index: int = 0, timeout: float = 30.0
    ) -> None:
        """Truncate an assistant audio item so the server forgets audio never heard."""
        self._items.truncate_item(
            item_id, audio_end_ms=audio_end_ms, content_index=content_index, timeout=timeout
        )

    # Function tools -------------------------------------------------------------------

    def tool(
        self, function: Callable[..., Any] | None = None, /, **options: Unpack[ToolOptions]
    ) -> Any:
        """Decorator: offer a function to the model in this Session (see :mod:`.tools`).

        ``@session.tool`` or ``@session.tool(approval=True, timeout=10)``.
        """
        return self.tools.tool(function, **options)

    def register_tool(
        self, function: Callable[..., Any], **options: Unpack[ToolOptions]
    ) -> ToolLike:
        """Offer ``function`` to the model; a connected Session sends ``session.update``."""
        return self.tools.register(function, **options)

    @property
    def mcp(self) -> McpHost:
        """The MCP servers added with :meth:`add_mcp_server`, by label (an
        ``rt_notebook.tools.mcp_servers.MCPServers``)."""
        with self._mcp_lock:
            if self._mcp is None:
                self._mcp = self._tool_provider.mcp_servers(self.tools)
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
    ) -> Any:
        """Offer an MCP server's tools to the model; returns its handle (an
        ``MCPServer``, or a ``RemoteMCPServer`` for ``url=``/``connector_id=``).

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

    # Responses ----------------------------------------------------------------------------

    def create_response(
        self,
        *,
        items: Sequence[dict[str, Any]] = (),
        first: bool = False,
        **options: Unpack[ResponseOptions],
    ) -> ResponseHandle:
        """Request a response as a turn (queued behind the running one); return its handle.

        ``options`` are the response's own settings
        (:class:`~rt_notebook.protocol.options.ResponseOptions`: ``instructions``,
        ``modalities``, ``voice``, ``tools``, ``tool_choice``, ``max_output_tokens``,
        ``reasoning_effort``, ``metadata``, ``conversation``, ``input``).
        ``items`` are added just before it, as part of the same turn (unsent while it is
        queued). ``first`` puts the turn at the head of the queue (a tool round's
        follow-up). ``conversation="none"`` asks for an out-of-band response that runs at
        once beside the conversation, with ``input`` items (or item references) as context.
        ``tools`` entries may be definitions, registered tool names or Tool objects.
        ``reasoning_effort`` (reasoning models) is checked against the SDK's values.
        """
        return self._responder.create(options, items, first)

    def ask(
        self,
        text: str,
        *,
        role: str = "user",
        images: Sequence[Any] = (),
        image_detail: str | None = None,
        items: Sequence[dict[str, Any]] = (),
        **options: Unpack[ResponseOptions],
    ) -> ResponseHandle:
        """Ask in one turn: ``text`` as a message, then its response (see
        :meth:`create_response`); returns at once. ``handle.item_ids[0]`` is the message.
        ``images`` (files, Figures, PIL images, arrays, PNG/JPEG bytes) follow the text,
        encoded and scaled down here; ``image_detail``: auto, low or high."""
        item = self._responder.message(text, role, images, image_detail)
        return self.create_response(items=[item, *items], **options)

    def cancel(self) -> None:
        """Cancel every queued and running response of this Session."""
        self._responder.cancel_all()

    def connection(self, *, shape: str = "ga") -> SessionConnection:
        """``async with session.connection() as connection:``: the ``openai`` SDK's
        realtime connection surface on this Session (see :mod:`rt_notebook.client.bridge`).

        ``shape`` is the dialect the code is written in, whatever this Session speaks:
        ``"ga"`` (default) or ``"beta"`` (classic code: ``modalities``,
        ``response.text.delta``...); calls and events are translated between the two."""
        from .bridge import SessionConnection

        return SessionConnection(self, shape)

    # Voice input ----------------------------------------------------------------------------

    def append_audio(self, pcm: bytes) -> None:
        """Send ``pcm`` (PCM16, 24 kHz, mono) as ``input_audio_buffer.append``; returns at
        once (fire-and-forget), from any thread, also while a cell runs.

        Large buffers are split so each event stays under the service's 15 MiB limit; the
        chunks of one call are sent together, in order, even when other threads append at
        the same time. An odd byte count keeps the last byte (half a sample) for the next
        call. While the Session is not ready the audio is dropped and counted in
        :attr:`input_audio_dropped` (see :mod:`rt_notebook.client.voice_input`).
        """
        self._voice.append_audio(pcm)

    @property
    def input_audio_dropped(self) -> int:
        """PCM bytes given to :meth:`append_audio` while not ready, never sent."""
        return self._voice.input_audio_dropped

    def clear_audio(self) -> None:
        """Send ``input_audio_buffer.clear`` (and forget a pending half sample)."""
        self._voice.clear_audio()

    def commit_audio(
        self, *, respond: bool = True, timeout: float = 30.0, **options: Unpack[ResponseOptions]
    ) -> ResponseHandle | None:
        """Commit the audio appended so far as a user message; with ``respond``, ask for
        the answer as a turn (queued behind running ones, like :meth:`ask`; ``options``
        as for :meth:`create_response`) and return its handle, whose ``item_ids[0]`` is
        the committed item.

        The commit is sent at once (the buffer keeps filling while turns wait); this call
        blocks until the server acknowledges it (``input_audio_buffer.committed``).
        Raises :class:`~rt_notebook.errors.ServerError` with code
        ``input_audio_buffer_commit_empty`` when the buffer holds under 100 ms of audio
        (nothing is asked then, and the Session goes on).
        """
        return self._voice.commit_audio(respond=respond, timeout=timeout, **options)

    def set_turn_detection(
        self, mode: str | None, *, timeout: float = 30.0, **params: Any
    ) -> dict[str, Any]:
        """Set the session's turn detection: ``"server_vad"`` (the service's default),
        ``"semantic_vad"`` or ``None`` (off: you commit with :meth:`commit_audio`).

        ``params`` are the mode's settings, e.g. ``threshold`` (0-1),
        ``prefix_padding_ms``, ``silence_duration_ms``, ``create_response``,
        ``interrupt_response`` (``server_vad``) or ``eagerness`` (``semantic_vad``); a
        misspelt one raises :class:`~rt_notebook.errors.ConfigurationError` before anything
        is sent. Kept for reconnects; returns the session the server confirms.
        """
        return self._voice.set_turn_detection(mode, timeout=timeout, **params)

    def set_input_transcription(
        self, model: str | None, *, timeout: float = 30.0
    ) -> dict[str, Any]:
        """Transcribe the user's audio with ``model`` (e.g. ``"whisper-1"``,
        ``"gpt-4o-transcribe"``; ``None``: off). The transcript arrives as
        ``conversation.item.input_audio_transcription.completed`` and becomes the user
        item's text. Kept for reconnects; returns the session the server confirms."""
        return self._voice.set_input_transcription(model, timeout=timeout)

    # Hooks of other parts of the I/O side and of tests ------------------------------------

    def _on_raw(self, raw: str | bytes) -> None:
        """Feed one server frame by hand (tests of views)."""
        self._driver.on_frame(raw)
