"""End-to-end tests on 127.0.0.1: the real ``openai`` SDK (GA and beta) and raw websockets.

Every event a test receives is validated strictly against the SDK's server-event union of
the connection's dialect (``server_helpers.assert_valid``).
"""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from server_helpers import (
    RECV_TIMEOUT_S,
    WEATHER_TOOL,
    assert_valid,
    final_text,
    fold_deltas,
    run,
    sdk_client,
    text_mode,
    types,
    user_text,
)
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from rt_notebook.protocol.events import Dialect, Event
from rt_notebook.server import EchoResponder, EmbeddedServer

# Text turns and function calls, both dialects


@pytest.mark.parametrize("dialect", [Dialect.GA, Dialect.BETA])
def test_text_turn(fast_server: EmbeddedServer, dialect: Dialect) -> None:
    async def scenario() -> list[Event]:
        async with sdk_client(fast_server, dialect) as client:
            await text_mode(client)
            await client.send({"type": "conversation.item.create", "item": user_text("Hi *there*")})
            await client.send({"type": "response.create"})
            return await client.until("response.done")

    events = run(scenario())
    assert final_text(events) == "Echo: Hi *there*"
    if dialect is Dialect.GA:
        assert fold_deltas(types(events)) == [
            "conversation.item.added",
            "conversation.item.done",
            "response.created",
            "response.output_item.added",
            "conversation.item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "conversation.item.done",
            "response.output_item.done",
            "response.done",
        ]
    else:
        assert fold_deltas(types(events)) == [
            "conversation.item.created",
            "response.created",
            "rate_limits.updated",
            "response.output_item.added",
            "conversation.item.created",
            "response.content_part.added",
            "response.text.delta",
            "response.text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.done",
        ]


@pytest.mark.parametrize("dialect", [Dialect.GA, Dialect.BETA])
def test_function_call_round(slow_server: EmbeddedServer, dialect: Dialect) -> None:
    async def scenario() -> tuple[list[Event], list[Event]]:
        async with sdk_client(slow_server, dialect) as client:
            await text_mode(client, tools=[WEATHER_TOOL])
            await client.send(
                {
                    "type": "conversation.item.create",
                    "item": user_text("What is the weather in London?"),
                }
            )
            await client.send({"type": "response.create"})
            first = await client.until("response.function_call_arguments.done")
            done = first[-1]
            # Sent while the response is still active, as the captured client did.
            await client.send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "function_call_output",
                        "call_id": done["call_id"],
                        "output": "It is foggy and 12 degrees in London.",
                    },
                }
            )
            ack = (
                "conversation.item.added" if dialect is Dialect.GA else "conversation.item.created"
            )
            first += await client.until(ack)
            await client.send({"type": "response.create"})
            second = await client.until("response.done")
            return first, second

    first, second = run(scenario())
    done = next(e for e in first if e["type"] == "response.function_call_arguments.done")
    assert done["name"] == "get_weather"
    assert json.loads(done["arguments"]) == {"city": "London"}
    # The tool result is acknowledged only after the first response is done.
    order = types(first)
    assert order.index("response.done") < len(order) - 1
    assert first[-1]["item"]["type"] == "function_call_output"
    assert final_text(second) == "get_weather returned: It is foggy and 12 degrees in London."


def test_audio_output_streams_beeps_and_transcript(fast_server: EmbeddedServer) -> None:
    async def scenario() -> list[Event]:
        async with sdk_client(fast_server) as client:  # default output modality: audio
            await client.send({"type": "conversation.item.create", "item": user_text("Say hi")})
            await client.send({"type": "response.create"})
            return await client.until("response.done")

    events = run(scenario())
    order = types(events)
    assert order.count("response.output_audio.delta") == 3
    assert order.count("response.output_audio_transcript.delta") == 3
    assert order.index("response.output_audio.done") < order.index(
        "response.output_audio_transcript.done"
    )


# Cancellation and out-of-band responses


def test_cancel_before_any_output(slow_server: EmbeddedServer) -> None:
    async def scenario() -> list[Event]:
        async with sdk_client(slow_server) as client:
            await client.send({"type": "conversation.item.create", "item": user_text("hello")})
            await client.send({"type": "response.create"})
            await client.send({"type": "response.cancel"})
            return await client.until("response.done")

    events = run(scenario())
    assert types(events)[-2:] == ["response.created", "response.done"]
    done = events[-1]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert done["output"] == []
    assert done["usage"]["total_tokens"] == 0


def test_cancel_during_output(slow_server: EmbeddedServer) -> None:
    words = " ".join(f"word{n}" for n in range(40))

    async def scenario() -> list[Event]:
        async with sdk_client(slow_server) as client:
            await text_mode(client)
            await client.send({"type": "conversation.item.create", "item": user_text(words)})
            await client.send({"type": "response.create"})
            events = await client.until("response.output_text.delta")
            await client.send({"type": "response.cancel"})
            return events + await client.until("response.done")

    events = run(scenario())
    order = types(events)
    assert 1 <= order.count("response.output_text.delta") < 41
    tail = order[order.index("response.output_text.done") :]
    assert tail == [
        "response.output_text.done",
        "response.content_part.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
    ]
    done = events[-1]["response"]
    assert done["status"] == "cancelled"
    assert done["output"][0]["status"] == "incomplete"
    streamed = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert final_text(events) == streamed
    assert f"Echo: {words}".startswith(streamed)


def test_out_of_band_response_during_an_active_one(slow_server: EmbeddedServer) -> None:
    async def scenario() -> list[Event]:
        async with sdk_client(slow_server) as client:
            await text_mode(client)
            await client.send({"type": "conversation.item.create", "item": user_text("main")})
            await client.send({"type": "response.create"})
            await client.send(
                {
                    "type": "response.create",
                    "response": {
                        "conversation": "none",
                        "metadata": {"purpose": "title"},
                        "input": [user_text("side")],
                    },
                }
            )
            return await client.until("response.done", count=2)

    events = run(scenario())
    assert "error" not in types(events)
    created = [e["response"] for e in events if e["type"] == "response.created"]
    assert [r["metadata"] for r in created] == [None, {"purpose": "title"}]
    assert created[1]["conversation_id"] is None
    dones = {
        str(e["response"]["metadata"]): e["response"]
        for e in events
        if e["type"] == "response.done"
    }
    side = dones["{'purpose': 'title'}"]
    assert side["conversation_id"] is None
    assert side["output"][0]["content"][0]["text"] == "Echo: side"
    added = [e["item"]["id"] for e in events if e["type"] == "conversation.item.added"]
    assert side["output"][0]["id"] not in added


# Error cases over the wire


def test_state_and_validation_errors(slow_server: EmbeddedServer) -> None:
    async def scenario() -> list[Event]:
        errors: list[Event] = []
        async with sdk_client(slow_server) as client:

            async def expect_error(event: Event) -> None:
                await client.send(event)
                errors.append((await client.until("error"))[-1])

            await expect_error({"type": "nope", "event_id": "evt_nope"})
            await expect_error(
                {"type": "session.update", "session": {"type": "realtime", "bogus_field": 1}}
            )
            await expect_error(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "assistant",
                        "content": [{"type": "text", "text": "x"}],
                    },
                }
            )
            await expect_error({"type": "response.cancel"})
            await expect_error({"type": "input_audio_buffer.commit"})
            # Back to back: the second arrives while the first response is still thinking.
            await client.send({"type": "response.create"})
            await expect_error({"type": "response.create"})
            # Drain the first response: unread frames would stall the client's close.
            await client.until("response.done")
        return errors

    errors = [event["error"] for event in run(scenario())]
    assert [(e["code"], e["param"]) for e in errors] == [
        ("invalid_value", "type"),
        ("unknown_parameter", "session.bogus_field"),
        ("invalid_value", "item.content[0].type"),
        ("response_cancel_not_active", None),
        ("input_audio_buffer_commit_empty", None),
        ("conversation_already_has_active_response", None),
    ]
    assert errors[0]["event_id"] == "evt_nope"
    assert errors[2]["message"] == "Invalid value: 'text'. Value must be 'output_text'."


async def raw_connect(
    server: EmbeddedServer,
    query: str = "?model=gpt-realtime",
    headers: dict[str, str] | None = None,
) -> ClientConnection:
    default = {"Authorization": f"Bearer {server.token}"}
    return await websockets.connect(
        server.url + query, additional_headers=default if headers is None else headers
    )


async def raw_next(connection: Connection, dialect: Dialect = Dialect.GA) -> Event:
    event: Event = json.loads(await asyncio.wait_for(connection.recv(), RECV_TIMEOUT_S))
    assert_valid(event, dialect)
    return event


def test_frame_errors(fast_server: EmbeddedServer) -> None:
    async def scenario() -> list[Event]:
        async with await raw_connect(fast_server) as connection:
            assert (await raw_next(connection))["type"] == "session.created"
            await connection.send("{not json")
            bad_json = await raw_next(connection)
            await connection.send(b"\x00\x01")
            binary = await raw_next(connection)
            await connection.send('{"type": "conversation.item.create"}')
            missing = await raw_next(connection)
            return [bad_json, binary, missing]

    bad_json, binary, missing = (event["error"] for event in run(scenario()))
    assert bad_json["code"] == "invalid_json"
    assert binary["code"] == "invalid_event"
    assert (missing["code"], missing["param"]) == ("missing_required_parameter", "item")


async def rejected(
    server: EmbeddedServer, query: str, headers: dict[str, str]
) -> tuple[Event, int | None, str | None]:
    async with await raw_connect(server, query, headers) as connection:
        error: Event = json.loads(await connection.recv())
        with pytest.raises(ConnectionClosed):
            await connection.recv()
        assert connection.close_code is not None
        return error, connection.close_code, connection.close_reason


@pytest.mark.parametrize(
    ("query", "headers", "code", "close_code"),
    [
        ("", None, "missing_model", 4000),
        ("?model=", None, "missing_model", 4000),
        ("?model=gpt-realtime", {"Authorization": "Bearer wrong"}, "invalid_api_key", 3000),
        ("?model=gpt-realtime", {}, "invalid_api_key", 3000),
        ("?model=gpt-realtime", {"Authorization": "Basic abc"}, "invalid_api_key", 3000),
    ],
)
def test_admission_errors_come_after_the_upgrade(
    fast_server: EmbeddedServer,
    query: str,
    headers: dict[str, str] | None,
    code: str,
    close_code: int,
) -> None:
    sent_headers = {"Authorization": f"Bearer {fast_server.token}"} if headers is None else headers
    error, closed_with, reason = run(rejected(fast_server, query, sent_headers))
    assert error["type"] == "error"
    assert error["error"]["code"] == code
    assert closed_with == close_code
    assert reason == f"invalid_request_error.{code}"
    assert "wrong" not in json.dumps(error)  # a presented key is never echoed


def test_ga_server_refuses_the_beta_header_like_the_service() -> None:
    with EmbeddedServer(dialect="ga", pace=0) as server:
        headers = {"Authorization": f"Bearer {server.token}", "OpenAI-Beta": "realtime=v1"}
        error, closed_with, reason = run(rejected(server, "?model=gpt-realtime", headers))
    assert error["error"]["code"] == "beta_api_shape_disabled"
    assert (closed_with, reason) == (4000, "invalid_request_error.beta_api_shape_disabled")


def test_beta_server_speaks_beta_without_the_header() -> None:
    async def scenario(server: EmbeddedServer) -> list[Event]:
        async with await raw_connect(server) as connection:
            events = [await raw_next(connection, Dialect.BETA)]
            await connection.send(
                json.dumps({"type": "conversation.item.create", "item": user_text("x")})
            )
            events.append(await raw_next(connection, Dialect.BETA))
            return events

    with EmbeddedServer(dialect="beta", pace=0) as server:
        created, ack = run(scenario(server))
    assert "modalities" in created["session"]
    assert ack["type"] == "conversation.item.created"


def test_other_paths_are_not_found(fast_server: EmbeddedServer) -> None:
    async def scenario() -> int:
        url = f"ws://127.0.0.1:{fast_server.port}/v1/other?model=x"
        with pytest.raises(InvalidStatus) as info:
            await websockets.connect(url)
        return info.value.response.status_code

    assert run(scenario()) == 404


# Transport behaviour


@pytest.mark.parametrize("compression", [False, True])
def test_permessage_deflate_only_when_configured(compression: bool) -> None:
    async def scenario(server: EmbeddedServer) -> tuple[str, str]:
        async with await raw_connect(server) as connection:  # websockets offers deflate
            assert connection.response is not None
            extensions = connection.response.headers.get("Sec-WebSocket-Extensions", "")
            await connection.send(json.dumps({"type": "input_audio_buffer.clear"}))
            assert (await raw_next(connection))["type"] == "session.created"
            return extensions, (await raw_next(connection))["type"]

    with EmbeddedServer(pace=0, compression=compression) as server:
        extensions, answer = run(scenario(server))
    assert ("permessage-deflate" in extensions) is compression
    assert answer == "input_audio_buffer.cleared"  # either way the connection works


def test_concurrent_connections_keep_their_own_conversations(fast_server: EmbeddedServer) -> None:
    async def one(name: str) -> str:
        async with sdk_client(fast_server) as client:
            await text_mode(client)
            for turn in range(2):
                await client.send(
                    {"type": "conversation.item.create", "item": user_text(f"{name} turn {turn}")}
                )
                await client.send({"type": "response.create"})
                events = await client.until("response.done")
            return final_text(events)

    async def scenario() -> list[str]:
        return list(await asyncio.gather(*(one(f"client{n}") for n in range(4))))

    assert run(scenario()) == [f"Echo: client{n} turn 1" for n in range(4)]


def test_stop_closes_open_connections_cleanly() -> None:
    server = EmbeddedServer(pace=0).start()

    async def scenario() -> int | None:
        async with await raw_connect(server) as connection:
            await raw_next(connection)
            await asyncio.get_running_loop().run_in_executor(None, server.stop)
            with pytest.raises(ConnectionClosed):
                await connection.recv()
            return connection.close_code

    assert run(scenario()) == 1001
    assert not server.running


# The EmbeddedServer object


def test_embedded_server_addresses_and_repr() -> None:
    server = EmbeddedServer(token="secret-token-123", pace=0)
    assert not server.running
    assert "not running" in repr(server)
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    with server:
        assert server.port > 0
        assert server.url == f"ws://127.0.0.1:{server.port}/v1/realtime"
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        assert server.websocket_base_url == f"ws://127.0.0.1:{server.port}/v1"
        assert server.token == "secret-token-123"
        assert server.dialect is Dialect.GA  # like the service: beta clients are refused
        assert "secret-token-123" not in repr(server)
        assert server.url in repr(server)
        with pytest.raises(RuntimeError, match="already running"):
            server.start()
    server.stop()  # a second stop is harmless
    assert not server.running
    with server:  # and it starts again
        assert server.running


def test_tokens_are_random_per_server() -> None:
    first, second = EmbeddedServer(), EmbeddedServer()
    assert first.token != second.token
    assert len(first.token) > 20


def test_constructor_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="pace"):
        EmbeddedServer(pace=-1)
    with pytest.raises(ValueError, match="dialect"):
        EmbeddedServer(dialect="v2")
    with pytest.raises(ValueError, match="unknown responder"):
        EmbeddedServer(responder="gpt")


def test_a_busy_port_is_reported_by_start(fast_server: EmbeddedServer) -> None:
    with pytest.raises(OSError):  # noqa: PT011 - the errno text differs by platform
        EmbeddedServer(port=fast_server.port).start()


def test_a_200_kb_message_gets_a_capped_echo_through_the_sdk() -> None:
    text = " ".join(f"word{n}" for n in range(33_000))  # about 200 KB
    assert len(text) > 200_000

    async def scenario(server: EmbeddedServer) -> list[Event]:
        async with sdk_client(server) as client:
            await text_mode(client)
            await client.send({"type": "conversation.item.create", "item": user_text(text)})
            await client.send({"type": "response.create"})
            return await client.until("response.done")  # every event validated on the way

    with EmbeddedServer(pace=0, responder=EchoResponder(max_words=300)) as server:
        events = run(scenario(server))
    answer = final_text(events)
    assert answer.startswith("Echo:\n\nword0 word1 ")
    assert answer.endswith(
        f"word299\n\n[offline echo truncated after 300 words: {len(text):,} characters received]"
    )
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert "".join(e["delta"] for e in deltas) == answer
    assert len(deltas) < 320
