"""Translation between the GA and beta shapes, on plain dicts, checked against the SDK's own
types of each dialect (openai's ``types.realtime`` and ``types.beta.realtime``)."""

from __future__ import annotations

import collections.abc
import typing

import pytest
import typing_extensions
from openai.types.beta.realtime import realtime_client_event_param as beta_client
from openai.types.beta.realtime import realtime_server_event as beta_server
from openai.types.beta.realtime import response_create_event_param as beta_response_create
from openai.types.beta.realtime import session_update_event_param as beta_session_update
from openai.types.realtime import realtime_client_event_param as ga_client
from openai.types.realtime import realtime_server_event as ga_server
from openai.types.realtime import (
    response_create_event_with_references_param as ga_response_create,
)
from openai.types.realtime import session_update_event_param as ga_session_update

from rt_notebook.errors import ConfigurationError
from rt_notebook.protocol.events import Dialect
from rt_notebook.protocol.translate import (
    BETA_ONLY_SERVER_EVENTS,
    GA_ONLY_SERVER_EVENTS,
    client_event,
    server_event,
)

GA, BETA = Dialect.GA, Dialect.BETA


# The SDK's vocabulary


def _members(union: object) -> tuple[object, ...]:
    while typing.get_origin(union) is typing.Annotated:
        union = typing.get_args(union)[0]
    return typing.get_args(union)


def _event_type(member: object) -> str:
    fields = getattr(member, "model_fields", None)
    annotation = fields["type"].annotation if fields else typing.get_type_hints(member)["type"]
    while typing.get_origin(annotation) is not typing.Literal:
        annotation = typing.get_args(annotation)[0]  # Required[Literal[...]]
    return typing.get_args(annotation)[0]


def _types(union: object) -> set[str]:
    return {_event_type(member) for member in _members(union)}


BETA_CLIENT_TYPES = _types(beta_client.RealtimeClientEventParam)
GA_CLIENT_TYPES = _types(ga_client.RealtimeClientEventParam)
BETA_SERVER_TYPES = _types(beta_server.RealtimeServerEvent)
GA_SERVER_TYPES = _types(ga_server.RealtimeServerEvent)


def _unknown_keys(value: object, annotation: object, where: str = "") -> list[str]:
    """Keys of ``value`` that the SDK type ``annotation`` (a TypedDict tree) does not have,
    and literal values it does not allow."""
    origin = typing_extensions.get_origin(annotation)
    if origin in (typing_extensions.Required, typing_extensions.NotRequired):
        return _unknown_keys(value, typing.get_args(annotation)[0], where)
    if origin is typing.Union:
        results = [_unknown_keys(value, arm, where) for arm in typing.get_args(annotation)]
        return min(results, key=len)
    if origin is typing.Literal:
        allowed = typing.get_args(annotation)
        return [] if value in allowed else [f"{where}={value!r} (allowed {allowed})"]
    if origin in (list, collections.abc.Iterable, collections.abc.Sequence):
        if not isinstance(value, list):
            return [f"{where} is not a list"]
        (arm,) = typing.get_args(annotation)
        return [bad for entry in value for bad in _unknown_keys(entry, arm, where + "[]")]
    if typing_extensions.is_typeddict(annotation):
        if not isinstance(value, dict):
            return [f"{where} is not an object"]
        hints = typing_extensions.get_type_hints(annotation)
        bad = [f"{where}.{key}" for key in value if key not in hints]
        for key, inner in value.items():
            if key in hints:
                bad += _unknown_keys(inner, hints[key], f"{where}.{key}")
        return bad
    if annotation is type(None):
        return [] if value is None else [f"{where} is not null"]
    return []


# Every field of beta's session.update and response.create, with a typical value.
BETA_SESSION = {
    "modalities": ["audio", "text"],
    "instructions": "Be brief.",
    "voice": "verse",
    "speed": 1.1,
    "input_audio_format": "g711_ulaw",
    "output_audio_format": "pcm16",
    "input_audio_noise_reduction": {"type": "near_field"},
    "input_audio_transcription": {"model": "whisper-1", "language": "en"},
    "turn_detection": {"type": "server_vad", "silence_duration_ms": 400},
    "tools": [{"type": "function", "name": "f", "description": "d", "parameters": {}}],
    "tool_choice": "auto",
    "max_response_output_tokens": 512,
    "tracing": "auto",
    "model": "gpt-realtime",
}
BETA_SESSION_REFUSED = {"temperature": 0.8, "client_secret": {"expires_after": {"anchor": "x"}}}
BETA_RESPONSE = {
    "modalities": ["text"],
    "instructions": "Once.",
    "voice": "ash",
    "output_audio_format": "g711_alaw",
    "max_response_output_tokens": "inf",
    "metadata": {"k": "v"},
    "conversation": "none",
    "tools": [],
    "tool_choice": "none",
    "input": [
        {"type": "item_reference", "id": "item_1"},
        {
            "type": "message",
            "role": "assistant",
            "object": "realtime.item",
            "content": [{"type": "text", "text": "Earlier."}],
        },
    ],
}
BETA_RESPONSE_REFUSED = {"temperature": 0.7}

ITEM = {
    "type": "message",
    "role": "user",
    "content": [{"type": "input_text", "text": "Say hello"}],
}
# One example of every beta client event; beta_field_samples covers their fields.
BETA_CLIENT_EXAMPLES: dict[str, dict[str, typing.Any]] = {
    "session.update": {"type": "session.update", "session": BETA_SESSION},
    "transcription_session.update": {
        "type": "transcription_session.update",
        "session": {"input_audio_transcription": {"model": "whisper-1"}},
    },
    "conversation.item.create": {"type": "conversation.item.create", "item": ITEM},
    "conversation.item.delete": {"type": "conversation.item.delete", "item_id": "item_1"},
    "conversation.item.retrieve": {"type": "conversation.item.retrieve", "item_id": "item_1"},
    "conversation.item.truncate": {
        "type": "conversation.item.truncate",
        "item_id": "item_1",
        "content_index": 0,
        "audio_end_ms": 100,
    },
    "input_audio_buffer.append": {"type": "input_audio_buffer.append", "audio": "AAAA"},
    "input_audio_buffer.clear": {"type": "input_audio_buffer.clear"},
    "input_audio_buffer.commit": {"type": "input_audio_buffer.commit"},
    "output_audio_buffer.clear": {"type": "output_audio_buffer.clear"},
    "response.cancel": {"type": "response.cancel"},
    "response.create": {"type": "response.create", "response": BETA_RESPONSE},
}


def test_every_beta_client_event_of_the_sdk_is_translated_or_refused():
    assert set(BETA_CLIENT_EXAMPLES) == BETA_CLIENT_TYPES  # a new SDK event fails here
    translated, refused = [], []
    for kind, event in sorted(BETA_CLIENT_EXAMPLES.items()):
        try:
            ga = client_event(event, BETA, GA)
        except ConfigurationError as error:
            message = str(error)
            assert "\n" not in message
            assert f"client event {kind!r} has no GA equivalent" in message
            refused.append(kind)
            continue
        assert ga["type"] in GA_CLIENT_TYPES
        translated.append(kind)
    print(f"beta client events: {len(translated)} translated, {refused} refused")
    assert refused == ["transcription_session.update"]
    assert len(translated) == len(BETA_CLIENT_TYPES) - 1


def test_every_beta_session_field_is_translated_to_ga_or_refused():
    beta_fields = set(typing.get_type_hints(beta_session_update.Session))
    assert set(BETA_SESSION) | set(BETA_SESSION_REFUSED) == beta_fields
    event = client_event({"type": "session.update", "session": BETA_SESSION}, BETA, GA)
    session_type = typing.get_type_hints(ga_session_update.SessionUpdateEventParam)["session"]
    assert len(_unknown_keys(BETA_SESSION, session_type)) == 9  # the check can fail
    assert _unknown_keys(event["session"], session_type) == []
    assert event["session"] == {
        "type": "realtime",
        "output_modalities": ["audio"],
        "instructions": "Be brief.",
        "audio": {
            "output": {
                "voice": "verse",
                "speed": 1.1,
                "format": {"type": "audio/pcm", "rate": 24000},
            },
            "input": {
                "format": {"type": "audio/pcmu"},
                "noise_reduction": {"type": "near_field"},
                "transcription": {"model": "whisper-1", "language": "en"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 400},
            },
        },
        "tools": BETA_SESSION["tools"],
        "tool_choice": "auto",
        "max_output_tokens": 512,
        "tracing": "auto",
        "model": "gpt-realtime",
    }
    for name, value in BETA_SESSION_REFUSED.items():
        with pytest.raises(ConfigurationError, match=f"'{name}' has no GA equivalent") as error:
            client_event({"type": "session.update", "session": {name: value}}, BETA, GA)
        assert "\n" not in str(error.value)


def test_every_beta_response_field_is_translated_to_ga_or_refused():
    beta_fields = set(typing.get_type_hints(beta_response_create.Response))
    assert set(BETA_RESPONSE) | set(BETA_RESPONSE_REFUSED) == beta_fields
    event = client_event({"type": "response.create", "response": BETA_RESPONSE}, BETA, GA)
    response_type = typing.get_type_hints(
        ga_response_create.ResponseCreateEventWithReferencesParam
    )["response"]
    assert _unknown_keys(BETA_RESPONSE, response_type) != []  # the check can fail
    assert _unknown_keys(event["response"], response_type) == []
    response = event["response"]
    assert response["output_modalities"] == ["text"]
    assert response["audio"] == {"output": {"voice": "ash", "format": {"type": "audio/pcma"}}}
    assert response["max_output_tokens"] == "inf"
    assert "modalities" not in response
    assert "voice" not in response
    assert response["input"] == [
        {"type": "item_reference", "id": "item_1"},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Earlier."}],
        },
    ]
    with pytest.raises(ConfigurationError, match="'temperature' has no GA equivalent"):
        client_event({"type": "response.create", "response": BETA_RESPONSE_REFUSED}, BETA, GA)


def test_the_classic_calls_become_the_ga_calls():
    update = client_event({"type": "session.update", "session": {"modalities": ["text"]}}, BETA, GA)
    assert update == {
        "type": "session.update",
        "session": {"type": "realtime", "output_modalities": ["text"]},
    }
    create = {"type": "conversation.item.create", "item": ITEM}
    assert client_event(create, BETA, GA) == create  # user input_text is the same in GA
    assert client_event({"type": "response.create"}, BETA, GA) == {"type": "response.create"}


def test_assistant_text_content_becomes_output_text_and_references_are_refused():
    item = {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "Hi"}, {"type": "audio", "transcript": "Hi"}],
    }
    ga = client_event({"type": "conversation.item.create", "item": item}, BETA, GA)
    assert [part["type"] for part in ga["item"]["content"]] == ["output_text", "output_audio"]
    assert item["content"][0]["type"] == "text"  # the caller's dict is left alone
    referencing = {
        "type": "message",
        "role": "user",
        "content": [{"type": "item_reference", "id": "item_1"}],
    }
    with pytest.raises(ConfigurationError, match="'item_reference' has no GA equivalent"):
        client_event({"type": "conversation.item.create", "item": referencing}, BETA, GA)


def test_bad_beta_values_fail_with_the_rule():
    for session, match in (
        ({"modalities": ["video"]}, "modalities must be"),
        ({"input_audio_format": "mp3"}, "input_audio_format must be one of"),
    ):
        with pytest.raises(ConfigurationError, match=match):
            client_event({"type": "session.update", "session": session}, BETA, GA)


def test_beta_names_in_ga_shaped_code_point_to_the_beta_shape():
    for key, fields in (("session", {"modalities": ["text"]}), ("response", {"voice": "ash"})):
        kind = "session.update" if key == "session" else "response.create"
        with pytest.raises(ConfigurationError) as error:
            client_event({"type": kind, key: fields}, GA, GA)
        message = str(error.value)
        assert "\n" not in message
        assert 'shape="beta"' in message
    with pytest.raises(ConfigurationError, match="'output_modalities'"):
        client_event({"type": "session.update", "session": {"modalities": ["text"]}}, GA, GA)
    with pytest.raises(ConfigurationError, match="GA has none"):
        client_event({"type": "session.update", "session": {"temperature": 1}}, GA, GA)
    ga = {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}}
    assert client_event(ga, GA, GA) is ga


def test_ga_calls_on_a_beta_wire_round_trip():
    ga = client_event({"type": "session.update", "session": BETA_SESSION}, BETA, GA)
    assert client_event(ga, GA, BETA) == {"type": "session.update", "session": BETA_SESSION}
    response = {k: v for k, v in BETA_RESPONSE.items() if k != "input"}
    ga = client_event({"type": "response.create", "response": response}, BETA, GA)
    assert client_event(ga, GA, BETA)["response"] == response


def test_ga_only_settings_are_refused_on_a_beta_wire():
    for session, match in (
        ({"reasoning": {"effort": "low"}}, "'reasoning' has no beta equivalent"),
        ({"type": "transcription"}, "session type 'transcription' has no beta equivalent"),
        ({"audio": {"input": {"echo": True}}}, "'audio.input.echo' has no beta equivalent"),
        (
            {"audio": {"output": {"format": {"type": "audio/pcm", "rate": 16000}}}},
            "has no beta equivalent: use audio/pcm at 24 kHz",
        ),
    ):
        with pytest.raises(ConfigurationError, match=match):
            client_event({"type": "session.update", "session": session}, GA, BETA)
    image = {"type": "message", "role": "user", "content": [{"type": "input_image"}]}
    with pytest.raises(ConfigurationError, match="'input_image' has no beta equivalent"):
        client_event({"type": "conversation.item.create", "item": image}, GA, BETA)


# Server events


def test_every_ga_server_event_has_a_beta_name_or_is_left_out():
    kept = {kind for kind in GA_SERVER_TYPES if kind not in GA_ONLY_SERVER_EVENTS}
    for kind in sorted(kept):
        beta = server_event({"type": kind}, GA, BETA)
        assert beta is not None
        assert beta["type"] in BETA_SERVER_TYPES, kind
    for kind in GA_ONLY_SERVER_EVENTS:
        assert server_event({"type": kind}, GA, BETA) is None
    assert GA_ONLY_SERVER_EVENTS < GA_SERVER_TYPES
    print(f"GA server events: {len(kept)} renamed for beta, {len(GA_ONLY_SERVER_EVENTS)} left out")


def test_every_beta_server_event_has_a_ga_name_or_is_left_out():
    for kind in sorted(BETA_SERVER_TYPES - BETA_ONLY_SERVER_EVENTS):
        ga = server_event({"type": kind}, BETA, GA)
        assert ga is not None
        assert ga["type"] in GA_SERVER_TYPES, kind
    assert server_event({"type": "transcription_session.updated"}, BETA, GA) is None
    assert BETA_ONLY_SERVER_EVENTS < BETA_SERVER_TYPES


GA_RESPONSE_DONE = {
    "type": "response.done",
    "event_id": "event_1",
    "response": {
        "object": "realtime.response",
        "id": "resp_1",
        "status": "completed",
        "output": [
            {
                "id": "item_2",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_audio", "transcript": "Hello"}],
            }
        ],
        "output_modalities": ["audio"],
        "max_output_tokens": "inf",
        "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"}},
        "usage": None,
        "metadata": None,
    },
}


def test_a_ga_response_reaches_beta_code_in_the_beta_shape():
    beta = server_event(GA_RESPONSE_DONE, GA, BETA)
    assert beta is not None
    response = beta["response"]
    assert response["modalities"] == ["audio", "text"]
    assert response["voice"] == "alloy"
    assert response["output_audio_format"] == "pcm16"
    assert response["max_output_tokens"] == "inf"  # beta's response object says this too
    assert "audio" not in response
    assert "output_modalities" not in response
    (item,) = response["output"]
    assert item["object"] == "realtime.item"
    assert item["content"] == [{"type": "audio", "transcript": "Hello"}]
    # ...parsed by the SDK's beta model without loss.
    parsed = beta_server.RealtimeServerEvent
    from openai._models import construct_type_unchecked

    model = construct_type_unchecked(value=beta, type_=parsed)  # type: ignore[arg-type]
    assert type(model).__module__.startswith("openai.types.beta.realtime")
    assert model.response.output[0].content[0].type == "audio"
    assert server_event(beta, BETA, GA) == {
        **GA_RESPONSE_DONE,
        "response": {**GA_RESPONSE_DONE["response"], "output_modalities": ["audio"]},
    }


def test_deltas_parts_and_sessions_are_renamed():
    delta = {"type": "response.output_text.delta", "delta": "Hi", "item_id": "item_1"}
    assert server_event(delta, GA, BETA) == {**delta, "type": "response.text.delta"}
    part = {"type": "response.content_part.added", "part": {"type": "output_text", "text": ""}}
    assert server_event(part, GA, BETA)["part"] == {"type": "text", "text": ""}
    added = {
        "type": "conversation.item.added",
        "previous_item_id": None,
        "item": {"id": "item_1", "type": "message", "role": "user", "content": []},
    }
    created = server_event(added, GA, BETA)
    assert created["type"] == "conversation.item.created"
    assert created["item"]["object"] == "realtime.item"
    session = {
        "type": "session.updated",
        "session": {
            "type": "realtime",
            "id": "sess_1",
            "output_modalities": ["text"],
            "max_output_tokens": "inf",
            "audio": {
                "input": {"format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": None},
                "output": {"voice": "alloy", "speed": 1.0},
            },
        },
    }
    assert server_event(session, GA, BETA)["session"] == {
        "id": "sess_1",
        "modalities": ["text"],
        "max_response_output_tokens": "inf",
        "input_audio_format": "pcm16",
        "turn_detection": None,
        "voice": "alloy",
        "speed": 1.0,
    }
    assert server_event(delta, GA, GA) is delta
