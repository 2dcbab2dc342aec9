"""Client layer, transport: which Realtime endpoint to use, and opening it with the ``openai``
SDK.

The only module that touches credentials. An :class:`Endpoint` (which holds no key) is
resolved once from arguments and the environment (explicit URL, Azure, the real service,
or, with no key and no URL, the embedded offline server started in this process). A
:class:`Transport` makes the SDK client once, so the key lives only inside that client,
and opens every connection (the first and each reconnect) with it:
``client.realtime.connect`` (GA) or ``client.beta.realtime.connect`` (beta).

The SDK's own reconnect (with its queue that replays pending sends on the new socket) is
left off: it only runs when ``on_reconnecting`` is given, and the Session reconnects
itself, restoring the conversation before anything else is sent.
"""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict, cast

from ..errors import ConfigurationError
from ..protocol.events import Dialect
from ..protocol.options import Unpack
from ..redaction import Secret, install_log_filter, scrub
from .models import DEFAULT_MODEL

if TYPE_CHECKING:
    from ..server import EmbeddedServer

__all__ = [
    "BETA_REFUSED_CODE",
    "DEFAULT_MODEL",
    "ENDPOINT_OPTIONS",
    "Endpoint",
    "EndpointOptions",
    "FrameReader",
    "Transport",
    "beta_refused",
    "resolve_endpoint",
    "shared_http_client",
    "shared_ssl_context",
]

# The process-wide embedded servers (at most one per dialect), started on first offline use.
_embedded: dict[Dialect, EmbeddedServer] = {}
_embedded_lock = threading.Lock()
# What a GA server (OpenAI's since May 2026, the embedded one by default) answers a beta
# client with, in an ``error`` event and as the reason of the close (4000) that follows.
BETA_REFUSED_CODE = "beta_api_shape_disabled"
_USE_GA = 'use the default, dialect="ga" (%config RealtimeMagics.dialect = "ga")'

# Embedded servers relaying to a local model, one per (chat base URL, model).
_chat_servers: dict[tuple[str, str, Dialect], EmbeddedServer] = {}
CHAT_URL_VARIABLE = "RT_NOTEBOOK_CHAT_BASE_URL"
CHAT_MODEL_VARIABLE = "RT_NOTEBOOK_CHAT_MODEL"

# The HTTP clients the SDK clients share (one for secure endpoints, one for plain ones),
# and the TLS context of every wss:// connection (see shared_http_client, shared_ssl_context).
_http_clients: dict[bool, Any] = {}  # secure -> client
_ssl_contexts: list[ssl.SSLContext] = []
_http_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a Session connects (no credentials: those stay in the SDK client)."""

    model: str
    dialect: Dialect
    base_url: str | None = None
    websocket_base_url: str | None = None
    azure_endpoint: str | None = None
    api_version: str | None = None
    offline: bool = False  # the embedded offline server, not a real model
    # "local model NAME via URL": the embedded server relaying to a Chat Completions endpoint.
    local_model: str | None = None

    @property
    def plain(self) -> bool:
        """Whether no URL of this endpoint uses TLS (``http://``, ``ws://``): the SDK's
        HTTP base URL is set and plain too (unset, it is the service's ``https://``)."""
        urls = (self.base_url, self.websocket_base_url, self.azure_endpoint)
        return self.base_url is not None and all(
            url is None or url.startswith(("ws://", "http://")) for url in urls
        )

    @property
    def secure(self) -> bool:
        """Whether the WebSocket URL the SDK derives from this endpoint is ``wss://``."""
        url = self.websocket_base_url or self.base_url or self.azure_endpoint or "https://"
        return not url.startswith(("ws://", "http://"))

    def describe(self) -> str:
        """One line for users: what they are talking to."""
        if self.local_model:
            return f"{self.local_model} (through the embedded server at {self.websocket_base_url})"
        if self.offline:
            return (
                f"the embedded offline server at {self.websocket_base_url} "
                "(deterministic echo responder, not a real model)"
            )
        if self.azure_endpoint:
            return f"Azure OpenAI at {self.azure_endpoint} (deployment {self.model})"
        where = self.websocket_base_url or self.base_url or "api.openai.com"
        return f"{where} (model {self.model}, {self.dialect.value} dialect)"


def beta_refused(*, by_openai: bool = False) -> str:
    """The one line shown when the beta dialect is refused: before connecting to OpenAI
    (``by_openai``), or by a server that answered ``beta_api_shape_disabled``."""
    who = (
        'dialect="beta" cannot reach OpenAI'
        if by_openai
        else f"the server refused the beta dialect ({BETA_REFUSED_CODE})"
    )
    return f"{who}: OpenAI retired the beta Realtime interface in May 2026; {_USE_GA}"


def embedded_server(dialect: Dialect = Dialect.GA) -> EmbeddedServer:
    """The process-wide embedded offline server speaking ``dialect``, started on first use
    (a GA one refuses beta clients, as the service does; a beta Session gets its own).

    ``RT_NOTEBOOK_SERVER_PACE`` (seconds between streamed words) slows or speeds it up.
    """
    from ..server import EmbeddedServer

    with _embedded_lock:
        if dialect not in _embedded:
            pace = os.environ.get("RT_NOTEBOOK_SERVER_PACE")
            try:
                options: dict[str, Any] = {"pace": float(pace)} if pace else {}
                server = EmbeddedServer(dialect=dialect, **options)
            except ValueError:
                raise ConfigurationError(
                    f"RT_NOTEBOOK_SERVER_PACE must be a number of seconds, not {pace!r}"
                ) from None
            server.start()
            _embedded[dialect] = server
        return _embedded[dialect]


def shared_http_client(secure: bool = True) -> Any:
    """The process-wide HTTP client given to every SDK client, made on first use.

    Each SDK client would otherwise make its own, and with it an SSL context that loads
    the CA bundle (about 0.1-0.2 s of CPU, on the first cell's critical path and on each
    new Session). The Realtime connections do not use it (they are WebSocket connections
    made by ``websockets``), and a Session never makes an HTTP request, so one serves all
    Sessions of a kind: for ``secure`` endpoints its TLS context is the one of ``wss://``
    connections (:func:`shared_ssl_context`, one CA bundle for both); for plain ones
    (``http://`` and ``ws://`` only: the embedded server, a local URL) it loads no CA
    bundle at all, so the offline first cell pays for none. Such a context trusts no
    certificate: a TLS connection through it would fail verification, never go unchecked.
    """
    context = shared_ssl_context() if secure else None
    with _http_lock:
        if secure not in _http_clients:
            from openai import DefaultAsyncHttpxClient

            if context is None:
                # No CA (it verifies nothing), and no connection pool either: the HTTP
                # library's transport is never imported (about 20 ms of the offline first
                # cell's CPU) since nothing is ever sent through this client.
                # (_NoHttp has the transport interface the SDK's HTTP client calls; the
                # SDK's HTTP library is its dependency, not ours, so it is not imported.)
                no_http = cast(Any, _NoHttp())
                plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                _http_clients[secure] = DefaultAsyncHttpxClient(verify=plain, transport=no_http)
            else:
                _http_clients[secure] = DefaultAsyncHttpxClient(verify=context)
        return _http_clients[secure]


class _NoHttp:
    """The HTTP transport of plain endpoints' SDK clients: Realtime connections are
    WebSocket connections the SDK opens with ``websockets``, so a request through it is a
    bug, said plainly, not a connection attempt."""

    async def handle_async_request(self, request: Any) -> Any:
        raise RuntimeError(
            f"rt_notebook sends no HTTP request to a plain endpoint (asked: {request.url})"
        )

    async def aclose(self) -> None:
        return None

    async def __aenter__(self) -> _NoHttp:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None


def shared_ssl_context() -> ssl.SSLContext:
    """The process-wide TLS context of ``wss://`` connections (and of the secure HTTP
    client), made on first use.

    ``websockets`` would otherwise make a default context, loading the CA bundle, at every
    connect and reconnect.
    """
    with _http_lock:
        if not _ssl_contexts:
            _ssl_contexts.append(ssl.create_default_context())
        return _ssl_contexts[0]


def chat_server(base_url: str, model: str, dialect: Dialect = Dialect.GA) -> EmbeddedServer:
    """The embedded server answering from ``model`` at the Chat Completions ``base_url``
    in ``dialect`` (one per configuration, started on first use; its key is
    ``RT_NOTEBOOK_CHAT_API_KEY``)."""
    from ..server import ChatResponder, EmbeddedServer

    with _embedded_lock:
        server = _chat_servers.get((base_url, model, dialect))
        if server is None:
            # Pace 0: tokens go out as the model makes them, not on the echo's clock.
            responder = ChatResponder(base_url, model)
            server = EmbeddedServer(responder=responder, dialect=dialect, pace=0).start()
            _chat_servers[(base_url, model, dialect)] = server
        return server


class EndpointOptions(TypedDict, total=False):
    """Where a Session connects: the keywords of ``Session``/``connect()`` that choose the
    endpoint (absent or ``None``: from the environment, see :func:`resolve_endpoint`)."""

    model: str | None
    api_key: str | Secret | None
    base_url: str | None
    websocket_base_url: str | None
    dialect: str | Dialect | None
    azure_endpoint: str | None
    api_version: str | None
    offline: bool | None
    chat_base_url: str | None
    chat_model: str | None


ENDPOINT_OPTIONS: frozenset[str] = frozenset(EndpointOptions.__annotations__)


def resolve_endpoint(**options: Unpack[EndpointOptions]) -> tuple[Endpoint, Secret]:
    """Decide where to connect from the options, then the environment; return the
    endpoint and the key to make the SDK client with.

    Order: ``offline=True`` → embedded server; a local model (``chat_base_url`` and
    ``chat_model``, or ``RT_NOTEBOOK_CHAT_BASE_URL`` and ``RT_NOTEBOOK_CHAT_MODEL`` when no
    other URL is given) → an embedded server relaying to it; an Azure endpoint (argument or
    ``AZURE_OPENAI_ENDPOINT`` with ``AZURE_OPENAI_API_KEY``) → Azure; an explicit URL →
    that server (``OPENAI_BASE_URL`` counts); ``OPENAI_API_KEY`` (or ``api_key``) → the real
    service; otherwise the embedded offline server. The key comes back wrapped in a
    :class:`~rt_notebook.redaction.Secret` (and is one from the start here), so no frame
    of a traceback shows it.
    """
    # Wrapped in place, first: the dict is every frame's view of the key from here on.
    options["api_key"] = api_key = Secret.wrap(options.get("api_key"))
    unknown = sorted(set(options) - ENDPOINT_OPTIONS)
    if unknown:
        cast(dict[str, Any], options).clear()  # a misspelt one may hold the key: drop it
        raise TypeError(f"resolve_endpoint() got an unexpected keyword argument {unknown[0]!r}")
    model = options.get("model")
    base_url = options.get("base_url")
    websocket_base_url = options.get("websocket_base_url")
    azure_endpoint = options.get("azure_endpoint")
    api_version = options.get("api_version")
    offline = options.get("offline")
    chat_base_url = options.get("chat_base_url")
    chat_model = options.get("chat_model")
    texts = {
        "model": model,
        "base_url": base_url,
        "websocket_base_url": websocket_base_url,
        "azure_endpoint": azure_endpoint,
        "api_version": api_version,
        "chat_base_url": chat_base_url,
        "chat_model": chat_model,
    }
    for keyword, value in texts.items():  # checked here, not in the SDK (whose frames hold the key)
        if value is not None and not isinstance(value, str):
            raise ConfigurationError(f"{keyword} must be a string, not {type(value).__name__}")
    try:
        dialect = Dialect(options.get("dialect") or Dialect.GA)
    except ValueError:
        wrong = options.get("dialect")
        raise ConfigurationError(f"dialect must be 'ga' or 'beta', not {wrong!r}") from None
    model = model or DEFAULT_MODEL
    # The SDK reads OPENAI_BASE_URL itself; reading it here too keeps describe() truthful.
    base_url = base_url or (os.environ.get("OPENAI_BASE_URL") if not offline else None)
    azure_endpoint = azure_endpoint or (
        os.environ.get("AZURE_OPENAI_ENDPOINT") if offline is None and not base_url else None
    )
    if offline:
        return _offline(model, dialect)
    if (
        not (chat_base_url or chat_model)
        and offline is None
        and not (base_url or websocket_base_url or azure_endpoint)
    ):
        chat_base_url = os.environ.get(CHAT_URL_VARIABLE) or None
        chat_model = os.environ.get(CHAT_MODEL_VARIABLE) or None
    if chat_base_url or chat_model:
        return _local_model(chat_base_url, chat_model, dialect)
    if azure_endpoint:
        key = api_key or Secret.wrap(os.environ.get("AZURE_OPENAI_API_KEY"))
        if not key:
            raise ConfigurationError(
                "Azure needs an API key: pass api_key= or set AZURE_OPENAI_API_KEY"
            )
        return Endpoint(
            model=model,
            dialect=dialect,
            azure_endpoint=azure_endpoint,
            websocket_base_url=websocket_base_url,  # e.g. a test server without TLS
            api_version=api_version or os.environ.get("OPENAI_API_VERSION") or "2025-08-28",
        ), key
    key = api_key or Secret.wrap(os.environ.get("OPENAI_API_KEY"))
    explicit = bool(base_url or websocket_base_url)
    if dialect is Dialect.BETA and (key or explicit) and _is_openai(base_url, websocket_base_url):
        # Refused before connecting: the service would refuse it after the upgrade.
        raise ConfigurationError(beta_refused(by_openai=True))
    if base_url or websocket_base_url:
        endpoint = Endpoint(
            model=model, dialect=dialect, base_url=base_url, websocket_base_url=websocket_base_url
        )
        return endpoint, key or Secret("unused")  # many compatible servers need no key
    if key:
        return Endpoint(model=model, dialect=dialect), key
    return _offline(model, dialect)


def _is_openai(*urls: str | None) -> bool:
    """Whether these URLs (unset: the SDK's default) reach OpenAI's own service."""
    return all(url is None or "//api.openai.com" in url for url in urls)


def _local_model(
    base_url: str | None, model: str | None, dialect: Dialect
) -> tuple[Endpoint, Secret]:
    if not base_url or not model:
        raise ConfigurationError(
            "a local model needs both a Chat Completions base URL and a model name "
            f"(chat_base_url= and chat_model=, or {CHAT_URL_VARIABLE} and {CHAT_MODEL_VARIABLE})"
        )
    server = chat_server(base_url, model, dialect)
    endpoint = Endpoint(
        model=model,
        dialect=dialect,
        base_url=server.base_url,
        websocket_base_url=server.websocket_base_url,
        local_model=f"local model {model} via {base_url.rstrip('/')}",
    )
    return endpoint, Secret.wrap(server.token) or Secret("unused")


def _offline(model: str, dialect: Dialect) -> tuple[Endpoint, Secret]:
    server = embedded_server(dialect)
    endpoint = Endpoint(
        model=model,
        dialect=dialect,
        base_url=server.base_url,
        websocket_base_url=server.websocket_base_url,
        offline=True,
    )
    return endpoint, Secret.wrap(server.token) or Secret("unused")


class Transport:
    """The SDK client of one Session (made once: the only holder of the key) and the
    connections opened from it."""

    __slots__ = ("_client", "endpoint")

    def __init__(self, endpoint: Endpoint, api_key: Secret | str) -> None:
        from openai import AsyncOpenAI

        api_key = Secret.wrap(api_key) or Secret("unused")
        self.endpoint = endpoint
        self._client: AsyncOpenAI
        try:
            self._client = self._make_client(endpoint, api_key)
        except Exception as exc:
            # Raised again without the SDK's frames: its locals hold the key.
            raise ConfigurationError(
                scrub(f"the openai SDK refused these settings: {type(exc).__name__}: {exc}")
            ) from None

    @staticmethod
    def _make_client(endpoint: Endpoint, api_key: Secret) -> Any:
        from openai import AsyncAzureOpenAI, AsyncOpenAI

        if endpoint.azure_endpoint:
            return AsyncAzureOpenAI(
                api_key=api_key.reveal(),
                azure_endpoint=endpoint.azure_endpoint,
                api_version=endpoint.api_version,
                azure_deployment=endpoint.model,
                websocket_base_url=endpoint.websocket_base_url,
                http_client=shared_http_client(),
            )
        return AsyncOpenAI(
            api_key=api_key.reveal(),
            base_url=endpoint.base_url,
            websocket_base_url=endpoint.websocket_base_url,
            http_client=shared_http_client(secure=not endpoint.plain),
        )

    def __repr__(self) -> str:
        return f"<Transport {self.endpoint.describe()}>"

    def connection_manager(self) -> Any:
        """The SDK's async connection manager (enter it on the I/O loop).

        No ``on_reconnecting``: the SDK's reconnect and its send queue stay off.
        """
        install_log_filter()  # keys out of the websockets/openai DEBUG logs, from now on
        client = self._client
        realtime = (
            client.beta.realtime if self.endpoint.dialect is Dialect.BETA else client.realtime
        )
        # A TLS context only for wss:// (websockets refuses one for ws://).
        options = {"ssl": shared_ssl_context()} if self.endpoint.secure else {}
        return realtime.connect(
            model=self.endpoint.model, websocket_connection_options=cast(Any, options)
        )


class FrameReader:
    """The frames of one SDK connection, for its reader task (on the I/O loop).

    :attr:`recv` waits for the next frame: a ``str`` for a text frame, ``bytes`` for a
    binary one (:attr:`binary_frames` says whether the two can be told apart: the SDK's
    own ``recv_bytes`` returns ``bytes`` for both). :meth:`take_buffered` returns a text
    frame websockets has already received and parsed, without awaiting, or ``None``: a
    burst of deltas (an answer streaming faster than it is read) then costs one plain
    call per frame instead of the two coroutines ``recv()`` runs each time. It reads the
    buffer ``recv()`` itself reads (websockets' ``Assembler``, the same frames in the same
    order, its flow control resumed as ``recv()`` does); anything but a whole text frame
    (a fragment, a binary frame), and any websockets without that buffer, is left to
    :attr:`recv`.
    """

    __slots__ = ("_buffered", "_resume", "_text", "binary_frames", "recv")

    def __init__(self, connection: Any) -> None:
        ws = getattr(connection, "_connection", None)  # the SDK's websockets connection
        self.recv: Callable[[], Awaitable[str | bytes]] = (
            ws.recv if ws is not None else connection.recv_bytes
        )
        self.binary_frames = ws is not None
        assembler: Any = getattr(ws, "recv_messages", None)  # what recv() reads
        buffered = getattr(getattr(assembler, "frames", None), "queue", None)
        usable = hasattr(assembler, "maybe_resume") and hasattr(buffered, "popleft")
        try:  # imported here: the SDK has imported websockets by the time a socket opens
            from websockets.frames import Opcode

            self._text: object = Opcode.TEXT
        except ImportError:  # pragma: no cover - recv() reads every frame
            usable = False
        self._buffered = buffered if usable else None
        self._resume: Callable[[], None] = assembler.maybe_resume if usable else _nothing

    @property
    def takes_buffered(self) -> bool:
        """Whether :meth:`take_buffered` can return frames (websockets has the buffer)."""
        return self._buffered is not None

    def take_buffered(self) -> str | None:
        """The next text frame if it is already buffered whole, else ``None``."""
        buffered = self._buffered
        if not buffered:
            return None
        frame = buffered[0]
        if not frame.fin or frame.opcode is not self._text:
            return None  # recv() reassembles fragments and tells binary frames apart
        buffered.popleft()
        self._resume()  # flow control: reading resumes below the low-water mark
        return frame.data.decode()  # type: ignore[no-any-return]


def _nothing() -> None:
    pass
