"""``session.connection()``: the SDK's realtime connection code on the shared Session, and
response handles iterated for their deltas. Real SDK, embedded server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from pydantic import BaseModel

from rt_notebook.client.session import Session, Timing
from rt_notebook.errors import ConfigurationError
from rt_notebook.protocol.events import GA_TO_BETA_EVENT
from rt_notebook.server import EmbeddedServer
from tests.timing import UNIT, WAIT


@pytest.fixture(scope="module")
def server():
    with EmbeddedServer(pace=0.0, dialect="ga") as server:  # GA only, like the service
        yield server


@pytest.fixture(scope="module")
def beta_server():
    with EmbeddedServer(pace=0.0, dialect="beta") as server:  # for beta Sessions
        yield server


def make(server, **options):
    return Session(
        base_url=server.base_url,
        websocket_base_url=server.websocket_base_url,
        api_key=server.token,
        timing=Timing(backoff_initial=UNIT, backoff_max=4 * UNIT, renew_margin=0),
        **options,
    ).connect()


async def seed(session, update, delta_type, shape="ga"):
    """The seed's example (the SDK's reference for these resources)."""
    deltas = []
    async with session.connection(shape=shape) as connection:
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


def test_the_seed_runs_verbatim_on_a_beta_session(beta_server):
    session = make(beta_server, dialect="beta")
    try:
        text = asyncio.run(
            seed(session, {"modalities": ["text"]}, "response.text.delta", shape="beta")
        )
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


def sent_events(path):
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [line["data"] for line in lines if line["direction"] == "sent"]


CLASSIC_ITEM = {
    "type": "message",
    "role": "user",
    "content": [{"type": "input_text", "text": "Say hello"}],
}


async def classic(session):
    """OpenAI's older example, unchanged but for the line that opens the connection."""
    printed, kinds = [], []
    async with session.connection(shape="beta") as connection:
        await connection.session.update(session={"modalities": ["text"]})
        await connection.conversation.item.create(item=CLASSIC_ITEM)
        await connection.response.create()
        async for event in connection:
            kinds.append((event.type, type(event).__module__))
            if event.type == "response.text.delta":
                printed.append(event.delta)
            elif event.type == "response.done":
                break
    return "".join(printed), kinds, event


def test_the_classic_beta_example_runs_on_a_ga_session(server, tmp_path):
    session = make(server)
    path = tmp_path / "events.jsonl"
    try:
        session.record(path)
        printed, kinds, done = asyncio.run(classic(session))
        session.stop_recording()
        assert printed == "Echo: Say hello"
        # Every event in its beta name, typed by the SDK's beta models.
        assert {module.split(".")[2] for _, module in kinds} == {"beta"}
        names = [kind for kind, _ in kinds]
        assert "conversation.item.created" in names
        assert "response.text.done" in names
        assert not any(
            "output_text" in name or name.startswith("conversation.item.added") for name in names
        )
        assert done.response.modalities == ["text"]
        assert done.response.output[0].content[0].type == "text"
        # On the wire, GA.
        update = next(e for e in sent_events(path) if e["type"] == "session.update")
        assert update["session"] == {"type": "realtime", "output_modalities": ["text"]}
        assert [(i.role, i.text) for i in session.items] == [
            ("user", "Say hello"),
            ("assistant", "Echo: Say hello"),
        ]
    finally:
        session.close()


def test_two_shapes_at_once_each_see_the_same_spoken_answer_in_their_names(server):
    session = make(server)

    async def listen(connection):
        seen = []
        async for event in connection:
            seen.append(event)
            if event.type == "response.done":
                break
        return seen

    async def both():
        async with (
            session.connection(shape="beta") as beta,
            session.connection() as ga,
        ):
            listeners = [
                asyncio.create_task(listen(beta)),
                asyncio.create_task(listen(ga)),
            ]
            await beta.session.update(session={"modalities": ["audio", "text"], "voice": "ash"})
            await beta.conversation.item.create(item=CLASSIC_ITEM)
            await beta.response.create(response={"max_response_output_tokens": 200})
            return await asyncio.gather(*listeners)

    try:
        beta_events, ga_events = asyncio.run(asyncio.wait_for(both(), WAIT))
        beta_types = {event.type for event in beta_events}
        ga_types = {event.type for event in ga_events}
        assert {"response.audio.delta", "response.audio_transcript.delta"} <= beta_types
        assert not beta_types & set(GA_TO_BETA_EVENT)  # no GA-only name reaches beta code
        ga_spoken = {"response.output_audio.delta", "response.output_audio_transcript.delta"}
        assert ga_spoken <= ga_types
        assert "response.audio.delta" not in ga_types
        transcript = "".join(
            e.delta for e in beta_events if e.type == "response.audio_transcript.delta"
        )
        assert transcript == "".join(
            e.delta for e in ga_events if e.type == "response.output_audio_transcript.delta"
        )
        assert transcript == "Echo: Say hello"
        beta_done, ga_done = beta_events[-1].response, ga_events[-1].response
        assert beta_done.modalities == ["audio", "text"]
        assert beta_done.voice == "ash"
        assert beta_done.output_audio_format == "pcm16"
        assert ga_done.output_modalities == ["audio"]
        assert ga_done.audio.output.voice == "ash"
    finally:
        session.close()


def test_classic_send_calls_and_input_audio_take_the_same_paths(server):
    session = make(server)
    silence = base64.b64encode(bytes(24_000 * 2 // 5)).decode()  # 200 ms of PCM16 24 kHz

    async def classic_send():
        seen = []
        async with session.connection(shape="beta") as connection:
            await connection.send({"type": "session.update", "session": {"modalities": ["text"]}})
            await connection.send({"type": "input_audio_buffer.append", "audio": silence})
            await connection.send({"type": "input_audio_buffer.commit"})
            await connection.send({"type": "response.create", "response": {"instructions": "x"}})
            async for event in connection:
                seen.append(event)
                if event.type == "response.done":
                    break
            with pytest.raises(ConfigurationError, match="WebRTC"):
                await connection.send({"type": "output_audio_buffer.clear"})
            with pytest.raises(ConfigurationError, match="unknown client event type 'sesion"):
                await connection.send({"type": "sesion.update", "session": {}})
        return seen

    try:
        seen = asyncio.run(asyncio.wait_for(classic_send(), WAIT))
        created = [e.item for e in seen if e.type == "conversation.item.created"]
        assert created[0].role == "user"
        assert created[0].content[0].type == "input_audio"
        assert seen[-1].response.modalities == ["text"]
        assert session.items[0].role == "user"
    finally:
        session.close()


def test_ga_shaped_code_runs_on_a_beta_session(beta_server):
    session = make(beta_server, dialect="beta")
    try:
        update = {"type": "realtime", "output_modalities": ["text"]}
        text = asyncio.run(seed(session, update, "response.output_text.delta"))
        assert text == "Echo: Say hello!"
    finally:
        session.close()


def test_untranslatable_calls_fail_in_one_line_before_anything_is_sent(server, tmp_path):
    session = make(server)
    path = tmp_path / "events.jsonl"

    async def attempt(shape, session_settings):
        async with session.connection(shape=shape) as connection:
            await connection.session.update(session=session_settings)

    async def transcribe():
        async with session.connection(shape="beta") as connection:
            await connection.transcription_session.update(session={"modalities": ["text"]})

    try:
        session.record(path)
        with pytest.raises(ConfigurationError) as error:
            asyncio.run(attempt("beta", {"modalities": ["text"], "temperature": 0.7}))
        assert str(error.value) == (
            "session setting 'temperature' has no GA equivalent: "
            "GA models choose their own sampling temperature; remove it"
        )
        # Classic code that forgot the shape is told what to do, not 'session.type'.
        with pytest.raises(ConfigurationError, match=r'session.connection\(shape="beta"\)'):
            asyncio.run(attempt("ga", {"modalities": ["text"]}))
        with pytest.raises(
            ConfigurationError, match=r"'transcription_session\.update' has no GA equivalent"
        ):
            asyncio.run(transcribe())
        with pytest.raises(ConfigurationError, match="shape must be 'ga' or 'beta', not 'Beta'"):
            session.connection(shape="Beta")
        assert session.ask("still fine").wait(WAIT).text == "Echo: still fine"
        session.stop_recording()
        assert not any(e["type"] == "session.update" for e in sent_events(path))
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
