"""The Chat Completions backend: a local model behind the Realtime protocol.

The pure mapping both ways, then the real ``openai`` SDK's Realtime client against the
embedded server relaying to a stand-in Chat Completions endpoint (tests/chat_standin.py)
on 127.0.0.1: every event the client receives is validated against the SDK's models.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from rt_notebook.protocol.events import Dialect
from rt_notebook.redaction import scrub
from rt_notebook.server import ChatResponder, EmbeddedServer
from rt_notebook.server.chat_mapping import ChunkReader, chat_messages, chat_request
from rt_notebook.server.cli import main
from rt_notebook.server.live import CallDelta, Finished, TextDelta, UsageReport
from rt_notebook.server.responders import ResponseRequest
from tests.chat_standin import MODEL, ChatStandIn, Reply
from tests.server.server_helpers import (
    WEATHER_TOOL,
    Client,
    run,
    sdk_client,
    text_mode,
    types,
    user_text,
)
from tests.timing import within

# The mapping (pure)


def _request(context: list[dict[str, Any]], **fields: Any) -> ResponseRequest:
    settings: dict[str, Any] = {
        "instructions": "",
        "tools": (),
        "tool_choice": "auto",
        "output_modalities": ("text",),
    }
    settings.update(fields)
    return ResponseRequest(context=context, **settings)


def test_every_item_type_becomes_a_chat_message_in_order() -> None:
    context = [
        {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "S"}]},
        user_text("hello"),
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "hi"}],
        },
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"a":1}'},
        {"type": "function_call", "call_id": "c2", "name": "g", "arguments": ""},
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
        {"type": "function_call_output", "call_id": "c2", "output": "two"},
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_audio", "audio": "AAAA", "transcript": "spoken"}],
        },
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_audio", "transcript": None}],
        },
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": "data:image/png;base64,AA"},
            ],
        },
    ]
    assert chat_messages("Be brief.", context) == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "S"},
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "hi"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
                {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": "two"},
        {"role": "user", "content": "spoken"},
        {"role": "assistant", "content": "(audio without a transcript: this model hears no audio)"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
            ],
        },
    ]


def test_empty_instructions_send_no_system_message() -> None:
    assert chat_messages("  ", [user_text("x")]) == [{"role": "user", "content": "x"}]


def test_request_carries_tools_choice_and_budget() -> None:
    params = chat_request(
        _request(
            [user_text("x")],
            tools=(WEATHER_TOOL,),
            tool_choice={"type": "function", "name": "get_weather"},
            max_output_tokens=5,
        ),
        "m",
    )
    assert params["model"] == "m"
    assert params["stream"] is True
    assert params["max_tokens"] == 5
    assert params["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": WEATHER_TOOL["description"],
                "parameters": WEATHER_TOOL["parameters"],
            },
        }
    ]
    assert params["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    # tool_choice "none" sends no tools at all (some servers reject the choice)
    assert "tools" not in chat_request(_request([], tools=(WEATHER_TOOL,), tool_choice="none"), "m")
    assert "max_tokens" not in chat_request(_request([]), "m")


def test_chunks_become_updates() -> None:
    reader = ChunkReader()
    text = {"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]}
    call = {
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {"index": 1, "id": "c", "function": {"name": "f", "arguments": "{"}}
                    ]
                },
            }
        ]
    }
    end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}
    usage = {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}
    assert reader.read(text) == [TextDelta("Hi")]
    assert reader.read(call) == [CallDelta(index=1, arguments="{", call_id="c", name="f")]
    assert reader.read(end) == []  # held until the stream ends: usage comes after it
    assert reader.read(usage) == [UsageReport(3, 4)]
    assert reader.close() == [Finished("length")]
    assert reader.close() == []
    assert ChunkReader().close() == [Finished("stop")]


# The backend against the stand-in, through the SDK's Realtime client


@pytest.fixture(scope="module")
def standin() -> Iterator[ChatStandIn]:
    with ChatStandIn() as server:
        yield server


@pytest.fixture
def chat(standin: ChatStandIn) -> Iterator[tuple[EmbeddedServer, ChatStandIn]]:
    standin.requests.clear()
    standin.replies.clear()
    standin.hung_up.clear()
    with EmbeddedServer(responder=ChatResponder(standin.base_url, MODEL), pace=0) as server:
        yield server, standin


async def _turn(client: Client, text: str, **response: Any) -> list[dict[str, Any]]:
    await client.send({"type": "conversation.item.create", "item": user_text(text)})
    await client.send({"type": "response.create", **({"response": response} if response else {})})
    return await client.until("response.done")


def _done(events: list[dict[str, Any]]) -> dict[str, Any]:
    (done,) = [event for event in events if event["type"] == "response.done"]
    return done["response"]  # type: ignore[no-any-return]


def _text(events: list[dict[str, Any]]) -> str:
    return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")


def test_text_turn_streams_the_model_answer(chat: tuple[EmbeddedServer, ChatStandIn]) -> None:
    server, standin = chat

    async def scenario() -> list[dict[str, Any]]:
        async with sdk_client(server) as client:
            await text_mode(client, instructions="You are terse.")
            return await _turn(client, "hello there friend")

    events = run(scenario())
    assert _text(events) == "You said: hello there friend"
    assert types(events).count("response.output_text.delta") == 5  # one per streamed chunk
    response = _done(events)
    assert response["status"] == "completed"
    assert response["output"][0]["content"][0]["text"] == "You said: hello there friend"
    assert response["usage"]["input_tokens"] == 11
    assert response["usage"]["output_tokens"] == 7
    (request,) = standin.requests
    assert request["body"]["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hello there friend"},
    ]
    assert request["body"]["model"] == MODEL
    assert request["body"]["stream"] is True


def test_session_starts_without_instructions(chat: tuple[EmbeddedServer, ChatStandIn]) -> None:
    server, standin = chat

    async def scenario() -> list[dict[str, Any]]:
        async with sdk_client(server) as client:
            assert client.received[0]["session"]["instructions"] == ""
            await text_mode(client)
            first = await _turn(client, "one")
            return first + await _turn(client, "two")

    events = run(scenario())
    assert types(events).count("response.done") == 2
    # the second request carries the whole conversation, with no system message
    assert standin.requests[1]["body"]["messages"] == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "You said: one"},
        {"role": "user", "content": "two"},
    ]


def test_tool_round(chat: tuple[EmbeddedServer, ChatStandIn]) -> None:
    server, standin = chat
    standin.replies.append(Reply(text="Let me check.", calls=[("get_weather", '{"city": "Oslo"}')]))

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with sdk_client(server) as client:
            await text_mode(client, tools=[WEATHER_TOOL])
            first = await _turn(client, "weather in Oslo?")
            call = _done(first)["output"][1]
            output = {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}
            await client.send({"type": "conversation.item.create", "item": output})
            await client.send({"type": "response.create"})
            return first, await client.until("response.done")

    first, second = run(scenario())
    response = _done(first)
    assert response["status"] == "completed"
    message, call = response["output"]
    assert message["content"][0]["text"] == "Let me check."
    assert call["type"] == "function_call"
    assert call["name"] == "get_weather"
    assert call["call_id"] == "call_standin_0"
    assert json.loads(call["arguments"]) == {"city": "Oslo"}
    pieces = [e["delta"] for e in first if e["type"] == "response.function_call_arguments.delta"]
    assert "".join(pieces) == '{"city": "Oslo"}'
    assert len(pieces) == 2
    assert _text(second) == "The tool said: sunny"
    body = standin.requests[1]["body"]
    assert body["tools"][0]["function"]["name"] == "get_weather"
    assert body["messages"][-3:] == [
        {"role": "assistant", "content": "Let me check."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_standin_0",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_standin_0", "content": "sunny"},
    ]


def test_cancel_mid_stream_closes_the_http_stream(
    chat: tuple[EmbeddedServer, ChatStandIn],
) -> None:
    server, standin = chat
    standin.replies.append(Reply(text="one two three four five six", stall_after=3))

    async def scenario() -> list[dict[str, Any]]:
        async with sdk_client(server) as client:
            await text_mode(client)
            await client.send({"type": "conversation.item.create", "item": user_text("go")})
            await client.send({"type": "response.create"})
            events = await client.until("response.output_text.delta", count=2)
            await client.send({"type": "response.cancel"})
            events += await client.until("response.done")
            closed = await asyncio.to_thread(standin.hung_up.wait, within(20))
            assert closed, "the stand-in never saw its stream closed"
            return events + await _turn(client, "again")  # the session goes on

    events = run(scenario())
    first, second = [e["response"] for e in events if e["type"] == "response.done"]
    assert first["status"] == "cancelled"
    assert first["output"][0]["status"] == "incomplete"
    assert first["output"][0]["content"][0]["text"] == "one two"
    assert second["status"] == "completed"


def test_cancel_before_the_first_token(chat: tuple[EmbeddedServer, ChatStandIn]) -> None:
    server, standin = chat
    standin.replies.append(Reply(text="never sent", stall_after=0))

    async def scenario() -> list[dict[str, Any]]:
        async with sdk_client(server) as client:
            await text_mode(client)
            await client.send({"type": "conversation.item.create", "item": user_text("go")})
            await client.send({"type": "response.create"})
            events = await client.until("response.created")
            await asyncio.to_thread(standin.wait_requests, 1)  # the backend is asked
            await client.send({"type": "response.cancel"})
            return events + await client.until("response.done")

    response = _done(run(scenario()))
    assert response["status"] == "cancelled"
    assert response["output"] == []
    assert standin.hung_up.wait(within(20))


def test_a_client_that_goes_away_stops_the_backend(
    chat: tuple[EmbeddedServer, ChatStandIn],
) -> None:
    server, standin = chat
    standin.replies.append(Reply(text="one two three four", stall_after=2))

    async def scenario() -> None:
        async with sdk_client(server) as client:
            await text_mode(client)
            await client.send({"type": "conversation.item.create", "item": user_text("go")})
            await client.send({"type": "response.create"})
            await client.until("response.output_text.delta")
        # the websocket is closed here, mid-answer

    run(scenario())
    assert standin.hung_up.wait(within(20))


def test_length_finish_is_incomplete(chat: tuple[EmbeddedServer, ChatStandIn]) -> None:
    server, standin = chat
    standin.replies.append(Reply(text="cut short", finish="length"))

    async def scenario() -> list[dict[str, Any]]:
        async with sdk_client(server) as client:
            await text_mode(client)
            return await _turn(client, "long please", max_output_tokens=2)

    response = _done(run(scenario()))
    assert response["status"] == "incomplete"
    assert response["status_details"] == {"type": "incomplete", "reason": "max_output_tokens"}
    assert response["output"][0]["status"] == "incomplete"
    assert standin.requests[0]["body"]["max_tokens"] == 2


def test_audio_request_is_answered_in_text_with_a_notice(
    chat: tuple[EmbeddedServer, ChatStandIn],
) -> None:
    server, _ = chat

    async def scenario() -> list[dict[str, Any]]:
        async with sdk_client(server) as client:  # the session's default is audio output
            return await _turn(client, "speak")

    events = run(scenario())
    assert not [e for e in events if e["type"].startswith("response.output_audio")]
    assert _text(events).startswith("(This local model answers in text only")
    assert _text(events).endswith("You said: speak")


def test_out_of_band_response_reads_only_its_input(
    chat: tuple[EmbeddedServer, ChatStandIn],
) -> None:
    server, standin = chat

    async def scenario() -> list[dict[str, Any]]:
        async with sdk_client(server) as client:
            await text_mode(client)
            await _turn(client, "in the conversation")
            await client.send(
                {
                    "type": "response.create",
                    "response": {
                        "conversation": "none",
                        "instructions": "Summarise.",
                        "input": [user_text("only this")],
                    },
                }
            )
            return await client.until("response.done")

    response = _done(run(scenario()))
    assert response["conversation_id"] is None
    assert standin.requests[1]["body"]["messages"] == [
        {"role": "system", "content": "Summarise."},
        {"role": "user", "content": "only this"},
    ]


def test_a_stream_cut_mid_answer_fails_the_response(
    chat: tuple[EmbeddedServer, ChatStandIn],
) -> None:
    server, standin = chat
    standin.replies.append(Reply(text="one two three four", drop_after=3))

    async def scenario() -> list[dict[str, Any]]:
        async with sdk_client(server) as client:
            await text_mode(client)
            return await _turn(client, "go") + await _turn(client, "again")

    events = run(scenario())
    (error,) = [e["error"] for e in events if e["type"] == "error"]
    assert error["code"] == "chat_stream_cut"
    first, second = [e["response"] for e in events if e["type"] == "response.done"]
    assert first["status"] == "failed"
    assert first["output"][0]["status"] == "incomplete"
    assert first["output"][0]["content"][0]["text"] == "one two"  # what did arrive stays
    assert second["status"] == "completed"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("case", "code", "words"),
    [
        ("unreachable", "chat_endpoint_unreachable", "Cannot reach"),
        ("bad model", "chat_model_not_found", "no model 'no-such-model'"),
        ("401", "chat_endpoint_unauthorized", "RT_NOTEBOOK_CHAT_API_KEY"),
        ("400", "chat_request_rejected", "rejected the request (HTTP 400)"),
        ("500", "chat_endpoint_error", "failed (HTTP 500)"),
        ("garbage", "chat_endpoint_error", "not a Chat Completions stream"),
    ],
)
def test_endpoint_errors_fail_the_response_and_the_session_goes_on(
    standin: ChatStandIn, case: str, code: str, words: str
) -> None:
    standin.replies.clear()
    base_url, model = standin.base_url, MODEL
    if case == "unreachable":
        base_url = f"http://127.0.0.1:{_free_port()}/v1"
    elif case == "bad model":
        model = "no-such-model"
    elif case == "garbage":
        standin.replies.append(Reply(garbage=True))
    else:
        standin.replies.append(Reply(status=int(case), error="the endpoint's own words"))

    async def scenario(server: EmbeddedServer) -> list[dict[str, Any]]:
        async with sdk_client(server) as client:
            await text_mode(client)
            events = await _turn(client, "hello")
            if case not in ("unreachable", "bad model"):
                events += await _turn(client, "still there?")  # the next one works
            return events

    with EmbeddedServer(responder=ChatResponder(base_url, model), pace=0) as server:
        events = run(scenario(server))
    (error,) = [e["error"] for e in events if e["type"] == "error"]
    assert error["code"] == code
    assert words in error["message"]
    if case in ("401", "400", "500"):
        assert "the endpoint's own words" in error["message"]
    responses = [e["response"] for e in events if e["type"] == "response.done"]
    assert responses[0]["status"] == "failed"
    assert responses[0]["status_details"]["error"]["code"] == code
    if len(responses) > 1:
        assert responses[1]["status"] == "completed"


def test_key_comes_from_the_environment_and_is_scrubbed(
    standin: ChatStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-local-chat-key-0123456789abcdef"
    monkeypatch.setenv("RT_NOTEBOOK_CHAT_API_KEY", key)
    standin.requests.clear()

    async def scenario(server: EmbeddedServer) -> None:
        async with sdk_client(server) as client:
            await text_mode(client)
            await _turn(client, "hi")

    responder = ChatResponder(standin.base_url, MODEL)
    with EmbeddedServer(responder=responder, pace=0) as server:
        run(scenario(server))
        assert key not in repr(server)
        assert key not in repr(responder)
    assert standin.requests[0]["headers"]["authorization"] == f"Bearer {key}"
    assert key not in scrub(f"oops {key}")


def test_paced_server_streams_too(standin: ChatStandIn) -> None:
    async def scenario(server: EmbeddedServer) -> list[dict[str, Any]]:
        async with sdk_client(server, Dialect.BETA) as client:
            await text_mode(client)
            return await _turn(client, "beta and paced")

    responder = ChatResponder(standin.base_url, MODEL)
    with EmbeddedServer(responder=responder, pace=0.01, dialect="beta") as server:
        events = run(scenario(server))
    deltas = [e["delta"] for e in events if e["type"] == "response.text.delta"]
    assert "".join(deltas) == "You said: beta and paced"


def test_a_restarted_server_asks_again(standin: ChatStandIn) -> None:
    """The backend's HTTP client belongs to the loop that made it; a restart makes another."""

    async def scenario(server: EmbeddedServer) -> str:
        async with sdk_client(server) as client:
            await text_mode(client)
            return _text(await _turn(client, "ping"))

    server = EmbeddedServer(responder=ChatResponder(standin.base_url, MODEL), pace=0)
    for _ in range(2):
        with server:
            assert run(scenario(server)) == "You said: ping"


def test_cli_needs_url_and_model(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--backend", "chat", "--chat-model", "m"])
    assert "--chat-base-url" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--chat-model", "m"])
    assert "need --backend chat" in capsys.readouterr().err


def test_cli_says_which_model_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    from rt_notebook.server import DriverConfig
    from rt_notebook.server.cli import how_to_connect

    monkeypatch.setenv("RT_NOTEBOOK_CHAT_API_KEY", "sk-never-printed-0123456789")
    responder = ChatResponder("http://127.0.0.1:11434/v1/", "llama3")
    text = how_to_connect(DriverConfig(token="tok", responder=responder), "127.0.0.1:8765")
    assert "local model llama3 via http://127.0.0.1:11434/v1" in text
    assert "sk-never-printed" not in text


# The live path of the connection state, driven by hand (no sockets)


class HandFed:
    """A live responder whose updates the test feeds itself."""

    name = "hand-fed"

    def describe(self) -> str:
        return "updates fed by the test"

    def prepare(self, request: ResponseRequest) -> ResponseRequest:
        return request

    async def stream(self, prepared: Any) -> Any:  # never iterated here
        raise NotImplementedError
        yield


def test_live_state_sends_what_arrived_and_waits_for_the_rest() -> None:
    from tests.server.server_helpers import Driven, assert_all_valid

    driven = Driven(responder=HandFed())  # type: ignore[arg-type]
    driven.text_mode()
    driven.send({"type": "conversation.item.create", "item": user_text("hi")})
    created = driven.send({"type": "response.create"})
    assert types(created) == ["response.created"]
    [(response_id, prepared)] = driven.state.take_live_starts()
    assert prepared.context[-1]["content"][0]["text"] == "hi"
    driven.tick(2)  # thinks, then waits: nothing has arrived
    assert driven.state.waiting
    driven.state.feed(response_id, [TextDelta("Hel"), TextDelta("lo")])
    assert not driven.state.waiting
    out = driven.tick()
    assert types(out).count("response.output_text.delta") == 2  # both at once
    assert "response.output_text.done" not in types(out)  # more may come
    assert driven.state.waiting
    driven.state.feed(response_id, [CallDelta(0, '{"a":', "c9", "f"), CallDelta(0, "1}")])
    driven.state.feed(response_id, [UsageReport(5, 6), Finished("tool_calls")])
    out = driven.run()
    done = _done(out)
    assert done["status"] == "completed"
    assert [item["type"] for item in done["output"]] == ["message", "function_call"]
    assert done["output"][0]["content"][0]["text"] == "Hello"
    assert done["output"][1]["arguments"] == '{"a":1}'
    assert done["usage"]["total_tokens"] == 11
    assert_all_valid(driven.log, Dialect.GA)
    driven.state.feed(response_id, [TextDelta("late")])  # after the end: ignored
    assert driven.run() == []


def test_live_state_reports_a_failure_once() -> None:
    from rt_notebook.server.errors import ErrorInfo
    from tests.server.server_helpers import Driven, assert_all_valid

    driven = Driven(responder=HandFed())  # type: ignore[arg-type]
    driven.text_mode()
    driven.send({"type": "conversation.item.create", "item": user_text("hi")})
    driven.send({"type": "response.create"})
    [(response_id, _)] = driven.state.take_live_starts()
    driven.state.feed(response_id, [TextDelta("partial")])
    driven.state.fail(response_id, ErrorInfo(code="x", message="it broke", type="server_error"))
    out = driven.run()
    assert types(out).count("error") == 1
    done = _done(out)
    assert done["status"] == "failed"
    assert done["status_details"] == {
        "type": "failed",
        "error": {"type": "server_error", "code": "x", "message": "it broke"},
    }
    assert_all_valid(driven.log, Dialect.GA)
