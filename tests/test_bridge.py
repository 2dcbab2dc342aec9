"""``session.connection()``: the SDK's realtime connection code on the shared Session, and
response handles iterated for their deltas. Real SDK, embedded server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import BaseModel

from rt_notebook.server import EmbeddedServer
from rt_notebook.session import Session, Timing
from tests.timing import UNIT, WAIT


@pytest.fixture(scope="module")
def server():
    # auto: GA, and beta for the beta Session (a default server refuses beta, as OpenAI does)
    with EmbeddedServer(pace=0.0, dialect="auto") as server:
        yield server


def make(server, **options):
    return Session(
        base_url=server.base_url,
        websocket_base_url=server.websocket_base_url,
        api_key=server.token,
        timing=Timing(backoff_initial=UNIT, backoff_max=4 * UNIT, renew_margin=0),
        **options,
    ).connect()


async def seed(session, update, delta_type):
    """The seed's example (the SDK's reference for these resources)."""
    deltas = []
    async with session.connection() as connection:
        await connection.session.update(session=update)
        await connection.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Say hello!"}],
            }
        )
        await connection.response.create()
        async for event in connection:
            assert isinstance(event, BaseModel)  # typed, as the SDK yields
            if event.type == delta_type:
                deltas.append(event.delta)
            elif event.type == "response.done":
                break
    return "".join(deltas)


def test_the_seed_runs_verbatim_on_a_beta_session(server):
    session = make(server, dialect="beta")
    try:
        text = asyncio.run(seed(session, {"modalities": ["text"]}, "response.text.delta"))
        assert text == "Echo: Say hello!"
        # Part of the same conversation the cells and panels see.
        assert [(i.role, i.text) for i in session.items] == [
            ("user", "Say hello!"),
            ("assistant", "Echo: Say hello!"),
        ]
    finally:
        session.close()


def test_the_seed_with_ga_names_on_a_ga_session(server):
    session = make(server)
    try:
        update = {"type": "realtime", "output_modalities": ["text"]}
        text = asyncio.run(seed(session, update, "response.output_text.delta"))
        assert text == "Echo: Say hello!"
    finally:
        session.close()


def test_a_bridged_response_is_a_turn_queued_behind_a_running_one(server):
    session = make(server)
    try:
        running = session.ask("first in line")

        async def bridged():
            async with session.connection() as connection:
                await connection.conversation.item.create(
                    item={
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "second"}],
                    }
                )
                handle = await connection.response.create()
                return await handle

        result = asyncio.run(bridged())
        assert running.wait(WAIT).text == "Echo: first in line"
        assert result.text == "Echo: second"
        codes = [e.get("code") for e in session.errors]
        assert "conversation_already_has_active_response" not in codes
    finally:
        session.close()


def test_a_bridged_session_update_is_restored_after_a_drop(server, tmp_path):
    session = make(server)
    path = tmp_path / "events.jsonl"
    try:

        async def update():
            async with session.connection() as connection:
                await connection.session.update(
                    session={"type": "realtime", "instructions": "Speak like a pirate."}
                )

        asyncio.run(update())
        assert session.ask("ahoy").wait(WAIT).status == "completed"
        session.record(path)
        opened = server.connections_opened
        server.drop_connections()
        assert session.ask("after the drop").wait(WAIT).text == "Echo: after the drop"
        assert server.connections_opened == opened + 1
        session.stop_recording()
        sent = [
            json.loads(line)["data"]
            for line in path.read_text().splitlines()
            if json.loads(line)["direction"] == "sent"
        ]
        restore = next(e for e in sent if e["type"] == "session.update")
        assert restore["session"]["instructions"] == "Speak like a pirate."
    finally:
        session.close()


def test_a_handle_iterates_its_text_deltas(server):
    session = make(server)
    try:
        handle = session.ask("one two three four")
        streamed = "".join(handle)
        assert streamed == handle.wait(WAIT).text == "Echo: one two three four"

        async def collect():
            return "".join([delta async for delta in session.ask("async deltas")])

        assert asyncio.run(collect()) == "Echo: async deltas"
    finally:
        session.close()
