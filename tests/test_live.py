"""The real OpenAI Realtime service: skipped unless OPENAI_API_KEY is set (never in CI).

These check what the embedded server can only imitate: that our event shapes are accepted by
the service, that it refuses the retired beta shape as the embedded server does, and that a
tool round completes with a real model.
"""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from rt_notebook.client.models import DEFAULT_MODEL
from rt_notebook.client.session import Session
from rt_notebook.errors import ConfigurationError
from tests.timing import within

pytestmark = [
    pytest.mark.live,
    pytest.mark.timeout(within(180)),
    pytest.mark.skipif(not os.environ.get("OPENAI_API_KEY"), reason="needs OPENAI_API_KEY"),
]

MODEL = os.environ.get("RT_NOTEBOOK_LIVE_MODEL", DEFAULT_MODEL)


@pytest.fixture
def live_session():
    session = Session(model=MODEL, instructions="Answer in at most ten words.").connect()
    assert not session.endpoint.offline
    yield session
    session.close()


def test_text_turn(live_session):
    result = live_session.ask("Say the word 'teal'.").wait(90)
    assert result.status == "completed"
    assert "teal" in result.text.lower()
    assert result.usage["total_tokens"] > 0


def test_queued_responses_never_conflict(live_session):
    live_session.add_message("Count to three.")
    handles = [live_session.create_response() for _ in range(3)]
    assert [h.wait(120).status for h in handles] == ["completed"] * 3
    codes = [error.get("code") for error in live_session.errors]
    assert "conversation_already_has_active_response" not in codes


def test_tool_round(live_session):
    @live_session.tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return f"It is foggy and 12 degrees in {city}."

    first = live_session.ask(
        "What is the weather in London?", tool_choice={"type": "function", "name": "get_weather"}
    ).wait(90)
    call = first.function_calls[0]
    assert json.loads(call.arguments)["city"].lower().startswith("london")
    tool_round = live_session.tools.round_for(str(first.id))
    assert tool_round is not None
    assert tool_round.wait(60)
    assert tool_round.follow_up is not None
    answer = tool_round.follow_up.wait(90)
    assert answer.status == "completed"
    assert "12" in answer.text or "fog" in answer.text.lower()


def test_the_classic_beta_example_on_a_ga_session(live_session):
    """OpenAI's older example, unchanged but for ``shape="beta"``, against the GA service."""

    async def classic():
        printed = []
        async with live_session.connection(shape="beta") as connection:
            await connection.session.update(session={"modalities": ["text"]})
            await connection.conversation.item.create(
                item={
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "Say hello"}],
                }
            )
            await connection.response.create()
            async for event in connection:
                assert type(event).__module__.startswith("openai.types.beta.realtime"), event
                if event.type == "response.text.delta":
                    printed.append(event.delta)
                elif event.type == "response.done":
                    break
        return "".join(printed), event

    printed, done = asyncio.run(asyncio.wait_for(classic(), 120))
    assert done.response.status == "completed", live_session.errors
    assert "hello" in printed.lower()
    assert done.response.modalities == ["text"]
    assert live_session.errors == []


def test_beta_dialect_is_refused_before_reaching_the_service():
    # OpenAI retired the beta shape in May 2026: refused in one line, nothing is sent.
    with pytest.raises(ConfigurationError, match=r'retired.*dialect="ga"'):
        Session(model=MODEL, dialect="beta")


def test_the_service_refuses_the_beta_shape_as_the_embedded_server_does():
    import asyncio

    from openai import AsyncOpenAI
    from websockets.exceptions import ConnectionClosedError

    async def beta_client() -> None:
        client = AsyncOpenAI()
        async with client.beta.realtime.connect(model=MODEL) as connection:
            async for _ in connection:
                pass

    with pytest.raises(ConnectionClosedError) as closed:
        asyncio.run(beta_client())
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4000
    assert "beta_api_shape_disabled" in closed.value.rcvd.reason


def test_an_image_is_seen_and_kept_in_the_mirror(live_session):
    """The service takes our ``input_image`` part; its echo (with or without the data)
    leaves the image in the mirror, so a restore could send it again."""
    import io

    pil_image = pytest.importorskip("PIL.Image")
    buffer = io.BytesIO()
    pil_image.new("RGB", (64, 64), (255, 0, 0)).save(buffer, format="PNG")
    result = live_session.ask(
        "What single colour fills this image? One word.", images=[buffer.getvalue()]
    ).wait(90)
    assert result.status == "completed", result.reason
    assert "red" in result.text.lower()
    assert [image.width for image in live_session.items[0].images] == [64]
