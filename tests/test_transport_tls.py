"""Transport: every ``wss://`` connection shares one TLS context (a CA bundle loaded once,
not at each connect), and so does the HTTP client of every Session on a secure endpoint;
``ws://`` connections get none, and Sessions on plain endpoints share an HTTP client whose
TLS context loads no CA bundle (it trusts nothing)."""

from __future__ import annotations

import asyncio
import ssl

import pytest
from openai.lib import _azure_websocket, _websocket

from rt_notebook.client.transport import Endpoint, Transport, shared_ssl_context
from rt_notebook.protocol.events import Dialect

ENDPOINTS = {
    "real service": Endpoint(model="gpt-realtime", dialect=Dialect.GA),
    "https base url": Endpoint(
        model="gpt-realtime", dialect=Dialect.BETA, base_url="https://example.invalid/v1"
    ),
    "azure": Endpoint(
        model="deployment",
        dialect=Dialect.GA,
        azure_endpoint="https://example.invalid",
        api_version="2025-08-28",
    ),
    "ws url": Endpoint(
        model="gpt-realtime", dialect=Dialect.GA, websocket_base_url="ws://127.0.0.1:9/v1"
    ),
    "http base url": Endpoint(
        model="gpt-realtime", dialect=Dialect.GA, base_url="http://127.0.0.1:9/v1"
    ),
}


@pytest.fixture
def opened(monkeypatch):
    """(url, ssl argument) of every WebSocket connection the SDK opens (none succeeds)."""
    seen = []

    async def recording(url, **kwargs):
        seen.append((url, kwargs.get("ssl")))
        raise OSError("recorded, not connected")

    monkeypatch.setattr(_websocket, "_WebSocketConnect", recording)
    monkeypatch.setattr(_azure_websocket, "_AzureWebSocketConnect", recording)
    return seen


async def _try(transport):
    with pytest.raises(OSError, match="recorded"):
        async with transport.connection_manager():
            pass


def test_wss_connections_share_one_tls_context_and_ws_ones_get_none(opened):
    transports = [Transport(endpoint, "sk-test-not-a-real-key") for endpoint in ENDPOINTS.values()]

    async def twice():
        for transport in transports:
            await _try(transport)
            await _try(transport)  # a reconnect

    asyncio.run(twice())
    assert len(opened) == 2 * len(ENDPOINTS)
    for (url, context), endpoint in zip(
        opened, [e for e in ENDPOINTS.values() for _ in "12"], strict=True
    ):
        assert url.startswith("wss://" if endpoint.secure else "ws://"), url
        assert context is (shared_ssl_context() if endpoint.secure else None), url
    assert [e.secure for e in ENDPOINTS.values()] == [True, True, True, False, False]
    # One HTTP client of each kind for every Session (its HTTP base URL decides: unset, it
    # is the service's https:// one, whatever the WebSocket URL).
    secure = {id(t._client._client) for t in transports if not t.endpoint.plain}
    plain = {id(t._client._client) for t in transports if t.endpoint.plain}
    assert len(secure) == len(plain) == 1
    assert [e.plain for e in ENDPOINTS.values()] == [False, False, False, False, True]


def test_the_plain_http_client_loads_no_ca_bundle_and_sends_nothing(monkeypatch):
    plain = Endpoint(model="gpt-realtime", dialect=Dialect.GA, base_url="http://127.0.0.1:9/v1")
    secure = Endpoint(model="gpt-realtime", dialect=Dialect.GA)

    def client(endpoint):
        return Transport(endpoint, "sk-test-not-a-real-key")._client._client

    assert client(secure)._transport._pool._ssl_context is shared_ssl_context()  # one bundle
    assert shared_ssl_context().cert_store_stats()["x509_ca"] > 0
    # The plain endpoints' client has no connection pool: no CA bundle is loaded (none is
    # made at all after this point), and a request is refused, never attempted.
    made = []
    monkeypatch.setattr(ssl, "create_default_context", lambda *a, **k: made.append(1))
    untrusting = client(plain)
    assert not hasattr(untrusting._transport, "_pool")
    with pytest.raises(RuntimeError, match="sends no HTTP request to a plain endpoint"):
        asyncio.run(untrusting.get("http://127.0.0.1:9/v1/models"))
    assert made == []
