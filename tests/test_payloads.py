"""Client event bodies in each dialect, validated against the SDK's own client-event models."""

from __future__ import annotations

import pytest
from openai.types.beta.realtime import (
    ConversationItemCreateEvent as BetaItemCreate,
)
from openai.types.beta.realtime import (
    ResponseCreateEvent as BetaResponseCreate,
)
from openai.types.beta.realtime import (
    SessionUpdateEvent as BetaSessionUpdate,
)
from openai.types.realtime import (
    ConversationItemCreateEvent,
    ResponseCreateEvent,
    SessionUpdateEvent,
)

from rt_notebook.protocol.events import Dialect
from rt_notebook.protocol.payloads import (
    message_item,
    modalities,
    response_settings,
    session_settings,
)

MODELS = {
    Dialect.GA: (SessionUpdateEvent, ResponseCreateEvent, ConversationItemCreateEvent),
    Dialect.BETA: (BetaSessionUpdate, BetaResponseCreate, BetaItemCreate),
}
TOOL = {"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}}


@pytest.mark.parametrize("dialect", list(Dialect))
def test_session_update_validates(dialect):
    body = session_settings(
        dialect,
        instructions="be brief",
        wanted_modalities=["audio"],
        voice="alloy",
        tools=[TOOL],
        tool_choice="auto",
    )
    event = MODELS[dialect][0].model_validate({"type": "session.update", "session": body})
    dumped = event.model_dump(exclude_unset=True)["session"]
    assert dumped["instructions"] == "be brief"
    if dialect is Dialect.GA:
        assert dumped["output_modalities"] == ["audio"]
        assert dumped["audio"]["output"]["voice"] == "alloy"
    else:
        assert dumped["modalities"] == ["audio", "text"]
        assert dumped["voice"] == "alloy"


@pytest.mark.parametrize("dialect", list(Dialect))
def test_response_create_validates(dialect):
    body = response_settings(
        dialect,
        instructions="one line",
        modalities=["text"],
        max_output_tokens=64,
        conversation="none",
        input=[message_item("side", "user", dialect)],
    )
    event = MODELS[dialect][1].model_validate({"type": "response.create", "response": body})
    dumped = event.model_dump(exclude_unset=True)["response"]
    limit = "max_output_tokens" if dialect is Dialect.GA else "max_response_output_tokens"
    assert dumped[limit] == 64
    assert dumped["conversation"] == "none"


@pytest.mark.parametrize("dialect", list(Dialect))
@pytest.mark.parametrize("role", ["user", "assistant", "system"])
def test_message_items_validate(dialect, role):
    item = message_item("hi", role, dialect)
    event = MODELS[dialect][2].model_validate({"type": "conversation.item.create", "item": item})
    assert event.item.content[0].text == "hi"


def test_empty_settings_send_nothing():
    assert session_settings(Dialect.GA) == {}
    assert session_settings(Dialect.BETA) == {}
    assert response_settings(Dialect.GA) == {}


def test_bad_values_are_refused_before_sending():
    with pytest.raises(ValueError, match="modalities"):
        modalities(["video"], Dialect.GA)
    with pytest.raises(ValueError, match="role"):
        message_item("x", "tool", Dialect.GA)
