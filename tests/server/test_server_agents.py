"""A third-party Realtime client against the server: the OpenAI Agents SDK (``agents.realtime``).

The Agents SDK builds its own websockets connection, offers permessage-deflate, sends a
full GA ``session.update`` (semantic VAD, transcription model, ``tracing: "auto"``, its own
``event_id``\\ s), runs function tools itself and asks for the follow-up response.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agents import function_tool
from agents.realtime import RealtimeAgent, RealtimeRunner, RealtimeSessionEvent

from rt_notebook.server import EmbeddedServer
from tests.timing import within


@function_tool
def get_weather(city: str) -> str:
    """Look up the weather for a city."""
    return f"It is foggy and 12 degrees in {city}."


async def converse(
    server: EmbeddedServer, agent: RealtimeAgent[Any], message: str, turns: int
) -> list[RealtimeSessionEvent]:
    """Send ``message``; collect session events until the agent has ended ``turns`` turns."""
    runner = RealtimeRunner(
        agent,
        config={
            "model_settings": {"model_name": "gpt-realtime", "output_modalities": ["text"]},
            "tracing_disabled": True,  # the SDK's own trace export would try the network
        },
    )
    session = await runner.run(
        model_config={"url": f"{server.url}?model=gpt-realtime", "api_key": server.token}
    )
    events: list[RealtimeSessionEvent] = []
    async with session:
        await session.send_message(message)
        ended = 0
        async for event in session:
            events.append(event)
            ended += event.type == "agent_end"
            if ended == turns:
                break
    return events


def server_errors(events: list[RealtimeSessionEvent]) -> list[Any]:
    found: list[Any] = [event for event in events if event.type == "error"]
    return found + [data for data in raw_server_events(events) if data.get("type") == "error"]


def raw_server_events(events: list[RealtimeSessionEvent]) -> list[Any]:
    return [
        event.data.data
        for event in events
        if event.type == "raw_model_event" and event.data.type == "raw_server_event"
    ]


def updated_session(events: list[RealtimeSessionEvent]) -> Any:
    sessions = [
        data["session"] for data in raw_server_events(events) if data["type"] == "session.updated"
    ]
    return sessions[-1]


def assistant_texts(events: list[RealtimeSessionEvent]) -> list[str]:
    history = [event for event in events if event.type == "history_updated"][-1].history
    texts: list[str] = []
    for item in history:
        if item.type == "message" and item.role == "assistant":
            texts.extend(text for part in item.content if (text := getattr(part, "text", None)))
    return texts


def test_agents_sdk_text_turn(fast_server: EmbeddedServer) -> None:
    agent: RealtimeAgent[Any] = RealtimeAgent(name="echo", instructions="Repeat the user.")
    events = asyncio.run(
        asyncio.wait_for(converse(fast_server, agent, "Hello from the Agents SDK", 1), within(60))
    )
    assert server_errors(events) == []
    assert assistant_texts(events) == ["Echo: Hello from the Agents SDK"]
    # Its full GA session.update was accepted and applied.
    audio_input = updated_session(events)["audio"]["input"]
    assert audio_input["turn_detection"]["type"] == "semantic_vad"
    assert audio_input["transcription"]["model"]
    assert updated_session(events)["output_modalities"] == ["text"]


def test_agents_sdk_function_call_round(fast_server: EmbeddedServer) -> None:
    agent: RealtimeAgent[Any] = RealtimeAgent(
        name="weather", instructions="Use get_weather for weather.", tools=[get_weather]
    )
    events = asyncio.run(
        asyncio.wait_for(
            converse(fast_server, agent, "What is the weather in London?", 2), within(60)
        )
    )
    assert server_errors(events) == []
    assert updated_session(events)["tools"][0]["name"] == "get_weather"
    (tool_end,) = [event for event in events if event.type == "tool_end"]
    assert tool_end.tool.name == "get_weather"
    assert tool_end.output == "It is foggy and 12 degrees in London."
    assert assistant_texts(events) == [
        "get_weather returned: It is foggy and 12 degrees in London."
    ]
