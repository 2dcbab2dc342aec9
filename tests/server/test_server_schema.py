"""Every event the server sends, in every scenario, validates against the SDK's own types.

Each scenario drives the sans-I/O state (the driver sends exactly what it returns) in both
dialects; every emitted event goes through pydantic validation of the SDK's server-event
union of that dialect (``server_helpers.assert_valid``: full validation, no undeclared
fields beyond those the real service sends). A coverage check makes sure the scenarios
reach every event type the server can emit, so a new event type cannot slip in unchecked.
The end-to-end tests apply the same check to everything they receive over the wire.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable

import pytest
from server_helpers import WEATHER_TOOL, Driven, assert_all_valid, assert_valid, types, user_text

from rt_notebook.protocol.events import Dialect, Event
from rt_notebook.server import PlannedMessage, Responder, ResponseRequest, ScriptedResponder
from rt_notebook.server.admission import Rejected, admit
from rt_notebook.server.driver import _encode as driver_encode
from rt_notebook.server.errors import error_event
from rt_notebook.server.responders import parse_script
from rt_notebook.server.shapes import EncodedEvent
from rt_notebook.server.tone import BEEP_MS

AUDIO_200MS = base64.b64encode(bytes(48 * 200)).decode()


def tools_mode(driven: Driven) -> None:
    if driven.dialect is Dialect.GA:
        driven.session_update(output_modalities=["text"], tools=[WEATHER_TOOL])
    else:
        driven.session_update(modalities=["text"], tools=[WEATHER_TOOL])


def ask(driven: Driven, text: str, **response: object) -> None:
    driven.send({"type": "conversation.item.create", "item": user_text(text)})
    driven.send({"type": "response.create", **({"response": response} if response else {})})


def text_turn(driven: Driven) -> None:
    driven.text_mode()
    ask(driven, "Hello **there**")
    driven.run()


def audio_turn(driven: Driven) -> None:
    ask(driven, "Say something short")
    driven.run()


def function_call_round(driven: Driven) -> None:
    tools_mode(driven)
    ask(driven, "What is the weather in London?")
    done = driven.until("response.function_call_arguments.done")[-1]
    output = {"type": "function_call_output", "call_id": done["call_id"], "output": "Foggy."}
    driven.send({"type": "conversation.item.create", "item": output})
    driven.run()
    driven.send({"type": "response.create"})
    driven.run()


def cancel_before_output(driven: Driven) -> None:
    driven.send({"type": "response.create"}, {"type": "response.cancel"})
    driven.run()


def cancel_mid_text_and_mid_audio(driven: Driven) -> None:
    driven.text_mode()
    ask(driven, "one two three four five")
    driven.until(
        "response.output_text.delta" if driven.dialect is Dialect.GA else "response.text.delta"
    )
    driven.send({"type": "response.cancel"})
    modalities = ["audio"] if driven.dialect is Dialect.GA else ["audio", "text"]
    key = "output_modalities" if driven.dialect is Dialect.GA else "modalities"
    driven.send({"type": "response.create", "response": {key: modalities}})
    driven.tick(3)
    driven.send({"type": "response.cancel"})
    driven.run()


def out_of_band_during_active(driven: Driven) -> None:
    driven.text_mode()
    ask(driven, "main question")
    driven.send(
        {
            "type": "response.create",
            "response": {
                "conversation": "none",
                "metadata": {"purpose": "classify"},
                "input": [user_text("side question")],
            },
        }
    )
    driven.run()


def token_budget(driven: Driven) -> None:
    driven.text_mode()
    key = "max_output_tokens" if driven.dialect is Dialect.GA else "max_response_output_tokens"
    ask(driven, "many words in this reply", **{key: 2})
    driven.run()


def item_operations(driven: Driven) -> None:
    ask(driven, "one two three")
    streamed = driven.run()
    added = (
        "conversation.item.added" if driven.dialect is Dialect.GA else "conversation.item.created"
    )
    user_id = next(e for e in driven.log if e["type"] == added)["item"]["id"]
    item_id = next(e for e in streamed if e["type"] == "response.output_item.done")["item"]["id"]
    driven.send(
        {
            "type": "conversation.item.create",
            "previous_item_id": "root",
            "item": user_text("first"),
        },
        {"type": "conversation.item.retrieve", "item_id": user_id},
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": BEEP_MS,
        },
        {"type": "conversation.item.retrieve", "item_id": item_id},
        {"type": "conversation.item.delete", "item_id": user_id},
        {"type": "conversation.item.delete", "item_id": user_id},
        {
            "type": "conversation.item.create",
            "previous_item_id": "item_nope",
            "item": user_text("x"),
        },
    )


def audio_buffer(driven: Driven) -> None:
    driven.send(
        {"type": "input_audio_buffer.commit"},
        {"type": "input_audio_buffer.append", "audio": AUDIO_200MS},
        {"type": "input_audio_buffer.commit"},
        {"type": "input_audio_buffer.append", "audio": AUDIO_200MS},
        {"type": "input_audio_buffer.clear"},
        {"type": "input_audio_buffer.append", "audio": "not base64!"},
        {"type": "response.create"},
    )
    driven.run()


def error_catalogue(driven: Driven) -> None:
    session = {"type": "realtime", "bogus": 1} if driven.dialect is Dialect.GA else {"bogus": 1}
    wrong_content = "text" if driven.dialect is Dialect.GA else "output_text"
    driven.send(
        "{not json",
        "[]",
        {"type": "nope", "event_id": "e1"},
        {"event_id": "e2"},
        {"type": "session.update", "session": session},
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "assistant",
                "content": [{"type": wrong_content, "text": "x"}],
            },
        },
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "output": "x"},
        },
        {"type": "response.cancel"},
        {"type": "response.create"},
        {"type": "response.create"},
    )
    driven.log.extend(driven.state.receive_bytes(b"\x00"))
    driven.run()


def failing_responder(driven: Driven) -> None:
    driven.send({"type": "response.create"})
    driven.run()


def scripted_turns(driven: Driven) -> None:
    tools_mode(driven)
    ask(driven, "call get_weather")
    driven.run()
    ask(driven, "second")
    driven.run()


class _Broken:
    name = "broken"

    def respond(self, request: ResponseRequest) -> list[PlannedMessage]:
        raise RuntimeError("boom")


SCENARIOS: dict[str, Callable[[Driven], None]] = {
    "text_turn": text_turn,
    "audio_turn": audio_turn,
    "function_call_round": function_call_round,
    "cancel_before_output": cancel_before_output,
    "cancel_mid_text_and_mid_audio": cancel_mid_text_and_mid_audio,
    "out_of_band_during_active": out_of_band_during_active,
    "token_budget": token_budget,
    "item_operations": item_operations,
    "audio_buffer": audio_buffer,
    "error_catalogue": error_catalogue,
    "failing_responder": failing_responder,
    "scripted_turns": scripted_turns,
}
RESPONDERS: dict[str, Callable[[], Responder]] = {
    "failing_responder": _Broken,
    "scripted_turns": lambda: ScriptedResponder(parse_script({"turns": ["one", "two"]})),
}


def run_scenario(name: str, dialect: Dialect) -> list[Event]:
    factory = RESPONDERS.get(name)
    driven = Driven(dialect, responder=factory() if factory else None)
    SCENARIOS[name](driven)
    return driven.log


@pytest.mark.parametrize("dialect", [Dialect.GA, Dialect.BETA])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_event_validates_strictly(name: str, dialect: Dialect) -> None:
    events = run_scenario(name, dialect)
    assert len(events) > 1
    assert_all_valid(events, dialect)


# What each dialect's server can send; the scenarios must reach all of it.
EMITTED = {
    Dialect.GA: {
        "session.created", "session.updated", "error", "rate_limits.updated",
        "conversation.item.added", "conversation.item.done", "conversation.item.retrieved",
        "conversation.item.deleted", "conversation.item.truncated",
        "input_audio_buffer.committed", "input_audio_buffer.cleared",
        "response.created", "response.done", "response.output_item.added",
        "response.output_item.done", "response.content_part.added", "response.content_part.done",
        "response.output_text.delta", "response.output_text.done",
        "response.output_audio.delta", "response.output_audio.done",
        "response.output_audio_transcript.delta", "response.output_audio_transcript.done",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
    },
    Dialect.BETA: {
        "session.created", "session.updated", "error", "rate_limits.updated",
        "conversation.item.created", "conversation.item.retrieved",
        "conversation.item.deleted", "conversation.item.truncated",
        "input_audio_buffer.committed", "input_audio_buffer.cleared",
        "response.created", "response.done", "response.output_item.added",
        "response.output_item.done", "response.content_part.added", "response.content_part.done",
        "response.text.delta", "response.text.done",
        "response.audio.delta", "response.audio.done",
        "response.audio_transcript.delta", "response.audio_transcript.done",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
    },
}  # fmt: skip


@pytest.mark.parametrize("dialect", [Dialect.GA, Dialect.BETA])
def test_scenarios_cover_every_event_type_the_server_emits(dialect: Dialect) -> None:
    emitted = set()
    for name in SCENARIOS:
        emitted |= set(types(run_scenario(name, dialect)))
    assert emitted == EMITTED[dialect]


@pytest.mark.parametrize(
    ("path", "headers", "dialect"),
    [
        ("/v1/realtime", {"Authorization": "Bearer t"}, None),
        ("/v1/realtime?model=m", {}, None),
        ("/v1/realtime?model=m", {"Authorization": "Bearer nope"}, None),
        (
            "/v1/realtime?model=m",
            {"Authorization": "Bearer t", "OpenAI-Beta": "realtime=v1"},
            Dialect.GA,
        ),
    ],
)
def test_admission_errors_validate_too(
    path: str, headers: dict[str, str], dialect: Dialect | None
) -> None:
    verdict = admit(path, headers, token="t", dialect=dialect)
    assert isinstance(verdict, Rejected)
    for wire_dialect in Dialect:
        assert_all_valid([error_event(verdict.error)], wire_dialect)


# What the driver writes: deltas are built from pre-encoded templates, the rest by json.dumps.


def wire_text(event: Event) -> str:
    return driver_encode(event)


@pytest.mark.parametrize("dialect", [Dialect.GA, Dialect.BETA])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_wire_text_is_exactly_the_event(name: str, dialect: Dialect) -> None:
    events = run_scenario(name, dialect)
    for event in events:
        text = wire_text(event)
        assert text == json.dumps(dict(event), ensure_ascii=False, separators=(",", ":"))
        assert_valid(json.loads(text), dialect)


HOSTILE = 'say "quoted" \\ back\\slash\ttab\nnew line \u2028 \x01\x1f ünïcödé 😀 </script> {"a": 1}'


@pytest.mark.parametrize("dialect", [Dialect.GA, Dialect.BETA])
@pytest.mark.parametrize("audio", [False, True])
def test_templated_deltas_encode_any_text(dialect: Dialect, audio: bool) -> None:
    driven = Driven(dialect)
    if not audio:
        driven.text_mode()
    driven.send({"type": "conversation.item.create", "item": user_text(HOSTILE)})
    driven.send({"type": "response.create"})
    events = driven.run()
    templated = [event for event in events if isinstance(event, EncodedEvent)]
    assert len(templated) > 10
    for event in templated:
        assert json.loads(event.text) == event
        assert event.text == json.dumps(dict(event), ensure_ascii=False, separators=(",", ":"))
        assert_valid(json.loads(event.text), dialect)
    streamed = "".join(e["delta"] for e in templated if not e["type"].endswith("audio.delta"))
    assert streamed == f"Echo:\n\n{HOSTILE}"


def test_event_ids_are_unique_and_shaped_like_the_service() -> None:
    events = run_scenario("text_turn", Dialect.GA) + run_scenario("audio_turn", Dialect.GA)
    ids = [event["event_id"] for event in events]
    assert len(set(ids)) == len(ids)
    for event_id in ids:
        assert re.fullmatch(r"event_[A-Za-z0-9]{21}", event_id), event_id
