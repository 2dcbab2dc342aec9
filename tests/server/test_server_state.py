"""Sans-I/O tests of the server's connection state machine: no sockets, no threads."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence

import pytest
from server_helpers import WEATHER_TOOL, Driven, assert_all_valid, types, user_text

from rt_notebook.protocol.events import Dialect, Event
from rt_notebook.server import PlannedMessage, ResponseRequest
from rt_notebook.server.tone import BEEP_MS, beep_bytes


def only(events: Sequence[Event], event_type: str) -> list[Event]:
    return [event for event in events if event["type"] == event_type]


def one(events: Sequence[Event], event_type: str) -> Event:
    (event,) = only(events, event_type)
    return event


# Connection start and the session


def test_session_created_is_first_and_says_offline() -> None:
    driven = Driven(model="gpt-realtime-mini")
    (created,) = driven.log
    assert created["type"] == "session.created"
    session = created["session"]
    assert session["type"] == "realtime"
    assert session["model"] == "gpt-realtime-mini"
    assert "offline" in session["instructions"]
    assert "not from a language model" in session["instructions"]
    assert session["expires_at"] == 1_700_000_000 + 3600


def test_ids_are_shaped_like_the_service() -> None:
    driven = Driven()
    driven.session_update(output_modalities=["text"], tools=[WEATHER_TOOL])
    driven.send({"type": "conversation.item.create", "item": user_text("weather in Oslo?")})
    driven.send({"type": "response.create"})
    driven.run()
    text = json.dumps(driven.log)
    for prefix in ("event", "item", "resp", "conv", "sess"):
        found = re.findall(rf': "({prefix}_[A-Za-z0-9]*)"', text)  # values, not keys
        assert found, prefix
        assert all(re.fullmatch(rf"{prefix}_[A-Za-z0-9]{{21}}", value) for value in found)
    calls = re.findall(r'"call_id": "([^"]*)"', text)
    assert calls
    assert all(re.fullmatch(r"call_[A-Za-z0-9]{16}", value) for value in calls)


def test_session_update_merges_and_fills_service_defaults() -> None:
    driven = Driven()
    (updated,) = driven.session_update(
        instructions="Be brief.",
        output_modalities=["text"],
        audio={
            "input": {
                "transcription": {"model": "gpt-4o-mini-transcribe"},
                "turn_detection": {"type": "semantic_vad", "interrupt_response": False},
                "noise_reduction": None,
            },
            "output": {"voice": "marin"},
        },
        tracing="auto",
    )
    session = updated["session"]
    assert updated["type"] == "session.updated"
    assert session["instructions"] == "Be brief."
    assert session["output_modalities"] == ["text"]
    assert session["tracing"] == "auto"
    assert session["audio"]["input"]["transcription"] == {
        "model": "gpt-4o-mini-transcribe",
        "language": None,
        "prompt": None,
    }
    assert session["audio"]["input"]["turn_detection"] == {
        "type": "semantic_vad",
        "eagerness": "auto",
        "create_response": True,
        "interrupt_response": False,
    }
    assert session["audio"]["output"] == {
        "format": {"type": "audio/pcm", "rate": 24000},
        "voice": "marin",
        "speed": 1.0,
    }


def test_empty_instructions_keep_the_current_ones_as_the_service_does() -> None:
    driven = Driven()
    driven.session_update(instructions="Keep me.")
    (updated,) = driven.session_update(instructions="")
    assert updated["session"]["instructions"] == "Keep me."


def test_unknown_session_field_rejects_the_whole_update() -> None:
    driven = Driven()
    out = driven.send(
        {
            "type": "session.update",
            "event_id": "client_1",
            "session": {"type": "realtime", "instructions": "new", "bogus_field": 1},
        }
    )
    assert types(out) == ["error"]
    assert out[0]["error"] == {
        "type": "invalid_request_error",
        "code": "unknown_parameter",
        "message": "Unknown parameter: 'session.bogus_field'.",
        "param": "session.bogus_field",
        "event_id": "client_1",
    }
    (later,) = driven.session_update()
    assert later["session"]["instructions"] != "new"


def test_beta_session_update_uses_beta_fields() -> None:
    driven = Driven(Dialect.BETA)
    (updated,) = driven.session_update(
        modalities=["text"], voice="verse", input_audio_transcription={"model": "whisper-1"}
    )
    session = updated["session"]
    assert session["modalities"] == ["text"]
    assert session["voice"] == "verse"
    assert session["input_audio_transcription"]["language"] is None
    assert "type" not in session
    errors = driven.session_update(output_modalities=["text"])
    assert errors[0]["error"]["param"] == "session.output_modalities"


# A text response, in wire order


def test_ga_text_turn_wire_order_and_content() -> None:
    driven = Driven()
    driven.text_mode()
    acks = driven.send(
        {"type": "conversation.item.create", "item": user_text("Hello there")},
        {"type": "response.create"},
    )
    assert types(acks) == ["conversation.item.added", "conversation.item.done", "response.created"]
    created = acks[2]["response"]
    assert created["status"] == "in_progress"
    assert created["output"] == []
    assert created["usage"] is None
    assert created["conversation_id"].startswith("conv_")

    assert driven.tick() == []  # the response thinks for one tick before any output
    streamed = driven.run()
    deltas = only(streamed, "response.output_text.delta")
    assert types(streamed) == [
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * len(deltas),
        "response.output_text.done",
        "response.content_part.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    assert [d["delta"] for d in deltas] == ["Echo:", " Hello", " there"]
    assert all(d["obfuscation"] for d in deltas)
    assert one(streamed, "response.output_text.done")["text"] == "Echo: Hello there"
    user_id = acks[0]["item"]["id"]
    assert one(streamed, "conversation.item.added")["previous_item_id"] == user_id
    done = one(streamed, "response.done")["response"]
    assert done["status"] == "completed"
    assert done["output"][0]["content"] == [{"type": "output_text", "text": "Echo: Hello there"}]
    assert done["usage"]["output_tokens"] == 3
    assert done["usage"]["input_tokens"] >= 2
    assert done["usage"]["total_tokens"] == done["usage"]["input_tokens"] + 3
    assert_all_valid(driven.log, Dialect.GA)


def test_ga_rate_limits_come_one_tick_after_response_done() -> None:
    driven = Driven()
    driven.text_mode()
    driven.send({"type": "conversation.item.create", "item": user_text("hi")})
    driven.send({"type": "response.create"})
    finished = driven.until("response.done")
    assert types(finished)[-1] == "response.done"
    assert types(driven.tick()) == ["rate_limits.updated"]
    assert not driven.state.streaming


def test_beta_text_turn_wire_order() -> None:
    driven = Driven(Dialect.BETA)
    driven.text_mode()
    acks = driven.send(
        {"type": "conversation.item.create", "item": user_text("Hello")},
        {"type": "response.create"},
    )
    assert types(acks) == ["conversation.item.created", "response.created", "rate_limits.updated"]
    assert acks[0]["item"]["object"] == "realtime.item"
    assert acks[1]["response"]["modalities"] == ["text"]
    streamed = driven.run()
    assert "conversation.item.done" not in types(streamed)
    assert types(streamed)[-3:] == [
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
    ]
    assert one(streamed, "response.text.done")["text"] == "Echo: Hello"
    assert one(streamed, "response.output_item.done")["item"]["content"] == [
        {"type": "text", "text": "Echo: Hello"}
    ]
    assert_all_valid(driven.log, Dialect.BETA)


def test_audio_response_interleaves_transcript_and_beeps() -> None:
    driven = Driven()  # the service's default output modality is audio
    driven.send({"type": "conversation.item.create", "item": user_text("Say hi")})
    driven.send({"type": "response.create"})
    streamed = driven.run()
    kinds = [
        t
        for t in types(streamed)
        if t.startswith(("response.output_audio", "response.content_part"))
    ]
    words = ["Echo:", " Say", " hi"]
    pairs = ["response.output_audio_transcript.delta", "response.output_audio.delta"] * len(words)
    assert kinds == [
        "response.content_part.added",
        *pairs,
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
    ]
    transcript = [d["delta"] for d in only(streamed, "response.output_audio_transcript.delta")]
    assert transcript == words
    audio = [base64.b64decode(d["delta"]) for d in only(streamed, "response.output_audio.delta")]
    assert all(len(chunk) == beep_bytes() for chunk in audio)
    assert any(chunk != audio[0] for chunk in audio[1:])  # the pitch changes word by word
    assert one(streamed, "response.content_part.added")["part"] == {
        "type": "audio",
        "transcript": "",
    }
    # Captures: conversation.item.done of an audio message has previous_item_id null.
    assert one(streamed, "conversation.item.done")["previous_item_id"] is None
    usage = one(streamed, "response.done")["response"]["usage"]
    assert usage["output_token_details"]["audio_tokens"] == len(words)
    assert_all_valid(driven.log, Dialect.GA)


# Conversation placement and item events


def test_previous_item_id_places_items() -> None:
    driven = Driven()
    first = driven.send({"type": "conversation.item.create", "item": user_text("A")})[0]
    second = driven.send({"type": "conversation.item.create", "item": user_text("B")})[0]
    assert second["previous_item_id"] == first["item"]["id"]
    at_root = driven.send(
        {"type": "conversation.item.create", "previous_item_id": "root", "item": user_text("C")}
    )[0]
    assert at_root["previous_item_id"] is None
    after_a = driven.send(
        {
            "type": "conversation.item.create",
            "previous_item_id": first["item"]["id"],
            "item": user_text("D"),
        }
    )[0]
    assert after_a["previous_item_id"] == first["item"]["id"]
    texts = [item["content"][0]["text"] for item in driven.state.items]
    assert texts == ["C", "A", "D", "B"]


def test_unknown_previous_item_id_is_an_error_and_adds_nothing() -> None:
    driven = Driven()
    out = driven.send(
        {
            "type": "conversation.item.create",
            "event_id": "mine",
            "previous_item_id": "item_doesnotexist",
            "item": user_text("lost"),
        }
    )
    assert types(out) == ["error"]
    assert out[0]["error"]["param"] == "previous_item_id"
    assert out[0]["error"]["event_id"] == "mine"
    assert "item_doesnotexist" in out[0]["error"]["message"]
    assert driven.state.items == []


def test_retrieve_and_delete_items() -> None:
    driven = Driven()
    item_id = driven.send({"type": "conversation.item.create", "item": user_text("keep")})[0][
        "item"
    ]["id"]
    (retrieved,) = driven.send({"type": "conversation.item.retrieve", "item_id": item_id})
    assert retrieved["type"] == "conversation.item.retrieved"
    assert retrieved["item"]["content"][0]["text"] == "keep"
    (deleted,) = driven.send({"type": "conversation.item.delete", "item_id": item_id})
    assert deleted == {**deleted, "type": "conversation.item.deleted", "item_id": item_id}
    assert driven.state.items == []
    (missing,) = driven.send({"type": "conversation.item.retrieve", "item_id": item_id})
    assert missing["error"]["code"] == "item_retrieve_invalid_item_id"
    (missing,) = driven.send({"type": "conversation.item.delete", "item_id": item_id})
    assert missing["error"]["code"] == "item_delete_invalid_item_id"
    assert_all_valid(driven.log, Dialect.GA)


def test_truncate_keeps_the_words_whose_audio_was_heard() -> None:
    driven = Driven()
    driven.send({"type": "conversation.item.create", "item": user_text("one two three four")})
    driven.send({"type": "response.create"})
    streamed = driven.run()
    item_id = one(streamed, "response.output_item.done")["item"]["id"]
    (truncated,) = driven.send(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 2 * BEEP_MS + BEEP_MS // 2,
        }
    )
    assert truncated["type"] == "conversation.item.truncated"
    assert truncated["audio_end_ms"] == 2 * BEEP_MS + BEEP_MS // 2
    (retrieved,) = driven.send({"type": "conversation.item.retrieve", "item_id": item_id})
    assert retrieved["item"]["content"][0]["transcript"] == "Echo: one"
    (too_far,) = driven.send(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 60_000,
        }
    )
    assert too_far["error"]["param"] == "audio_end_ms"
    user_id = driven.state.items[0]["id"]
    (not_audio,) = driven.send(
        {
            "type": "conversation.item.truncate",
            "item_id": user_id,
            "content_index": 0,
            "audio_end_ms": 0,
        }
    )
    assert not_audio["error"]["param"] == "content_index"
    assert_all_valid(driven.log, Dialect.GA)


# The input audio buffer


def test_audio_buffer_commit_clear_and_empty_commit() -> None:
    driven = Driven()
    (empty,) = driven.send({"type": "input_audio_buffer.commit", "event_id": "c1"})
    assert empty["error"]["code"] == "input_audio_buffer_commit_empty"
    assert empty["error"]["event_id"] == "c1"
    assert "0.00ms" in empty["error"]["message"]

    audio = base64.b64encode(bytes(48 * 200)).decode()  # 200 ms of PCM16 at 24 kHz
    assert driven.send({"type": "input_audio_buffer.append", "audio": audio}) == []
    committed = driven.send({"type": "input_audio_buffer.commit"})
    assert types(committed) == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    assert committed[0]["item_id"] == committed[1]["item"]["id"]
    assert committed[1]["item"]["content"] == [{"type": "input_audio", "transcript": None}]
    (retrieved,) = driven.send(
        {"type": "conversation.item.retrieve", "item_id": committed[0]["item_id"]}
    )
    assert retrieved["item"]["content"][0]["audio"] == audio

    driven.send({"type": "input_audio_buffer.append", "audio": audio})
    assert types(driven.send({"type": "input_audio_buffer.clear"})) == [
        "input_audio_buffer.cleared"
    ]
    (empty_again,) = driven.send({"type": "input_audio_buffer.commit"})
    assert empty_again["error"]["code"] == "input_audio_buffer_commit_empty"
    (bad,) = driven.send({"type": "input_audio_buffer.append", "audio": "***"})
    assert bad["error"]["param"] == "audio"
    assert_all_valid(driven.log, Dialect.GA)


def test_echo_describes_audio_without_transcript() -> None:
    driven = Driven()
    driven.text_mode()
    audio = base64.b64encode(bytes(48 * 1200)).decode()  # 1.2 s
    driven.send({"type": "input_audio_buffer.append", "audio": audio})
    driven.send({"type": "input_audio_buffer.commit"}, {"type": "response.create"})
    streamed = driven.run()
    assert one(streamed, "response.output_text.done")["text"] == "Echo: (audio, 1.20 s)"


# Active responses, cancellation, out-of-band responses


def test_second_response_while_active_is_refused_ga() -> None:
    driven = Driven()
    driven.send({"type": "conversation.item.create", "item": user_text("hi")})
    first = driven.send({"type": "response.create"})
    response_id = first[0]["response"]["id"]
    refused = driven.send({"type": "response.create", "event_id": "again"})
    assert refused == [
        {
            "type": "error",
            "event_id": refused[0]["event_id"],
            "error": {
                "type": "invalid_request_error",
                "code": "conversation_already_has_active_response",
                "message": (
                    f"Conversation already has an active response in progress: {response_id}. "
                    "Wait until the response is finished before creating a new one."
                ),
                "param": None,
                "event_id": "again",
            },
        }
    ]
    driven.run()
    assert types(driven.send({"type": "response.create"})) == ["response.created"]


def test_second_response_while_active_is_refused_beta() -> None:
    driven = Driven(Dialect.BETA)
    driven.send({"type": "response.create"})
    (refused,) = driven.send({"type": "response.create"})
    assert refused["error"]["code"] is None
    assert refused["error"]["message"] == "Conversation already has an active response"


def test_cancel_before_any_output_sends_only_response_done() -> None:
    driven = Driven()
    driven.send({"type": "conversation.item.create", "item": user_text("hi")})
    out = driven.send({"type": "response.create"}, {"type": "response.cancel"})
    assert types(out) == ["response.created", "response.done"]
    done = out[1]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert done["output"] == []
    assert done["usage"]["total_tokens"] == 0
    assert done["usage"]["input_tokens"] == 0
    assert types(driven.run()) == ["rate_limits.updated"]
    assert_all_valid(driven.log, Dialect.GA)


def test_cancel_mid_output_closes_the_item_as_incomplete() -> None:
    driven = Driven()
    driven.text_mode()
    driven.send({"type": "conversation.item.create", "item": user_text("a b c d e f g h")})
    driven.send({"type": "response.create"})
    driven.until("response.output_text.delta")
    driven.tick()  # a second delta
    out = driven.send({"type": "response.cancel"})
    assert types(out) == [
        "response.output_text.done",
        "response.content_part.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
    ]
    assert out[0]["text"] == "Echo: a"
    assert out[3]["item"]["status"] == "incomplete"
    done = out[4]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert done["output"][0]["status"] == "incomplete"
    assert done["usage"]["output_tokens"] == 2
    assert "response.output_text.delta" not in types(driven.run())
    assert driven.state.items[-1]["status"] == "incomplete"
    assert_all_valid(driven.log, Dialect.GA)


def test_cancel_with_nothing_active_is_an_error() -> None:
    driven = Driven()
    (error,) = driven.send({"type": "response.cancel", "event_id": "x"})
    assert error["error"]["code"] == "response_cancel_not_active"
    assert error["error"]["message"] == "Cancellation failed: no active response found"
    assert error["error"]["event_id"] == "x"
    driven.send({"type": "response.create"})
    (unknown,) = driven.send({"type": "response.cancel", "response_id": "resp_unknown"})
    assert unknown["error"]["code"] == "response_cancel_not_active"


def test_out_of_band_response_runs_beside_the_active_one() -> None:
    driven = Driven()
    driven.text_mode()
    driven.send({"type": "conversation.item.create", "item": user_text("in conversation")})
    driven.send({"type": "response.create"})
    items_before = len(driven.state.items)
    out = driven.send(
        {
            "type": "response.create",
            "response": {
                "conversation": "none",
                "metadata": {"topic": "summary"},
                "input": [user_text("side question")],
                "output_modalities": ["text"],
            },
        }
    )
    (created,) = out
    assert created["type"] == "response.created"
    assert created["response"]["conversation_id"] is None
    assert created["response"]["metadata"] == {"topic": "summary"}
    streamed = driven.run()
    dones = only(streamed, "response.done")
    by_metadata = {str(done["response"]["metadata"]): done["response"] for done in dones}
    side = by_metadata["{'topic': 'summary'}"]
    main = by_metadata["None"]
    assert side["conversation_id"] is None
    assert side["output"][0]["content"][0]["text"] == "Echo: side question"
    assert main["output"][0]["content"][0]["text"] == "Echo: in conversation"
    # Only the conversation's response wrote to the conversation.
    added = [event["item"]["id"] for event in only(streamed, "conversation.item.added")]
    assert added == [main["output"][0]["id"]]
    assert len(driven.state.items) == items_before + 1
    assert_all_valid(driven.log, Dialect.GA)


def test_out_of_band_input_may_reference_conversation_items() -> None:
    driven = Driven()
    driven.text_mode()
    item_id = driven.send({"type": "conversation.item.create", "item": user_text("quoted")})[0][
        "item"
    ]["id"]
    driven.send(
        {
            "type": "response.create",
            "response": {
                "conversation": "none",
                "input": [{"type": "item_reference", "id": item_id}],
            },
        }
    )
    streamed = driven.run()
    assert one(streamed, "response.output_text.done")["text"] == "Echo: quoted"
    (error,) = driven.send(
        {
            "type": "response.create",
            "response": {"conversation": "none", "input": [{"type": "item_reference", "id": "x"}]},
        }
    )
    assert error["error"]["param"] == "response.input[0].id"


def test_function_call_round_defers_the_tool_result_until_response_done() -> None:
    driven = Driven()
    driven.session_update(output_modalities=["text"], tools=[WEATHER_TOOL])
    driven.send({"type": "conversation.item.create", "item": user_text("Weather in London?")})
    driven.send({"type": "response.create"})
    streamed = driven.until("response.function_call_arguments.done")
    call = one(streamed, "response.output_item.added")["item"]
    assert call["type"] == "function_call"
    assert call["name"] == "get_weather"
    arguments = one(streamed, "response.function_call_arguments.done")["arguments"]
    assert json.loads(arguments) == {"city": "London"}
    assert "".join(
        d["delta"] for d in only(streamed, "response.function_call_arguments.delta")
    ) == (arguments)
    assert "response.content_part.added" not in types(streamed)

    output = {
        "type": "function_call_output",
        "call_id": call["call_id"],
        "output": "Foggy, 12 C.",
    }
    assert driven.send({"type": "conversation.item.create", "item": output}) == []
    rest = driven.run()
    assert types(rest) == [
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
        "conversation.item.added",
        "conversation.item.done",
        "rate_limits.updated",
    ]
    assert rest[0]["previous_item_id"] is None  # the captured quirk
    assert rest[3]["item"] == {
        "id": rest[3]["item"]["id"],
        "type": "function_call_output",
        "call_id": call["call_id"],
        "output": "Foggy, 12 C.",
    }
    assert rest[3]["previous_item_id"] == call["id"]

    driven.send({"type": "response.create"})
    answer = driven.run()
    assert one(answer, "response.output_text.done")["text"] == "get_weather returned: Foggy, 12 C."
    assert_all_valid(driven.log, Dialect.GA)


def test_tool_choice_none_answers_in_text() -> None:
    driven = Driven()
    driven.session_update(output_modalities=["text"], tools=[WEATHER_TOOL], tool_choice="none")
    driven.send({"type": "conversation.item.create", "item": user_text("Weather in Rome?")})
    driven.send({"type": "response.create"})
    streamed = driven.run()
    assert one(streamed, "response.output_item.added")["item"]["type"] == "message"


def test_per_response_overrides_apply_to_that_response_only() -> None:
    driven = Driven()
    driven.send({"type": "conversation.item.create", "item": user_text("Weather in Paris?")})
    out = driven.send(
        {
            "type": "response.create",
            "response": {
                "output_modalities": ["text"],
                "tools": [WEATHER_TOOL],
                "tool_choice": {"type": "function", "name": "get_weather"},
                "metadata": {"k": "v"},
                "instructions": "Override.",
            },
        }
    )
    assert out[0]["response"]["output_modalities"] == ["text"]
    assert out[0]["response"]["metadata"] == {"k": "v"}
    streamed = driven.run()
    assert one(streamed, "response.function_call_arguments.done")["name"] == "get_weather"
    assert driven.state.session["tools"] == []
    assert driven.state.session["output_modalities"] == ["audio"]


def test_max_output_tokens_ends_the_response_incomplete() -> None:
    driven = Driven()
    driven.text_mode()
    driven.send({"type": "conversation.item.create", "item": user_text("one two three four")})
    driven.send({"type": "response.create", "response": {"max_output_tokens": 2}})
    streamed = driven.run()
    assert len(only(streamed, "response.output_text.delta")) == 2
    done = one(streamed, "response.done")["response"]
    assert done["status"] == "incomplete"
    assert done["status_details"] == {"type": "incomplete", "reason": "max_output_tokens"}
    assert done["output"][0]["status"] == "incomplete"
    assert done["output"][0]["content"][0]["text"] == "Echo: one"


class _BrokenResponder:
    name = "broken"

    def respond(self, request: ResponseRequest) -> list[PlannedMessage]:
        raise RuntimeError("boom")


def test_a_failing_responder_fails_the_response_not_the_connection() -> None:
    driven = Driven(responder=_BrokenResponder())
    out = driven.send({"type": "response.create"})
    assert types(out) == ["response.created", "response.done"]
    done = out[1]["response"]
    assert done["status"] == "failed"
    assert done["status_details"]["error"]["code"] == "responder_error"
    assert types(driven.send({"type": "response.create"}))[0] == "response.created"
    assert_all_valid(driven.log, Dialect.GA)


# Errors of the frames themselves


def test_non_json_binary_and_non_object_frames() -> None:
    driven = Driven()
    (bad_json,) = driven.send("{not json")
    assert bad_json["error"]["code"] == "invalid_json"
    assert bad_json["error"]["event_id"] is None
    (binary,) = driven.state.receive_bytes(b"\x00\x01")
    assert binary["error"]["code"] == "invalid_event"
    (array,) = driven.send("[1, 2]")
    assert array["error"]["code"] == "invalid_type"
    assert_all_valid([bad_json, binary, array], Dialect.GA)


def test_unknown_event_type_lists_the_supported_ones() -> None:
    driven = Driven()
    (error,) = driven.send({"type": "nope", "event_id": "evt_1"})
    assert error["error"]["code"] == "invalid_value"
    assert error["error"]["param"] == "type"
    assert error["error"]["event_id"] == "evt_1"
    assert error["error"]["message"].startswith("Invalid value: 'nope'. Supported values are: ")
    assert "'response.create'" in error["error"]["message"]
    (missing,) = driven.send({"event_id": "evt_2"})
    assert missing["error"]["code"] == "missing_required_parameter"


def test_invalid_content_type_error_overtakes_earlier_acks() -> None:
    """The captured GA behaviour: the error comes first, the other items are still added."""
    driven = Driven()
    out = driven.send(
        {"type": "conversation.item.create", "item": user_text("My name is Alice.")},
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "text", "text": "Nice to meet you."}],
            },
        },
        {"type": "conversation.item.create", "item": user_text("What is my name?")},
        {"type": "response.create"},
    )
    assert types(out) == [
        "error",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.added",
        "conversation.item.done",
        "response.created",
    ]
    assert out[0]["error"] == {
        "type": "invalid_request_error",
        "code": "invalid_value",
        "message": "Invalid value: 'text'. Value must be 'output_text'.",
        "param": "item.content[0].type",
        "event_id": None,
    }
    assert [item["content"][0]["text"] for item in driven.state.items] == [
        "My name is Alice.",
        "What is my name?",
    ]


@pytest.mark.parametrize(
    ("event", "code", "param"),
    [
        (
            {"type": "conversation.item.create", "item": {"type": "message", "role": "user"}},
            "missing_required_parameter",
            "item.content",
        ),
        (
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "output": "x"},
            },
            "missing_required_parameter",
            "item.call_id",
        ),
        (
            {"type": "conversation.item.create", "item": {"type": "message", "role": "robot"}},
            "invalid_value",
            "item.role",
        ),
        (
            {"type": "conversation.item.create", "item": user_text("x") | {"bogus": True}},
            "unknown_parameter",
            "item.bogus",
        ),
        (
            {"type": "response.create", "response": {"max_output_tokens": 5000}},
            "integer_above_max_value",
            "response.max_output_tokens",
        ),
        (
            {"type": "response.create", "response": {"metadata": {"k": "v" * 600}}},
            "string_above_max_length",
            "response.metadata.k",
        ),
        (
            {"type": "session.update", "session": {"type": "realtime", "instructions": 5}},
            "invalid_type",
            "session.instructions",
        ),
        (
            {"type": "session.update", "session": {"type": "transcription"}},
            "invalid_value",
            "session.type",
        ),
    ],
)
def test_validation_errors_name_the_parameter(event: Event, code: str, param: str) -> None:
    driven = Driven()
    (error,) = driven.send(event)
    assert (error["error"]["code"], error["error"]["param"]) == (code, param)
    assert driven.state.items == []


# One event stream, two states: the client's mirror agrees with the server


@pytest.mark.parametrize("dialect", [Dialect.GA, Dialect.BETA])
def test_the_client_mirror_rebuilds_the_server_conversation(dialect: Dialect) -> None:
    from rt_notebook.protocol.conversation import Conversation

    driven = Driven(dialect)
    tools = [WEATHER_TOOL]
    if dialect is Dialect.GA:
        driven.session_update(output_modalities=["text"], tools=tools)
    else:
        driven.session_update(modalities=["text"], tools=tools)
    driven.send({"type": "conversation.item.create", "item": user_text("Weather in Oslo?")})
    driven.send({"type": "response.create"})
    call = one(driven.until("response.function_call_arguments.done"), "response.output_item.added")
    output = {
        "type": "function_call_output",
        "call_id": call["item"]["call_id"],
        "output": "Sunny.",
    }
    driven.send({"type": "conversation.item.create", "item": output})
    driven.run()
    driven.send({"type": "response.create"})
    driven.run()

    mirror = Conversation()
    for event in driven.log:
        mirror.apply(event)
    server_items = driven.state.items
    assert [item.id for item in mirror.items] == [item["id"] for item in server_items]
    assert [item.type for item in mirror.items] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]
    assert mirror.items[-1].text == "get_weather returned: Sunny."
    assert mirror.items[1].arguments == server_items[1]["arguments"]
    assert mirror.active_response_id is None
