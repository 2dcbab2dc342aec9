"""Remote MCP servers run by the service: configuration, the protocol, the embedded server.

The MCP server is real: ``tests/mcp_servers/remote.py``, written with the ``mcp`` SDK's
server API, on 127.0.0.1 over Streamable HTTP. The "service" is the embedded server, which
lists and calls it as OpenAI's service would (``call NAME {json}`` stands for the model's
choice); the client is a real Session with the real ``openai`` SDK.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rt_notebook.errors import ConfigurationError
from rt_notebook.frontends.magic_args import parse_mcp
from rt_notebook.protocol.conversation import Conversation
from rt_notebook.protocol.events import Dialect
from rt_notebook.protocol.restore import restore_items
from rt_notebook.render.items import item_label, item_markdown, response_markdown
from rt_notebook.render.markdown import markdown_html as render_markdown
from rt_notebook.server import mcp_client
from rt_notebook.server.remote_mcp import CallTool, ListTools, McpOutcome
from tests.server.server_helpers import Driven, assert_all_valid, fold_deltas, types, user_text
from tests.timing import PROCESS_WAIT, WAIT, wait_until, within

REMOTE = str(Path(__file__).parent / "mcp_servers" / "remote.py")
SECRET = "remote-mcp-secret-header-5150"
TOKEN = "remote-oauth-token-8086"
ADD_SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"],
}


@pytest.fixture
def remote_demo():
    """The remote MCP server on a free port of 127.0.0.1; its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "REMOTE_DEMO_SECRET": SECRET}
    process = subprocess.Popen(
        [sys.executable, REMOTE, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )

    def listening() -> bool:
        with socket.socket() as client:
            return client.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_until(listening, "the remote MCP server to listen", PROCESS_WAIT)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.kill()
        process.wait(WAIT)


def mcp_tool(url: str = "http://127.0.0.1:9/mcp", **fields):
    return {"type": "mcp", "server_label": "demo", "server_url": url, **fields}


# Configuration (pure) -------------------------------------------------------------------


def test_a_remote_server_is_the_sdks_mcp_tool_with_credentials_hidden(session):
    server = session.add_mcp_server(
        "docs",
        url="http://127.0.0.1:9/mcp",
        allowed_tools=["add"],
        require_approval=["add"],
        headers={"X-Token": SECRET},
        authorization=TOKEN,
    )
    definition = server.definition()
    from openai.types.realtime import RealtimeResponseCreateMcpTool

    parsed = RealtimeResponseCreateMcpTool.model_validate(definition)
    assert parsed.server_url == "http://127.0.0.1:9/mcp"
    assert definition["require_approval"] == {"always": {"tool_names": ["add"]}}
    assert definition["headers"] == {"X-Token": SECRET}
    shown = repr(server) + repr(session.mcp.remote) + str(server)
    assert SECRET not in shown
    assert TOKEN not in shown
    assert "docs" in session.mcp.remote
    assert "docs" not in session.mcp


def test_remote_options_are_checked_in_one_line(session):
    bad = [
        ({"url": "ftp://x"}, "http"),
        ({"connector_id": "connector_nope"}, "connector_id"),
        ({"url": "http://a/mcp", "require_approval": "sometimes"}, "require_approval"),
        ({"url": "http://a/mcp", "allowed_tools": "add"}, "list of tool names"),
        ({"url": "http://a/mcp", "cwd": "/tmp"}, "only apply to local servers"),
        ({"url": "http://a/mcp", "via": "kernel", "authorization": "x"}, "service runs"),
    ]
    for options, message in bad:
        with pytest.raises(ConfigurationError, match=message) as failure:
            session.add_mcp_server("x", **options)
        assert "\n" not in str(failure.value)
    session.add_mcp_server("x", url="http://a/mcp")
    with pytest.raises(ConfigurationError, match="exists"):
        session.add_mcp_server("x", url="http://b/mcp")
    session.remove_mcp_server("x")
    assert not session.mcp.remote


def test_the_magic_line_takes_a_url_after_the_label():
    command = parse_mcp(["add", "docs", "http://127.0.0.1:9/mcp", "--allow", "add,sub"])
    assert command.remote
    assert command.url == "http://127.0.0.1:9/mcp"
    assert command.allowed_tools == ("add", "sub")
    assert command.approval is True  # the service's default: always ask
    assert parse_mcp(["add", "d", "http://a/mcp", "--approve", "never"]).approval is False
    assert parse_mcp(["add", "d", "http://a/mcp", "--approve", "add"]).approval == ("add",)
    with pytest.raises(ConfigurationError, match="one of them"):
        parse_mcp(["add", "d", "http://a/mcp", "--command", "x"])
    with pytest.raises(ConfigurationError, match="unknown option"):
        parse_mcp(["add", "d", "http://a/mcp", "--header", "X=1"])  # no secrets in cells


# The embedded server's state, sans-I/O: effects out, events in ---------------------------


def until_waiting(driven: Driven) -> None:
    """Tick until every response waits for the MCP server."""
    for _ in range(1000):
        if driven.state.waiting:
            return
        driven.tick()
    raise AssertionError("the response never waited for the MCP server")


def listed_state(**tool_fields) -> tuple[Driven, str]:
    driven = Driven()
    driven.text_mode()
    out = driven.session_update(tools=[mcp_tool(**tool_fields)])
    assert types(out) == [
        "session.updated",
        "conversation.item.added",
        "mcp_list_tools.in_progress",
    ]
    (request,) = driven.state.take_mcp_requests()
    assert isinstance(request, ListTools)
    tools = [
        {"name": "add", "description": "Add two integers.", "input_schema": ADD_SCHEMA},
        {"name": "sub", "description": None, "input_schema": ADD_SCHEMA},
    ]
    driven.state.mcp_listed(request.item_id, tools)
    done = driven.run()
    assert types(done)[:2] == ["mcp_list_tools.completed", "conversation.item.done"]
    assert_all_valid(driven.log, Dialect.GA)
    return driven, request.item_id


def test_the_state_lists_tools_and_runs_a_call_through_effects():
    driven, _ = listed_state(require_approval="never", allowed_tools=["add"])
    listing = next(e for e in driven.log if e["type"] == "conversation.item.done")
    assert [tool["name"] for tool in listing["item"]["tools"]] == ["add"]  # allowed only
    driven.send(
        {"type": "conversation.item.create", "item": user_text('call add {"a": 2, "b": 40}')},
        {"type": "response.create"},
    )
    until_waiting(driven)  # the call waits for the MCP server, ticks do nothing
    assert driven.tick(5) == []
    (request,) = driven.state.take_mcp_requests()
    assert isinstance(request, CallTool)
    assert (request.name, dict(request.arguments)) == ("add", {"a": 2, "b": 40})
    driven.state.mcp_called(request.response_id, request.item_id, McpOutcome(output="sum is 42"))
    driven.run()
    assert_all_valid(driven.log, Dialect.GA)
    order = fold_deltas(types(driven.log))
    start = order.index("response.created")
    assert order[start:] == [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
        "conversation.item.done",
        "response.output_item.done",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    done = next(e for e in driven.log if e["type"] == "response.done")["response"]
    call = done["output"][0]
    assert (call["type"], call["output"], call["arguments"]) == (
        "mcp_call",
        "sum is 42",
        '{"a": 2, "b": 40}',
    )
    assert "sum is 42" in done["output"][1]["content"][0]["text"]


def test_a_question_asked_while_the_listing_runs_waits_for_it_and_gets_the_tool():
    """As on the service: a response.create sent before the listing is done waits for it
    (the model is offered what the listing finds), instead of answering without the tool."""
    driven = Driven()
    driven.text_mode()
    driven.session_update(tools=[mcp_tool(require_approval="never")])
    (listing,) = driven.state.take_mcp_requests()
    assert isinstance(listing, ListTools)
    out = driven.send(
        {"type": "conversation.item.create", "item": user_text('call add {"a": 1, "b": 2}')},
        {"type": "response.create"},
    )
    assert "response.created" not in types(out)  # held: the listing is under way
    assert driven.state.pending is False  # nothing the pump could apply now (no busy loop)
    assert driven.tick(3) == []
    tools = [{"name": "add", "description": "Add.", "input_schema": ADD_SCHEMA}]
    driven.state.mcp_listed(listing.item_id, tools)
    assert "response.created" not in types(driven.send())  # the listing's result goes first
    after = driven.tick()
    assert types(after)[:2] == ["mcp_list_tools.completed", "conversation.item.done"]
    assert driven.state.pending is True
    started = driven.send()
    assert types(started)[0] == "response.created"
    until_waiting(driven)
    (call,) = driven.state.take_mcp_requests()
    assert isinstance(call, CallTool)
    assert call.name == "add"  # the tool was offered and run
    assert_all_valid(driven.log, Dialect.GA)


def test_a_failed_listing_releases_the_question_held_for_it():
    driven = Driven()
    driven.text_mode()
    driven.session_update(tools=[mcp_tool()])
    (listing,) = driven.state.take_mcp_requests()
    driven.send(
        {"type": "conversation.item.create", "item": user_text("hello")},
        {"type": "response.create"},
    )
    driven.state.mcp_listed(listing.item_id, None)  # the server could not be listed
    assert "mcp_list_tools.failed" in types(driven.tick())
    assert "response.created" in types(driven.send())
    driven.run()
    assert "response.done" in types(driven.log)


def test_a_call_that_needs_approval_waits_for_the_answer_item():
    driven, _ = listed_state()  # require_approval: the service's default, always
    driven.send(
        {"type": "conversation.item.create", "item": user_text('call sub {"a": 5, "b": 3}')},
        {"type": "response.create"},
    )
    driven.run()
    assert not driven.state.take_mcp_requests()  # nothing runs before the user says so
    done = next(e for e in driven.log if e["type"] == "response.done")["response"]
    (request,) = done["output"]
    assert request["type"] == "mcp_approval_request"
    assert request["name"] == "sub"
    answer = {
        "type": "mcp_approval_response",
        "id": "item_answer1",
        "approval_request_id": request["id"],
        "approve": True,
    }
    out = driven.send(
        {"type": "conversation.item.create", "item": answer}, {"type": "response.create"}
    )
    assert "error" not in types(out), out
    until_waiting(driven)
    (call,) = driven.state.take_mcp_requests()
    assert isinstance(call, CallTool)
    assert call.name == "sub"
    driven.state.mcp_called(call.response_id, call.item_id, McpOutcome(output="2"))
    driven.run()
    assert_all_valid(driven.log, Dialect.GA)
    final = [e for e in driven.log if e["type"] == "response.done"][-1]["response"]
    assert final["output"][0]["approval_request_id"] == request["id"]
    # Declined: no call, the answer says so.
    driven.send(
        {"type": "conversation.item.create", "item": user_text('call sub {"a": 1, "b": 1}')},
        {"type": "response.create"},
    )
    driven.run()
    asked = [e for e in driven.log if e["type"] == "response.done"][-1]["response"]["output"][0]
    no = {**answer, "id": "item_answer2", "approval_request_id": asked["id"], "approve": False}
    driven.send({"type": "conversation.item.create", "item": no}, {"type": "response.create"})
    driven.run()
    assert not driven.state.take_mcp_requests()
    said = [e for e in driven.log if e["type"] == "response.done"][-1]["response"]["output"][0]
    assert "declined" in said["content"][0]["text"]


def test_a_connector_fails_its_listing_saying_it_cannot_run_offline():
    driven = Driven()
    tool = {"type": "mcp", "server_label": "gmail", "connector_id": "connector_gmail"}
    out = driven.session_update(tools=[tool], output_modalities=["text"])
    assert types(out) == [
        "session.updated",
        "conversation.item.added",
        "mcp_list_tools.in_progress",
        "mcp_list_tools.failed",
        "error",
    ]
    assert "cannot run offline" in out[-1]["error"]["message"]
    assert not driven.state.take_mcp_requests()
    assert_all_valid(out, Dialect.GA)


def test_the_session_echo_keeps_mcp_credentials_back():
    driven = Driven()
    out = driven.session_update(tools=[mcp_tool(headers={"X-Token": SECRET}, authorization=TOKEN)])
    assert SECRET not in json.dumps(out)
    assert TOKEN not in json.dumps(out)
    (request,) = driven.state.take_mcp_requests()
    assert request.headers == {"X-Token": SECRET, "Authorization": f"Bearer {TOKEN}"}


def test_the_embedded_server_reaches_loopback_only():
    assert mcp_client.loopback_problem("http://127.0.0.1:8000/mcp") is None
    assert mcp_client.loopback_problem("http://localhost/mcp") is None
    assert "loopback" in (mcp_client.loopback_problem("https://example.com/mcp") or "")
    assert "loopback" in (mcp_client.loopback_problem("http://10.0.0.1/mcp") or "")


# The client's mirror and the one renderer ----------------------------------------------


def mirrored(driven: Driven) -> Conversation:
    conversation = Conversation()
    for event in driven.log:
        conversation.apply(event)
    return conversation


def test_the_mirror_and_every_view_show_listing_call_and_result():
    driven, listing_id = listed_state(require_approval="never")
    driven.send(
        {"type": "conversation.item.create", "item": user_text('call add {"a": 1, "b": 2}')},
        {"type": "response.create"},
    )
    until_waiting(driven)
    (request,) = driven.state.take_mcp_requests()
    hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    driven.state.mcp_called(request.response_id, request.item_id, McpOutcome(output=hostile))
    driven.run()
    conversation = mirrored(driven)
    listing = conversation.item(listing_id)
    assert listing is not None
    assert [t["name"] for t in listing.tools] == ["add", "sub"]
    call = conversation.item(request.item_id)
    assert call is not None
    assert (call.type, call.name, call.server_label, call.status) == (
        "mcp_call",
        "add",
        "demo",
        "completed",
    )
    assert json.loads(call.arguments) == {"a": 1, "b": 2}
    assert call.output == hostile
    assert item_label(call) == "MCP call add (demo)"
    for markdown in (item_markdown(listing), item_markdown(call), response_markdown([call])):
        html = render_markdown(markdown)
        assert "<img" not in html
        assert "<script" not in html
    assert "&lt;img" in render_markdown(item_markdown(call))
    # A new connection re-creates them as text (which tool, arguments, result).
    plan = restore_items(conversation.items, Dialect.GA)
    texts = [p["content"][0]["text"] for p in plan if p.get("role") == "system"]
    assert any("MCP server 'demo' listed its tools: add, sub" in text for text in texts)
    assert any("demo.add(" in text and "returned" in text for text in texts)


def test_a_failed_call_shows_its_error():
    driven, _ = listed_state(require_approval="never")
    driven.send(
        {"type": "conversation.item.create", "item": user_text("call add {}")},
        {"type": "response.create"},
    )
    until_waiting(driven)
    (request,) = driven.state.take_mcp_requests()
    error = {"type": "tool_execution_error", "message": "<b>a and b are required</b>"}
    driven.state.mcp_called(request.response_id, request.item_id, McpOutcome(error=error))
    driven.run()
    assert "response.mcp_call.failed" in types(driven.log)
    assert_all_valid(driven.log, Dialect.GA)
    call = mirrored(driven).item(request.item_id)
    assert call is not None
    assert call.status == "failed"
    assert call.error == "tool_execution_error: <b>a and b are required</b>"
    html = render_markdown(item_markdown(call))
    assert "<b>" not in html
    assert "MCP error" in html


# The whole path: a Session, the embedded server, a real MCP server on 127.0.0.1 -----------


def listing_done(session, label: str):
    def found():
        for item in session.items:
            if item.type == "mcp_list_tools" and item.server_label == label and item.tools:
                return item
        return None

    wait_until(lambda: found() is not None, f"the tools of {label} listed", within(30))
    return found()


def mcp_items(result, kind: str):
    return [item for item in result.items if item.type == kind]


def test_a_session_runs_a_remote_servers_tool_with_its_secret_header(
    session, remote_demo, tmp_path
):
    recording = tmp_path / "events.jsonl"
    session.record(recording)
    session.add_mcp_server(
        "remote",
        url=remote_demo,
        require_approval="never",
        headers={"X-Token": SECRET},
    )
    listing = listing_done(session, "remote")
    assert {"add", "secret", "hang", "crash", "hostile", "broken"} <= {
        tool["name"] for tool in listing.tools
    }
    result = session.ask("call secret {}").wait(within(60))
    (call,) = mcp_items(result, "mcp_call")
    assert call.output == "header ok"  # the header reached the server
    assert "secret returned: header ok" in result.text
    # The inspector files the call's events under that turn.
    timeline = session.timeline(result.id)
    assert timeline is not None
    kinds = [entry.type for entry in timeline.entries]
    for kind in (
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
    ):
        assert kind in kinds
    session_kinds = [entry.type for entry in session.session_timeline().entries]
    assert "mcp_list_tools.completed" in session_kinds
    hostile = session.ask("call hostile {}").wait(within(60))
    html = render_markdown(response_markdown(hostile.items))
    assert "<img" not in html
    assert "<script" not in html
    assert "&lt;script" in html
    session.stop_recording()
    saved = [
        recording.read_text(encoding="utf-8"),
        json.dumps(session.events, default=str),
        json.dumps(session.settings, default=str),
        json.dumps(session.session_config, default=str),
        repr(session.mcp.remote),
        json.dumps([item.as_dict() for item in session.items], default=str),
    ]
    for text in saved:
        assert SECRET not in text


def test_with_no_view_to_ask_a_call_is_denied_at_once_with_a_reason(session, remote_demo):
    session.add_mcp_server("remote", url=remote_demo)  # require_approval: always
    listing_done(session, "remote")
    result = session.ask('call add {"a": 1, "b": 2}').wait(within(60))
    (request,) = mcp_items(result, "mcp_approval_request")
    tool_round = session.tools.round_for(result.id)
    assert tool_round is not None
    assert tool_round.wait(within(30))
    (asked,) = tool_round.calls
    assert asked.server_label == "remote"
    assert asked.state.value == "denied"
    assert "no one could be asked" in (asked.error or "")
    follow_up = tool_round.follow_up.wait(within(30))
    assert "declined" in follow_up.text
    answers = [item for item in session.items if item.type == "mcp_approval_response"]
    assert answers
    assert answers[-1].call_id == request.id
    assert answers[-1].output.startswith("denied: ")


def test_an_approver_lets_the_call_run(session, remote_demo):
    session.add_mcp_server("remote", url=remote_demo, require_approval=["add"])
    listing_done(session, "remote")
    session.tools.approver = lambda call: call.approve() or True
    result = session.ask('call add {"a": 20, "b": 22}').wait(within(60))
    tool_round = session.tools.round_for(result.id)
    assert tool_round is not None
    assert tool_round.wait(within(60))
    follow_up = tool_round.follow_up.wait(within(60))
    (call,) = mcp_items(follow_up, "mcp_call")
    assert call.output == "sum is 42"
    assert call.call_id == mcp_items(result, "mcp_approval_request")[0].id


def test_a_server_that_crashes_mid_call_fails_that_call_and_the_talk_goes_on(session, remote_demo):
    session.add_mcp_server("remote", url=remote_demo, require_approval="never")
    listing_done(session, "remote")
    result = session.ask("call crash {}").wait(within(60))
    (call,) = mcp_items(result, "mcp_call")
    assert call.error
    assert call.status == "failed"
    assert "failed" in result.text
    assert session.ask("hello again").wait(within(30)).status == "completed"


def test_a_server_that_never_answers_fails_within_the_timeout(session, remote_demo, monkeypatch):
    monkeypatch.setattr(mcp_client, "MCP_TIMEOUT", within(2))
    session.add_mcp_server("remote", url=remote_demo, require_approval="never")
    listing_done(session, "remote")
    result = session.ask("call hang {}").wait(within(60))
    (call,) = mcp_items(result, "mcp_call")
    assert "did not answer" in (call.error or "")


def test_a_server_nobody_serves_fails_its_listing(session):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    session.add_mcp_server("gone", url=f"http://127.0.0.1:{port}/mcp")

    def failed() -> bool:
        return any(
            item.type == "mcp_list_tools" and item.status == "failed" for item in session.items
        )

    wait_until(failed, "the listing to fail", within(30))
    assert session.ask("call add {}").wait(within(30)).status == "completed"  # still talks


def test_two_sessions_call_the_same_server_at_once(offline_server, make_session, remote_demo):
    import threading

    sessions = [make_session(offline_server), make_session(offline_server)]
    for session in sessions:
        session.add_mcp_server("remote", url=remote_demo, require_approval="never")
        listing_done(session, "remote")
    results: dict[int, str | None] = {}

    def ask(index: int) -> None:
        result = sessions[index].ask(f'call add {{"a": {index}, "b": 100}}').wait(within(60))
        results[index] = mcp_items(result, "mcp_call")[0].output

    threads = [threading.Thread(target=ask, args=(index,)) for index in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(within(90))
    assert results == {0: "sum is 100", 1: "sum is 101"}


def test_after_a_drop_mcp_items_come_back_as_their_text(make_session, remote_demo):
    from rt_notebook.server import EmbeddedServer

    with EmbeddedServer(pace=0.0) as server:
        session = make_session(server)
        session.add_mcp_server("remote", url=remote_demo, require_approval="never")
        result = session.ask('call add {"a": 3, "b": 4}').wait(within(60))
        (call,) = mcp_items(result, "mcp_call")
        assert call.output == "sum is 7"
        first_listing = session.mcp.listing("remote")
        assert first_listing is not None
        assert server.drop_connections() == 1
        after = session.ask("after the drop").wait(within(60))
        assert after.status == "completed"
        restored = next(item for item in session.items if item.id == call.id)
        old_listing = next(item for item in session.items if item.id == first_listing.id)
        assert "MCP server 'remote' listed its tools: add, secret" in old_listing.text
        assert (restored.type, restored.role) == ("message", "system")
        assert "remote.add(" in restored.text
        assert "returned sum is 7" in restored.text

        # The new connection lists the server's tools again, and calls still work.
        def relisted() -> bool:
            latest = session.mcp.listing("remote")
            return (
                latest is not None
                and latest.id != first_listing.id
                and (latest.status == "completed")
            )

        wait_until(relisted, "the tools listed on the new connection", within(60))
        again = session.ask('call add {"a": 1, "b": 1}').wait(within(60))
        assert mcp_items(again, "mcp_call")[0].output == "sum is 2"
