"""Session settings end to end: the real openai SDK against the embedded server.

A setting is the Session's only once the server accepts it; a refused one changes nothing
and never reaches a restore; every field of the SDK's GA session can be set, is checked
before it is sent, and survives a dropped connection. What the server holds is read from
what the server itself sent (``session_config``: its last ``session.updated``), not from
the client's own bookkeeping.
"""

from __future__ import annotations

import asyncio
import json
import threading
import warnings

import pytest

from rt_notebook.client.session import Session, Timing
from rt_notebook.errors import ConfigurationError, ServerError
from rt_notebook.server import EmbeddedServer
from rt_notebook.server.state import ConnectionState
from tests.timing import UNIT, WAIT, wait_until

LOOKUP = {
    "type": "function",
    "name": "lookup",
    "description": "Look a word up.",
    "parameters": {"type": "object", "properties": {"word": {"type": "string"}}},
}

# Every newer field of the GA session, set at once.
NEWER = {
    "reasoning_effort": "low",
    "truncation": {"type": "retention_ratio", "retention_ratio": 0.5},
    "noise_reduction": "far_field",
    "turn_detection": {"type": "semantic_vad", "eagerness": "low"},
    "parallel_tool_calls": False,
    "max_output_tokens": 300,
    "tracing": "auto",
    "include": ["item.input_audio_transcription.logprobs"],
}


def timing():
    return Timing(
        cancel_timeout=40 * UNIT,
        idle_timeout=200 * UNIT,
        backoff_initial=UNIT,
        backoff_max=4 * UNIT,
        max_attempts=8,
        renew_margin=0.0,
    )


@pytest.fixture(scope="module")
def server():
    with EmbeddedServer(pace=0.0) as server:
        yield server


@pytest.fixture
def make(server):
    sessions = []

    def make(**options):
        session = Session(
            base_url=server.base_url,
            websocket_base_url=server.websocket_base_url,
            api_key=server.token,
            timing=timing(),
            **options,
        )
        sessions.append(session)
        return session.connect(WAIT)

    yield make
    for session in sessions:
        session.close()


def drop_and_wait(server, session):
    """Drop every connection; wait until the Session has restored on a new one."""
    before = server.connections_opened
    assert server.drop_connections() >= 1
    wait_until(
        lambda: server.connections_opened > before and session.status.state == "ready",
        "reconnected and restored",
    )


def sdk_session_check(config):
    """The session the server reports, checked against the SDK's own response model."""
    from openai.types.realtime import RealtimeSessionCreateRequest

    return RealtimeSessionCreateRequest.model_validate(config)


def test_a_refused_update_keeps_the_accepted_instructions_and_tools_across_a_drop(server, make):
    session = make(instructions="Answer in French.")
    session.update_session(tools=[LOOKUP])
    with pytest.raises(ServerError) as refused:
        session.update_session(tool_choice={"type": "function", "name": "nowhere"})
    assert "nowhere" in str(refused.value)  # the server's own message, where it was asked
    assert session.settings["instructions"] == "Answer in French."
    assert "tool_choice" not in session.settings
    assert session.pending_settings == []
    drop_and_wait(server, session)
    served = session.session_config  # what the server says on the new connection
    assert served["instructions"] == "Answer in French."
    assert [tool["name"] for tool in served["tools"]] == ["lookup"]
    assert served["tool_choice"] == "auto"
    assert session.settings_lost is None
    assert session.ask("still here?").wait(WAIT).text == "Echo: still here?"


def test_every_newer_field_is_accepted_shown_and_survives_a_drop(server, make):
    session = make()
    confirmed = session.update_session(**NEWER)
    assert confirmed["reasoning"] == {"effort": "low"}
    sdk_session_check(confirmed)  # the server's echo is a session the SDK can read
    settings = session.settings
    assert settings["reasoning_effort"] == "low"
    assert settings["truncation"] == NEWER["truncation"]
    assert settings["noise_reduction"] == "far_field"
    assert settings["turn_detection"] == {"type": "semantic_vad", "eagerness": "low"}
    for name in ("parallel_tool_calls", "max_output_tokens", "tracing", "include"):
        assert settings[name] == NEWER[name]
    drop_and_wait(server, session)
    served = session.session_config
    assert served["reasoning"] == {"effort": "low"}
    assert served["truncation"] == NEWER["truncation"]
    assert served["audio"]["input"]["noise_reduction"] == {"type": "far_field"}
    detection = served["audio"]["input"]["turn_detection"]
    assert (detection["type"], detection["eagerness"]) == ("semantic_vad", "low")
    assert served["parallel_tool_calls"] is False
    assert served["max_output_tokens"] == 300
    assert served["tracing"] == "auto"
    assert served["include"] == NEWER["include"]


def test_settings_given_at_creation_are_sent_and_restored(server, make):
    session = make(instructions="Be terse.", settings={"reasoning_effort": "high"})
    assert session.session_config["reasoning"] == {"effort": "high"}
    assert session.settings["instructions"] == "Be terse."
    drop_and_wait(server, session)
    assert session.session_config["reasoning"] == {"effort": "high"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"reasoning_effort": "hgh"}, "reasoning.effort: should be 'minimal', 'low'"),
        ({"reasonin": {"effort": "low"}}, "unknown setting 'reasonin' (did you mean 'reasoning'?)"),
        ({"truncation": "sometimes"}, "truncation: should be 'auto' or 'disabled' or an object"),
        ({"noise_reduction": "nearfield"}, "should be 'near_field' or 'far_field'"),
        (
            {"turn_detection": {"type": "semantic_vad", "eagerness": "hi"}},
            "audio.input.turn_detection.eagerness: should be 'low', 'medium', 'high' or 'auto'",
        ),
        (
            {"turn_detection": {"type": "semantic_vad", "threshold": 0.5}},
            "semantic_vad does not take ['threshold']",
        ),
        ({"parallel_tool_calls": "yes"}, "parallel_tool_calls: should be true or false"),
        ({"max_output_tokens": "lots"}, "max_output_tokens: should be a whole number or 'inf'"),
        ({"tool_choice": "sometimes"}, "tool_choice: should be 'none', 'auto' or 'required'"),
    ],
)
def test_typos_and_bad_values_are_one_line_and_nothing_is_sent(make, fields, message):
    session = make()
    before = len(session.events)
    with pytest.raises(ConfigurationError) as refused:
        session.update_session(**fields)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)
    assert len(session.events) == before  # no session.updated, no error: nothing went out
    assert session.pending_settings == []


def test_an_update_is_pending_until_acknowledged_and_goes_again_after_a_drop(
    server, make, monkeypatch
):
    session = make(instructions="first")
    # A server that takes the update and never answers it (then the connection drops).
    monkeypatch.setitem(ConnectionState._HANDLERS, "session.update", lambda state, event: [])
    results = []
    asker = threading.Thread(
        target=lambda: results.append(session.update_session(instructions="second"))
    )
    asker.start()
    wait_until(lambda: session.pending_settings, "the update pending")
    assert session.pending_settings == [{"instructions": "second"}]
    assert session.settings["instructions"] == "first"  # not accepted yet
    assert session.session_config["instructions"] == "first"
    monkeypatch.undo()
    drop_and_wait(server, session)
    asker.join(WAIT)
    assert results[0]["instructions"] == "second"  # acknowledged on the new connection
    assert session.settings["instructions"] == "second"
    assert session.pending_settings == []
    assert session.session_config["instructions"] == "second"


def test_a_restore_the_server_refuses_says_which_settings_were_lost(server, make, monkeypatch):
    session = make(instructions="Answer in French.")
    session.update_session(tools=[LOOKUP], reasoning_effort="low")

    def refuse(state, event):  # a server that no longer takes these settings
        return [state._error(server_refusal(), event)]

    monkeypatch.setitem(ConnectionState._HANDLERS, "session.update", refuse)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        drop_and_wait(server, session)
        wait_until(
            lambda: any(e["type"] == "rt_notebook.settings_lost" for e in session.events),
            "the loss reported",
        )
    lost = session.settings_lost
    assert "instructions" in lost
    assert "reasoning" in lost
    assert "tools" in lost
    assert "no longer" in lost  # the server's message
    assert any("instructions" in str(w.message) for w in caught)
    assert session.settings == {}  # the server's defaults now: nothing claims otherwise
    monkeypatch.undo()
    # The conversation goes on.
    assert session.ask("after").wait(WAIT).text == "Echo: after"


def server_refusal():
    from rt_notebook.server.errors import ErrorInfo

    return ErrorInfo(code="invalid_value", message="this model no longer takes them")


def test_session_max_output_tokens_caps_every_answer(make):
    session = make()
    session.update_session(max_output_tokens=3)
    result = session.ask("one two three four five six seven eight nine ten").wait(WAIT)
    assert result.status == "incomplete"
    assert result.status_details == {"type": "incomplete", "reason": "max_output_tokens"}
    assert result.usage["output_tokens"] <= 3


def test_truncation_drops_the_oldest_items_from_what_the_server_answers_from(make):
    long = " ".join(f"word{n}" for n in range(40))
    plain = make()
    truncating = make(
        settings={
            "truncation": {
                "type": "retention_ratio",
                "retention_ratio": 0.5,
                "token_limits": {"post_instructions": 100},
            }
        }
    )
    for session in (plain, truncating):
        session.update_session(instructions="Echo.")
        for _ in range(6):
            session.ask(long).wait(WAIT)
    full = plain.ask("last").wait(WAIT).usage["input_token_details"]["text_tokens"]
    cut = truncating.ask("last").wait(WAIT).usage["input_token_details"]["text_tokens"]
    assert full > 400  # 12 items of about 40 words
    assert cut <= 50 + 1  # at most half the limit, plus the instructions' word
    assert len(truncating.items) == len(plain.items)  # the conversation itself is whole


def test_a_bridge_update_joins_the_settings_only_once_accepted(make):
    session = make()

    async def run():
        async with session.connection() as connection:
            await connection.session.update(
                session={"type": "realtime", "max_output_tokens": 5000}  # out of range
            )
            await connection.session.update(session={"type": "realtime", "instructions": "ok"})

    asyncio.run(run())
    wait_until(lambda: session.settings.get("instructions") == "ok", "the second accepted")
    assert "max_output_tokens" not in session.settings
    assert any(json.dumps(e).find("max_output_tokens") >= 0 for e in session.errors)


def test_turn_detection_values_are_checked_too(make):
    session = make()
    with pytest.raises(ConfigurationError, match="eagerness: should be 'low', 'medium'"):
        session.set_turn_detection("semantic_vad", eagerness="hi")
    assert "turn_detection" not in session.settings
    session.set_turn_detection("semantic_vad", eagerness="high")
    assert session.settings["turn_detection"] == {"type": "semantic_vad", "eagerness": "high"}


def test_close_then_connect_starts_a_new_conversation_with_the_accepted_settings(make):
    session = make(instructions="Be terse.")
    session.update_session(reasoning_effort="minimal", instructions="Be kind.")
    session.ask("remember me").wait(WAIT)
    session.close()
    session.connect(WAIT)
    assert session.items == []  # a fresh conversation ...
    served = session.session_config  # ... with the settings the server had accepted
    assert served["instructions"] == "Be kind."
    assert served["reasoning"] == {"effort": "minimal"}


def test_protocol_names_work_as_well_as_the_short_ones(server, make):
    session = make()
    session.update_session(
        reasoning={"effort": "medium"},
        noise_reduction={"type": "near_field"},
        audio={"output": {"speed": 1.2}},
        output_modalities=["text"],
    )
    assert session.settings["reasoning_effort"] == "medium"
    assert session.settings["noise_reduction"] == "near_field"
    drop_and_wait(server, session)
    served = session.session_config
    assert served["reasoning"] == {"effort": "medium"}
    assert served["audio"]["input"]["noise_reduction"] == {"type": "near_field"}
    assert served["audio"]["output"]["speed"] == 1.2


def test_registering_a_tool_resends_hand_written_credentials_as_given(make, monkeypatch):
    # session.settings is scrubbed (a Bearer header shows as ***); the tool list sent when a
    # tool is registered must carry the header as the user gave it, not that view.
    received = []
    handle = ConnectionState._HANDLERS["session.update"]

    def recording(state, event):
        received.append(json.loads(json.dumps(event["session"].get("tools"))))
        return handle(state, event)

    monkeypatch.setitem(ConnectionState._HANDLERS, "session.update", recording)
    header = "Bearer hand-written-credential-1234"
    mcp = {
        "type": "mcp",
        "server_label": "docs",
        "server_url": "http://127.0.0.1:9/mcp",
        "headers": {"Authorization": header},
        "require_approval": "never",
    }
    session = make()
    session.update_session(tools=[LOOKUP, mcp])
    assert "hand-written-credential" not in json.dumps(session.settings)  # the view
    received.clear()

    @session.tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    wait_until(lambda: received, "the tool list sent again")
    (tools,) = received
    assert [t.get("name") or t.get("server_label") for t in tools] == ["lookup", "docs", "add"]
    assert tools[1]["headers"] == {"Authorization": header}
