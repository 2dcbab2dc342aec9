"""A local model in the kernel: a Session through the embedded server's Chat Completions
backend, against the stand-in endpoint of tests/chat_standin.py on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from rt_notebook.client.session import Session
from rt_notebook.client.transport import chat_server, resolve_endpoint
from rt_notebook.errors import ConfigurationError
from rt_notebook.frontends.magics import RealtimeMagics
from rt_notebook.tools import CallState
from tests.chat_standin import MODEL, ChatStandIn, Reply
from tests.timing import wait_until, within


@pytest.fixture(scope="module")
def standin() -> Iterator[ChatStandIn]:
    with ChatStandIn(models=(MODEL, "other-model")) as server:
        yield server


@pytest.fixture
def local(standin: ChatStandIn) -> Iterator[Session]:
    standin.requests.clear()
    standin.replies.clear()
    session = Session(chat_base_url=standin.base_url, chat_model=MODEL)
    yield session.connect()
    session.close()


def weather(city: str) -> str:
    """Get the weather for a city."""
    return f"It is foggy in {city}."


def test_a_text_turn_is_answered_by_the_local_model(local: Session, standin: ChatStandIn) -> None:
    assert local.endpoint.local_model == f"local model {MODEL} via {standin.base_url}"
    assert not local.endpoint.offline
    assert local.model == MODEL
    assert f"local model {MODEL} via {standin.base_url}" in local.endpoint.describe()
    result = local.ask("hello, model", instructions="Answer kindly.").wait(within(10))
    assert result.status == "completed"
    assert result.text == "You said: hello, model"
    assert result.usage is not None
    assert result.usage["total_tokens"] == 18  # what the endpoint reported
    assert standin.requests[-1]["body"]["messages"] == [
        {"role": "system", "content": "Answer kindly."},
        {"role": "user", "content": "hello, model"},
    ]


def test_a_tool_round_runs_the_kernel_function(local: Session, standin: ChatStandIn) -> None:
    local.register_tool(weather, name="get_weather")
    standin.replies.append(Reply(calls=[("get_weather", '{"city": "London"}')]))
    result = local.ask("What is the weather in London?").wait(within(10))
    tool_round = local.tools.round_for(result.id)
    assert tool_round is not None
    assert tool_round.wait(within(10))
    [call] = tool_round.calls
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "London"})
    assert call.state is CallState.DONE
    follow_up = tool_round.follow_up.wait(within(10))
    assert follow_up.text == "The tool said: It is foggy in London."
    first, second = (request["body"] for request in standin.requests[-2:])
    assert first["tools"][0]["function"]["name"] == "get_weather"
    assert second["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_standin_0",
        "content": "It is foggy in London.",
    }


def test_an_endpoint_error_fails_the_response_and_the_session_goes_on(
    local: Session, standin: ChatStandIn
) -> None:
    standin.replies.append(Reply(status=503, error="model is loading"))
    failed = local.ask("hi").wait(within(10))
    assert failed.status == "failed"
    assert local.ask("hi again").wait(within(10)).text == "You said: hi again"


def test_the_environment_names_a_local_model(
    standin: ChatStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RT_NOTEBOOK_CHAT_BASE_URL", standin.base_url)
    monkeypatch.setenv("RT_NOTEBOOK_CHAT_MODEL", MODEL)
    endpoint, _ = resolve_endpoint()
    assert endpoint.local_model == f"local model {MODEL} via {standin.base_url}"
    # an explicit URL or offline=True wins over the environment
    assert resolve_endpoint(offline=True)[0].offline
    explicit, _ = resolve_endpoint(websocket_base_url="ws://127.0.0.1:9/v1")
    assert explicit.local_model is None
    monkeypatch.delenv("RT_NOTEBOOK_CHAT_MODEL")
    with pytest.raises(ConfigurationError, match="RT_NOTEBOOK_CHAT_MODEL"):
        resolve_endpoint()


def test_one_embedded_server_per_configuration(standin: ChatStandIn) -> None:
    first = chat_server(standin.base_url, MODEL)
    assert chat_server(standin.base_url, MODEL) is first
    other = chat_server(standin.base_url, "other-model")
    assert other is not first
    assert other.port != first.port


def test_magics_config_passes_the_local_model() -> None:
    magics = RealtimeMagics(shell=None)
    assert "chat_base_url" not in magics._session_options()
    magics.chat_base_url = "http://127.0.0.1:11434/v1"
    magics.chat_model = "llama3"
    options = magics._session_options()
    assert options["chat_base_url"] == "http://127.0.0.1:11434/v1"
    assert options["chat_model"] == "llama3"


def test_the_chat_panel_talks_to_the_local_model(local: Session, standin: ChatStandIn) -> None:
    from rt_notebook.frontends.chat import ChatPanel

    panel = ChatPanel(local)
    try:
        handle = panel.send("hello from the panel").result(within(10))
        assert handle is not None
        assert handle.wait(within(10)).text == "You said: hello from the panel"
        where = f"local model {MODEL} via {standin.base_url}"
        # The status line is redrawn by the panel's own thread.
        wait_until(lambda: where in panel.view.status["line"], "the status line to name the model")
        assert "offline" not in panel.view.status["line"]
    finally:
        panel.close()


def _png(width: int = 64, height: int = 48) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (20, 160, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_images_go_to_the_local_model_as_image_url_parts(
    local: Session, standin: ChatStandIn
) -> None:
    answer = local.ask("what is this?", images=[_png()]).wait(within(10))
    assert answer.status == "completed"
    content = standin.requests[-1]["body"]["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "what is this?"}
    assert content[1]["type"] == "image_url"
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")


@pytest.mark.parametrize(
    ("status", "refusal"),
    [
        (400, "The model standin-model is not a multimodal model"),  # vLLM
        (500, "image input is not supported - hint: you may need to provide the mmproj"),
        (400, "Model does not support images. Please use a model that does."),  # LM Studio
    ],
)
def test_a_local_model_that_takes_no_images_says_so_in_one_line(
    local: Session, standin: ChatStandIn, status: int, refusal: str
) -> None:
    standin.replies.append(Reply(status=status, error=refusal))
    failed = local.ask("what is this?", images=[_png()]).wait(within(10))
    assert failed.status == "failed"
    reason = failed.reason or ""
    assert f"The local model '{MODEL}' takes no images" in reason
    assert "use a model that reads images" in reason
    assert "\n" not in reason
    assert "base64" not in reason
    # The session goes on (a model that reads images answers the next turn).
    assert local.ask("and now?").wait(within(10)).status == "completed"


def test_an_unrelated_failure_with_an_image_is_not_called_an_image_refusal(
    local: Session, standin: ChatStandIn
) -> None:
    # A refusal that names images, for a request that held none, is not one.
    standin.replies.append(Reply(status=400, error="vision tokens exhausted"))
    failed = local.ask("plain text").wait(within(10))
    assert failed.status == "failed"
    assert "takes no images" not in (failed.reason or "")
    standin.replies.append(Reply(status=503, error="model is loading"))
    failed = local.ask("what is this?", images=[_png()]).wait(within(10))
    assert failed.status == "failed"
    assert "takes no images" not in (failed.reason or "")
    assert "model is loading" in (failed.reason or "")
