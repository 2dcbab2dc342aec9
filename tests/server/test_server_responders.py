"""Tests of the offline responders, the function-call rule and the beep generator."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from server_helpers import WEATHER_TOOL, user_text

from rt_notebook.protocol.events import Event
from rt_notebook.server import (
    EchoResponder,
    EmbeddedServer,
    PlannedCall,
    PlannedMessage,
    ResponseRequest,
    ScriptedResponder,
    ScriptError,
    load_script,
    make_responder,
)
from rt_notebook.server.plan import split_text
from rt_notebook.server.responders import echo_reply, parse_script
from rt_notebook.server.tone import BEEP_MS, SAMPLE_RATE, beep
from rt_notebook.server.toolcall import choose_call, fill_arguments, tool_requested


def request(
    *context: Event, tools: tuple[Event, ...] = (), tool_choice: object = "auto"
) -> ResponseRequest:
    return ResponseRequest(
        context=context,
        instructions="",
        tools=tools,
        tool_choice=tool_choice,
        output_modalities=("text",),
    )


def call_and_result(name: str, output: str) -> tuple[Event, Event]:
    call = {"type": "function_call", "name": name, "call_id": "call_1", "arguments": "{}"}
    result = {"type": "function_call_output", "call_id": "call_1", "output": output}
    return call, result


# Echo


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("Hello **bold** and `code`", "Echo: Hello **bold** and `code`"),
        ("  padded  ", "Echo: padded"),
        ("# Title", "Echo:\n\n# Title"),
        ("- one\n- two", "Echo:\n\n- one\n- two"),
        ("```python\nprint(1)\n```", "Echo:\n\n```python\nprint(1)\n```"),
        ("| a | b |\n|---|---|", "Echo:\n\n| a | b |\n|---|---|"),
        ("> quoted", "Echo:\n\n> quoted"),
        ("1. first", "Echo:\n\n1. first"),
        ("", "Echo: (nothing to echo yet)"),
        (None, "Echo: (nothing to echo yet)"),
    ],
)
def test_echo_reply_keeps_markdown_intact(text: str | None, reply: str) -> None:
    assert echo_reply(text) == reply


def test_word_deltas_concatenate_back_exactly() -> None:
    text = "Echo:\n\n- one\n-  two  \n\n```\ncode\n```  "
    deltas = split_text(text)
    assert "".join(deltas) == text
    assert deltas[:3] == ["Echo:", "\n\n-", " one"]
    assert deltas[-1] == "  "
    assert split_text("") == []


def test_echo_answers_the_last_user_message() -> None:
    reply = EchoResponder().respond(request(user_text("first"), user_text("second")))
    assert reply == [PlannedMessage("Echo: second")]


def test_echo_reports_tool_results_after_a_call() -> None:
    call, result = call_and_result("get_weather", "Foggy, 12 C.")
    reply = EchoResponder().respond(
        request(user_text("Weather in London?"), call, result, tools=(WEATHER_TOOL,))
    )
    assert reply == [PlannedMessage("get_weather returned: Foggy, 12 C.")]


# The function-call rule


def test_the_natural_weather_example_calls_get_weather_for_london() -> None:
    reply = EchoResponder().respond(
        request(user_text("What is the weather in London?"), tools=(WEATHER_TOOL,))
    )
    assert reply == [PlannedCall("get_weather", '{"city":"London"}')]


@pytest.mark.parametrize(
    ("name", "message", "expected"),
    [
        ("get_weather", "How is the weather today?", True),
        ("get_weather", "What time is it?", False),
        ("get_stock_price", "What is the stock price of ACME?", True),
        ("get_stock_price", "What is the price of tea?", False),
        ("listOrders", "Show my orders", True),
        ("search", "please search this", True),
        ("lookup-user", "Who is the user Bob?", True),
    ],
)
def test_tool_requested_by_the_words_of_its_name(name: str, message: str, expected: bool) -> None:
    assert tool_requested(name, message) is expected


def test_explicit_call_form_wins_with_its_json_arguments() -> None:
    call = choose_call('call get_weather {"city": "Paris", "unit": "C"}', [WEATHER_TOOL], "auto")
    assert call == PlannedCall("get_weather", '{"city":"Paris","unit":"C"}')
    filled = choose_call("call get_weather for Oslo", [WEATHER_TOOL], "auto")
    assert filled == PlannedCall("get_weather", '{"city":"Oslo"}')
    assert choose_call("call unknown_tool {}", [WEATHER_TOOL], "auto") is None


@pytest.mark.parametrize(
    ("tool_choice", "message", "expected"),
    [
        ("none", "What is the weather in London?", None),
        ("required", "Tell me a joke about Rome", "get_weather"),
        ({"type": "function", "name": "get_weather"}, "Hello there", "get_weather"),
        ("get_weather", "Hello there", "get_weather"),  # beta names the function directly
        ("auto", "Tell me a joke", None),
    ],
)
def test_tool_choice(tool_choice: object, message: str, expected: str | None) -> None:
    call = choose_call(message, [WEATHER_TOOL], tool_choice)
    assert (call.name if call else None) == expected


def test_arguments_follow_the_schema() -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "alerts": {"type": "boolean"},
            "extra": {"type": "string"},
            "tags": {"type": "array"},
        },
        "required": ["city", "days", "tags"],
    }
    message = "Forecast for New York for 3 days in fahrenheit, yes please"
    assert fill_arguments(schema, message) == {
        "city": "New York",
        "days": 3,
        "unit": "fahrenheit",
        "alerts": True,
        "tags": [],
    }
    assert fill_arguments(schema, "forecast please") == {"city": "please", "days": 0, "tags": []}


# Scripted


def test_scripted_rules_turns_and_fallback(tmp_path: Path) -> None:
    script_file = tmp_path / "script.json"
    script_file.write_text(
        json.dumps(
            {
                "rules": [
                    {"match": r"\bhelp\b", "reply": "You asked: {input}"},
                    {
                        "match": "^oslo$",
                        "call": {"name": "get_weather", "arguments": {"city": "Oslo"}},
                    },
                    {"match": "get_weather returned: (.*)", "reply": "Weather: {input}"},
                ],
                "turns": ["First answer.", {"reply": "Second answer."}],
                "fallback": "No scripted answer for '{input}'.",
            }
        )
    )
    responder = ScriptedResponder.from_file(script_file)
    first = user_text("hello")
    second = user_text("and again")
    assert responder.respond(request(first)) == [PlannedMessage("First answer.")]
    assert responder.respond(request(first, second)) == [PlannedMessage("Second answer.")]
    third = request(first, second, user_text("more"))
    assert responder.respond(third) == [PlannedMessage("No scripted answer for 'more'.")]
    assert responder.respond(request(user_text("HELP me"))) == [
        PlannedMessage("You asked: HELP me")
    ]
    assert responder.respond(request(user_text("Oslo"))) == [
        PlannedCall("get_weather", '{"city": "Oslo"}')
    ]
    call, result = call_and_result("get_weather", "sunny")
    assert responder.respond(request(user_text("Oslo"), call, result)) == [
        PlannedMessage("Weather: get_weather returned: sunny")
    ]


def test_scripted_uses_the_tool_rule_and_falls_back_to_echo() -> None:
    responder = ScriptedResponder(parse_script(["Only turn."]))
    weather = request(user_text("Weather in Lima?"), tools=(WEATHER_TOOL,))
    assert responder.respond(weather) == [PlannedCall("get_weather", '{"city":"Lima"}')]
    two = request(user_text("a"), user_text("b"))
    assert responder.respond(two) == [PlannedMessage("Echo: b")]


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("{nope", "not valid JSON"),
        ('{"turns": "x"}', "turns must be a list"),
        ('{"rules": [{"reply": "x"}]}', "'match'"),
        ('{"rules": [{"match": "(", "reply": "x"}]}', "invalid regular expression"),
        ('{"turns": [{"reply": 1}]}', "turns[0]"),
        ('{"turns": [{"call": {"name": "f", "arguments": []}}]}', "call must be"),
        ('{"answers": []}', "unknown keys"),
        ('"text"', "top level"),
    ],
)
def test_bad_scripts_are_rejected_with_where_and_why(
    tmp_path: Path, content: str, complaint: str
) -> None:
    script_file = tmp_path / "bad.json"
    script_file.write_text(content)
    with pytest.raises(ScriptError, match=complaint[:12].replace("(", r"\(").replace("[", r"\[")):
        load_script(script_file)


def test_make_responder(tmp_path: Path) -> None:
    assert make_responder("echo").name == "echo"
    echo = EchoResponder()
    assert make_responder(echo) is echo
    script_file = tmp_path / "s.json"
    script_file.write_text("[]")
    assert make_responder("scripted", script_file).name == "scripted"
    assert make_responder("echo", script_file).name == "scripted"  # a script implies scripted
    with pytest.raises(ValueError, match="needs script"):
        make_responder("scripted")
    with pytest.raises(ValueError, match="unknown responder"):
        make_responder("gpt")
    with pytest.raises(ScriptError, match="cannot read"):
        make_responder("scripted", tmp_path / "missing.json")


# Beeps


def test_beeps_are_short_audible_pcm16() -> None:
    raw = base64.b64decode(beep(0))
    samples = struct.unpack(f"<{len(raw) // 2}h", raw)
    assert len(samples) == SAMPLE_RATE * BEEP_MS // 1000
    assert max(samples) > 3000  # audible
    assert samples[0] == 0  # faded in: no click
    assert beep(0) == beep(5)  # five pitches, repeating
    assert beep(0) != beep(1)


# A very long message: the echo stops after max_words with a note


def test_a_long_echo_is_cut_after_max_words_with_a_note() -> None:
    text = " ".join(f"w{n}" for n in range(1000))
    reply = echo_reply(text, max_words=10)
    assert reply == (
        "Echo:\n\nw0 w1 w2 w3 w4 w5 w6 w7 w8 w9\n\n"
        f"[offline echo truncated after 10 words: {len(text):,} characters received]"
    )
    assert echo_reply("just three words", max_words=3) == "Echo: just three words"
    assert echo_reply("just three words  \n", max_words=3) == "Echo: just three words"


def test_a_cut_inside_a_code_fence_closes_it() -> None:
    text = "Look:\n\n```python\n" + "\n".join(f"x{n} = {n}" for n in range(100)) + "\n```\n"
    reply = echo_reply(text, max_words=8)
    body, note = reply.rsplit("\n\n", 1)
    assert body.endswith("\n```")
    assert body.count("```") == 2
    assert note.startswith("[offline echo truncated after 8 words")


@pytest.mark.parametrize(("pace", "words"), [(0.02, 6000), (0.05, 2400), (0.0, None)])
def test_the_embedded_servers_echo_streams_two_minutes_at_most(
    pace: float, words: int | None
) -> None:
    responder = EmbeddedServer(pace=pace).responder
    assert isinstance(responder, EchoResponder)
    assert responder.max_words == words
    with pytest.raises(ValueError, match="max_words"):
        EchoResponder(max_words=0)
