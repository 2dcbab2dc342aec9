"""Never stuck, never misleading, end to end (the real openai SDK against the embedded
server): a conversation moved to a server on another port, a cancel the server never
confirms, and text that cannot be sent refused before sending with a message saying so."""

from __future__ import annotations

import socket

import pytest

from rt_notebook.client.session import Session, Timing
from rt_notebook.errors import ConfigurationError, RealtimeConnectionError
from rt_notebook.server import EmbeddedServer
from rt_notebook.server.responders import EchoResponder, PlannedMessage
from tests.timing import UNIT, WAIT, wait_until


class Recall(EchoResponder):
    """Answers with every user message the server holds, in its order."""

    name = "recall"

    def respond(self, request):
        said = [
            part.get("text", "")
            for item in request.context
            if item.get("role") == "user"
            for part in item.get("content", [])
        ]
        return [PlannedMessage("seen: " + " | ".join(said))]


def timing(**overrides):
    values = {
        "cancel_timeout": 40 * UNIT,
        "idle_timeout": 200 * UNIT,
        "backoff_initial": UNIT,
        "backoff_max": 4 * UNIT,
        "max_attempts": 1000,
        "renew_margin": 0.0,
    }
    values.update(overrides)
    return Timing(**values)


def new_session(server, **options):
    options.setdefault("timing", timing())
    return Session(
        base_url=server.base_url,
        websocket_base_url=server.websocket_base_url,
        api_key=server.token,
        **options,
    )


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_conversation_moves_to_a_server_on_another_port_and_keeps_its_items():
    first = EmbeddedServer(pace=0.0, responder=Recall()).start()
    session = new_session(first, instructions="be brief")
    second = None
    try:
        session.connect(WAIT)
        assert session.ask("one").wait(WAIT).text == "seen: one"
        assert session.ask("two").wait(WAIT).text == "seen: one | two"
        old_url = first.websocket_base_url
        first.stop()  # the CLI server goes away; it comes back on another port, new token
        wait_until(lambda: session.status.state != "ready", "the drop to be noticed")
        # Somewhere nothing listens: the move fails with one line, the conversation stays.
        with pytest.raises(RealtimeConnectionError) as refused:
            session.move(
                websocket_base_url=f"ws://127.0.0.1:{free_port()}/v1",
                api_key="sk-move-test-secret-1234567890",
                timeout=WAIT,
            )
        assert "sk-move-test-secret" not in str(refused.value)
        assert "\n" not in str(refused.value)
        assert len(session.items) == 4
        second = EmbeddedServer(pace=0.0, responder=Recall()).start()
        assert second.websocket_base_url != old_url
        session.move(
            websocket_base_url=second.websocket_base_url,
            base_url=second.base_url,
            api_key=second.token,
            timeout=WAIT,
        )
        assert session.status.state == "ready"
        assert session.status.restored == 4
        assert session.settings["instructions"] == "be brief"
        assert second.websocket_base_url in repr(session)
        assert second.token not in repr(session)
        answer = session.ask("three").wait(WAIT)
        assert answer.text == "seen: one | two | three"  # the server holds them, in order
        assert [item.role for item in session.items] == ["user", "assistant"] * 3
    finally:
        session.close()
        for server in (first, second):
            if server is not None:
                server.stop()


def test_move_while_connected_carries_the_conversation_at_once():
    first = EmbeddedServer(pace=0.0, responder=Recall()).start()
    second = EmbeddedServer(pace=0.0, responder=Recall()).start()
    session = new_session(first)
    try:
        session.connect(WAIT)
        session.ask("hello").wait(WAIT)
        session.move(websocket_base_url=second.websocket_base_url, api_key=second.token)
        assert session.ask("again").wait(WAIT).text == "seen: hello | again"
        wait_until(lambda: first.open_connections == 0, "the old connection to close")
    finally:
        session.close()
        first.stop()
        second.stop()


def test_move_needs_somewhere_to_go():
    with EmbeddedServer(pace=0.0) as server:
        session = new_session(server)
        try:
            with pytest.raises(ConfigurationError, match="move\\(\\) needs"):
                session.move()
        finally:
            session.close()


def test_a_cancel_the_server_never_confirms_ends_after_the_grace_and_the_queue_moves_on():
    with EmbeddedServer(pace=0.05) as server:
        session = new_session(server)
        try:
            session.connect(WAIT)
            server.ignore_client_events("response.cancel")
            handle = session.ask(" ".join(f"word{i}" for i in range(2000)))
            queued = session.ask("next")
            wait_until(lambda: handle.text, "the answer to start streaming")
            assert handle.cancel(grace=4 * UNIT) is False  # never confirmed
            assert handle.done()
            assert handle.wait(0).status == "cancelled"
            server.ignore_client_events()
            assert queued.wait(WAIT).status == "completed"
            assert "next" in queued.wait(0).text
        finally:
            session.close()


def test_a_confirmed_cancel_within_the_grace_says_so():
    with EmbeddedServer(pace=0.05) as server:
        session = new_session(server)
        try:
            session.connect(WAIT)
            handle = session.ask(" ".join(f"word{i}" for i in range(2000)))
            wait_until(lambda: handle.text, "the answer to start streaming")
            assert handle.cancel(grace=WAIT) is True
            assert handle.wait(0).status == "cancelled"
        finally:
            session.close()


@pytest.mark.parametrize(
    "send",
    [
        lambda s: s.ask("half an emoji: \ud83d!"),
        lambda s: s.add_message("half an emoji: \ud83d!", timeout=WAIT),
        lambda s: s.create_response(instructions="say \ud83d"),
        lambda s: s.update_session(instructions="say \ud83d", timeout=WAIT),
    ],
)
def test_a_lone_surrogate_is_refused_before_sending_with_a_message_saying_so(send):
    with EmbeddedServer(pace=0.0) as server:
        session = new_session(server)
        try:
            session.connect(WAIT)
            with pytest.raises(ConfigurationError) as refused:
                send(session)
            message = str(refused.value)
            assert "lone surrogate (U+D83D)" in message
            assert "dropped" not in message
            assert session.status.state == "ready"
            assert session.errors == []  # nothing reached the server
            assert session.ask("fine").wait(WAIT).status == "completed"
        finally:
            session.close()


def test_a_tool_output_with_a_lone_surrogate_is_still_sent():
    from rt_notebook.protocol.sendable import check_sendable
    from rt_notebook.tools.schema import encode_output

    for result in ("half \ud83d an emoji", {"text": "half \ud83d"}):
        output = encode_output(result)
        check_sendable(output, "the output")  # does not raise
        assert "half" in output


def test_sessions_shorter_than_an_answer_fail_it_naming_the_expiry_then_give_up():
    with EmbeddedServer(pace=0.05, max_session_seconds=10 * UNIT) as server:
        # No renewal before expires_at: every session ends with the server's session_expired.
        session = new_session(server, timing=timing(renew_before_expiry=False))
        try:
            session.connect(WAIT)
            handle = session.ask(" ".join(f"word{i}" for i in range(2000)))
            with pytest.raises(RealtimeConnectionError) as failed:
                handle.wait(WAIT)
            # "expired twice during this answer", or (on a machine too slow to restore
            # within a session) the give-up below: the cause is named either way.
            assert "expired" in str(failed.value)
            assert "dropped" not in str(failed.value)
            # Nothing completes in these sessions: after max_expiries, one line and stop.
            wait_until(lambda: session.status.state == "closed", "the Session to give up")
            reason = session.status.reason or ""
            assert "session_expired" in reason
            assert "3 times in a row" in reason
            opened = server.connections_opened
            assert opened == 3
        finally:
            session.close()


def test_a_failed_move_shows_the_key_in_no_frame_of_its_traceback():
    key = "sk-move-frame-secret-0987654321"
    with EmbeddedServer(pace=0.0) as server:
        session = new_session(server)
        try:
            session.connect(WAIT)
            with pytest.raises(RealtimeConnectionError) as failed:
                session.move(
                    websocket_base_url=f"ws://127.0.0.1:{free_port()}/v1",
                    api_key=key,
                    timeout=WAIT,
                )
            tb = failed.value.__traceback__.tb_next  # past this test's own frame
            frames = 0
            while tb is not None:  # what %xmode Verbose prints: every frame's variables
                frames += 1
                for name, value in tb.tb_frame.f_locals.items():
                    assert key not in repr(value), name
                tb = tb.tb_next
            assert frames >= 1
            assert key not in str(failed.value)
        finally:
            session.close()
