"""The Azure path: AsyncAzureOpenAI's URL, deployment and api-key header, against the embedded
server (which accepts Azure's request shape), so the Azure code runs offline."""

from __future__ import annotations

from urllib.parse import urlsplit

from rt_notebook.client.session import Session
from tests.timing import WAIT, within


def test_azure_session_completes_a_turn(offline_server):
    port = urlsplit(offline_server.base_url).port
    session = Session(
        azure_endpoint=f"http://127.0.0.1:{port}",
        websocket_base_url=f"ws://127.0.0.1:{port}/openai",
        api_key=offline_server.token,
        model="my-deployment",
    )
    try:
        session.connect(timeout=within(20))
        assert "Azure OpenAI" in repr(session)
        assert offline_server.token not in repr(session)
        result = session.ask("hello Azure").wait(WAIT)
        assert result.status == "completed"
        assert "hello Azure" in result.text
        assert result.model == "my-deployment"  # the deployment travelled as the model
    finally:
        session.close()


def test_azure_needs_a_key(monkeypatch):
    import pytest

    from rt_notebook import ConfigurationError

    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="AZURE_OPENAI_API_KEY"):
        Session(azure_endpoint="https://example.openai.azure.com", model="d")
