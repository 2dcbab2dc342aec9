"""Local MCP servers' tools in a Session, against real MCP servers.

The servers are real: ``tests/mcp_servers/demo.py`` (written with the ``mcp`` SDK's
server API) run over stdio and over Streamable HTTP on 127.0.0.1, and the published
``mcp-server-time`` from PyPI over stdio. The model is the embedded offline server, whose
responder calls a tool when the message says ``call NAME {json}``.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rt_notebook.client.session import Session
from rt_notebook.errors import ConfigurationError, scrub
from rt_notebook.frontends.magic_args import parse_line, parse_mcp
from rt_notebook.tools import CallState
from rt_notebook.tools.mcp_servers import MCPServerError, exposed_name
from rt_notebook.tools.mcp_servers.connection import require_sdk
from tests.chat_standin import MODEL, ChatStandIn, Reply
from tests.timing import PROCESS_WAIT, WAIT, wait_until, within

DEMO = str(Path(__file__).parent / "mcp_servers" / "demo.py")
FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def demo(*flags: str) -> list[str]:
    return [sys.executable, DEMO, *flags]


def run_round(session, text):
    """Ask, wait for the response, and return its tool round (done) and the follow-up."""
    result = session.ask(text).wait(within(30))
    tool_round = session.tools.round_for(result.id)
    assert tool_round is not None, result.text
    assert tool_round.wait(within(60))
    return tool_round, tool_round.follow_up.wait(within(30))


@pytest.fixture
def demo_session(session):
    session.add_mcp_server("demo", command=demo(), start_timeout=PROCESS_WAIT)
    return session


# The naming rule (pure) ----------------------------------------------------------------


def test_names_are_label_then_tool_and_always_fit_the_service():
    assert exposed_name("git", "git_status") == "git__git_status"
    long = exposed_name("server", "t" * 80)
    hostile = exposed_name("h", '<img src=x onerror="alert(1)">')
    dotted, underscored = exposed_name("fs", "read.file"), exposed_name("fs", "read_file")
    for name in (long, hostile, dotted):
        assert FUNCTION_NAME.match(name), name
        assert len(name) == 64 or name.startswith(("h__", "fs__"))
    assert long == exposed_name("server", "t" * 80)  # deterministic
    assert long != exposed_name("server", "t" * 81)  # the hash tells them apart
    assert dotted != underscored  # a replaced character never makes two names one
    assert "<" not in hostile
    assert hostile.startswith("h___img_src_x")


def test_bad_labels_and_arguments_are_one_line_errors(session):
    for label in ("", "has space", "x" * 33, "<b>"):
        with pytest.raises(ConfigurationError, match="label"):
            session.add_mcp_server(label, command=demo())
    with pytest.raises(ConfigurationError, match="one"):
        session.add_mcp_server("both", command=demo(), url="http://127.0.0.1:1/mcp", via="kernel")
    with pytest.raises(ConfigurationError, match="via= takes 'kernel' or 'service'"):
        session.add_mcp_server("web", url="http://127.0.0.1:1/mcp", via="kernal")
    with pytest.raises(ConfigurationError, match="list of words"):
        session.add_mcp_server("str", command=f"{sys.executable} {DEMO}")
    assert not session.mcp


def test_a_missing_sdk_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mcp", None)
    with pytest.raises(MCPServerError) as failure:
        require_sdk()
    assert "pip install 'rt-notebook[mcp]'" in str(failure.value)
    assert "\n" not in str(failure.value)


# %realtime mcp options, checked before anything happens ----------------------------------


def test_mcp_lines_are_read_and_typos_refused():
    command = parse_mcp(
        ["add", "fs", "--command", "python -m srv --root '/a b'", "--allow", "read,list"]
    )
    assert command.command == ("python", "-m", "srv", "--root", "/a b")
    assert command.allowed_tools == ("read", "list")
    assert command.approval is False
    assert parse_mcp(["add", "w", "--url=http://127.0.0.1:9/mcp", "--approve", "always"]).approval
    assert parse_mcp(["add", "w", "--url", "http://x/mcp", "--approve", "a,b"]).approval == (
        "a",
        "b",
    )
    assert parse_line("mcp list --session other").session == "other"
    for words, message in [
        ([], "usage"),
        (["ad", "fs"], "usage"),
        (["add", "fs"], "--command CMD or --url URL"),
        (["add", "fs", "--command", "x", "--url", "http://a"], "one"),
        (["add", "fs", "--comand", "x"], "unknown option"),
        (["add", "fs", "--command"], "needs a value"),
        (["add", "fs", "--command", "x", "--command", "y"], "twice"),
        (["add", "fs", "--url", "ftp://a"], "http"),
        (["add", "fs", "--command", "x", "--allow", "a,,b"], "comma-separated"),
        (["add", "bad label", "--command", "x"], "label"),
        (["remove"], "LABEL"),
        (["remove", "fs", "extra"], "remove LABEL"),
        (["list", "x"], "no arguments"),
    ]:
        with pytest.raises(ConfigurationError, match=message):
            parse_mcp(words)
    with pytest.raises(ConfigurationError):
        parse_line("mcp add fs --comand x")


# A stdio server made with the SDK -------------------------------------------------------


def test_a_stdio_servers_tools_are_function_tools_the_offline_model_calls(demo_session):
    session = demo_session
    assert {"demo__add", "demo__slow", "demo__crash", "demo__hostile"} <= set(session.tools)
    sent = {tool["name"] for tool in session.settings.get("tools") or []}
    assert "demo__add" in sent  # the server was told with session.update
    tool_round, answer = run_round(session, 'call demo__add {"a": 2, "b": 3}')
    [call] = tool_round.calls
    assert call.state is CallState.DONE
    assert call.output == "sum is 5"
    assert "sum is 5" in answer.text


def test_bad_arguments_are_checked_against_the_servers_schema(demo_session):
    tool_round, _ = run_round(demo_session, 'call demo__add {"a": "two", "b": 3}')
    [call] = tool_round.calls
    assert call.state is CallState.FAILED
    assert "a: 'two' is not of type 'integer'" in json.loads(call.output)["error"]


def test_a_crash_mid_call_fails_that_call_and_the_next_call_restarts_it(demo_session):
    session = demo_session
    tool_round, answer = run_round(session, "call demo__crash {}")
    [call] = tool_round.calls
    assert call.state is CallState.FAILED
    assert "MCP server 'demo' stopped (its connection closed)" in call.error
    assert "stopped (its connection closed)" in json.loads(call.output)["error"]
    assert "stopped (its connection closed)" in answer.text  # the conversation goes on
    assert not session.mcp["demo"].running
    tool_round, _ = run_round(session, 'call demo__add {"a": 1, "b": 1}')
    assert tool_round.calls[0].output == "sum is 2"
    assert session.mcp["demo"].running


def test_a_hung_call_fails_after_its_timeout_and_the_server_still_answers(session):
    session.add_mcp_server("hang", command=demo(), timeout=within(1), start_timeout=PROCESS_WAIT)
    tool_round, _ = run_round(session, 'call hang__slow {"seconds": 600}')
    [call] = tool_round.calls
    assert call.state is CallState.FAILED
    assert "did not" in call.error  # "did not finish within" or "did not answer slow within"
    assert session.tools["hang__add"].run({"a": 4, "b": 4}) == "sum is 8"


def test_two_calls_in_parallel_each_get_their_own_answer(demo_session):
    results: dict[int, str] = {}

    def call(n: int) -> None:
        if n % 2:
            results[n] = demo_session.tools["demo__slow"].run({"seconds": 0.2})
        else:
            results[n] = demo_session.tools["demo__add"].run({"a": n, "b": 100})

    threads = [threading.Thread(target=call, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert results == {n: "slept 0.2" if n % 2 else f"sum is {n + 100}" for n in range(6)}


def test_the_tool_list_follows_the_servers_list_changed_notification(demo_session):
    session = demo_session
    assert "demo__extra" not in session.tools
    assert session.tools["demo__grow"].run({}) == "grown"
    wait_until(lambda: "demo__extra" in session.tools, "the new tool offered")
    wait_until(
        lambda: "demo__extra" in {t["name"] for t in session.settings.get("tools") or []},
        "the new tool sent with session.update",
    )
    assert session.tools["demo__extra"].run({}) == "extra here"


def test_allowed_tools_and_approval_per_tool(session):
    session.add_mcp_server(
        "few",
        command=demo(),
        allowed_tools=["add", "hostile"],
        approval=["add"],
        start_timeout=PROCESS_WAIT,
    )
    assert sorted(session.mcp["few"].tools) == ["few__add", "few__hostile"]
    assert session.tools["few__add"].approval
    assert not session.tools["few__hostile"].approval
    tool_round, _ = run_round(session, 'call few__add {"a": 1, "b": 2}')
    [call] = tool_round.calls  # asked from code: no one to approve, refused at once
    assert call.state is CallState.DENIED
    session.tools.approver = lambda call: threading.Thread(target=call.approve).start() or True
    tool_round, _ = run_round(session, 'call few__add {"a": 1, "b": 2}')
    assert tool_round.calls[0].output == "sum is 3"


def test_hostile_names_invalid_schemas_and_clashes(session):
    server = session.add_mcp_server("h", command=demo("--hostile"), start_timeout=PROCESS_WAIT)
    assert all(FUNCTION_NAME.match(name) for name in session.tools)
    assert "broken" in server.skipped
    assert "invalid" in server.skipped["broken"]
    assert not any("broken" in name for name in session.tools)
    hostile = exposed_name("h", '<img src=x onerror="alert(1)">')
    assert session.tools[hostile].run({}) == "named ran"
    # "h__z" offers add as h__z__add, which "h" already offers (its tool z__add).
    with pytest.raises(ConfigurationError, match=r"clash: 'h__z__add' .* 'h' and 'h__z'"):
        session.add_mcp_server("h__z", command=demo(), start_timeout=PROCESS_WAIT)
    assert "h__z" not in session.mcp
    # A tool registered by hand under a name a server wants is a clash too.
    session.register_tool(lambda: "mine", name="mine__add")
    with pytest.raises(ConfigurationError, match="already a registered tool"):
        session.add_mcp_server("mine", command=demo(), start_timeout=PROCESS_WAIT)


def test_a_server_that_prints_garbage_or_never_answers_is_one_line(session):
    with pytest.raises(MCPServerError) as garbage:
        session.add_mcp_server("junk", command=demo("--garbage"), start_timeout=PROCESS_WAIT)
    assert "not MCP JSON-RPC: 'this is not JSON-RPC <b>at all</b>'" in str(garbage.value)
    with pytest.raises(MCPServerError) as mute:
        session.add_mcp_server("mute", command=demo("--mute"), start_timeout=within(3))
    assert "did not answer initialize within" in str(mute.value)
    assert "mute server: reading and never answering" in str(mute.value)  # its stderr
    with pytest.raises(MCPServerError, match="No such file"):
        session.add_mcp_server("none", command=["/nonexistent/mcp-server"])
    for failure in (garbage, mute):
        assert "\n" not in str(failure.value)
    assert not session.mcp
    assert not any("__" in name for name in session.tools)


def test_remove_and_close_stop_the_server(demo_session):
    session = demo_session
    server = session.mcp["demo"]
    assert server.running
    session.close()
    assert not server.running  # stopped with the Session; starts again on its next call
    assert session.tools["demo__add"].run({"a": 1, "b": 2}) == "sum is 3"
    session.remove_mcp_server("demo")
    assert not server.running
    assert not any(n.startswith("demo__") for n in session.tools)
    with pytest.raises(ConfigurationError, match="no MCP server labelled 'demo'"):
        session.remove_mcp_server("demo")


# Streamable HTTP on 127.0.0.1, connected from the kernel --------------------------------


@pytest.fixture
def http_demo():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        demo("--http", str(port)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )

    def listening() -> bool:
        with socket.socket() as client:
            return client.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_until(listening, "the HTTP MCP server to listen", PROCESS_WAIT)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.kill()
        process.wait(WAIT)


def test_a_streamable_http_server_via_the_kernel_with_secret_headers(session, http_demo):
    secret = "mcp-header-secret-4242"
    server = session.add_mcp_server(
        "web",
        url=http_demo,
        via="kernel",
        headers={"X-Token": secret, "Authorization": "Bearer mcp-bearer-token-777"},
        start_timeout=PROCESS_WAIT,
    )
    tool_round, answer = run_round(session, 'call web__add {"a": 20, "b": 22}')
    assert tool_round.calls[0].output == "sum is 42"
    assert "sum is 42" in answer.text
    assert secret not in repr(server) + repr(server.spec) + repr(session.mcp)
    assert scrub(f"header {secret}") == "header ***"
    assert scrub("token=mcp-bearer-token-777") == "token=***"  # the token alone, too


def test_a_url_nobody_serves_is_one_line(session):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(MCPServerError) as failure:
        session.add_mcp_server("gone", url=f"http://127.0.0.1:{port}/mcp", via="kernel")
    assert "\n" not in str(failure.value)
    assert "'gone'" in str(failure.value)


# A published server from PyPI over stdio -------------------------------------------------


def test_the_published_mcp_server_time_over_stdio(session):
    pytest.importorskip("mcp_server_time")
    session.add_mcp_server(
        "time",
        command=[sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"],
        start_timeout=PROCESS_WAIT,
    )
    assert "time__get_current_time" in session.tools
    tool_round, _ = run_round(session, 'call time__get_current_time {"timezone": "UTC"}')
    [call] = tool_round.calls
    assert call.state is CallState.DONE, call.error
    assert json.loads(call.output)["timezone"] == "UTC"


def test_env_secrets_are_scrubbed_from_what_the_server_prints(session):
    secret = "mcp-env-secret-8675309"
    with pytest.raises(MCPServerError) as mute:
        session.add_mcp_server(
            "leaky", command=demo("--mute"), env={"DEMO_TOKEN": secret}, start_timeout=within(3)
        )
    assert "(token ***)" in str(mute.value)  # its stderr line, scrubbed
    assert secret not in str(mute.value)


# A local model (the embedded server's Chat Completions backend) ---------------------------


def test_a_local_model_calls_an_mcp_tool():
    with ChatStandIn() as standin:
        local = Session(chat_base_url=standin.base_url, chat_model=MODEL)
        try:
            local.connect()
            local.add_mcp_server("demo", command=demo(), start_timeout=PROCESS_WAIT)
            standin.replies.append(Reply(calls=[("demo__add", '{"a": 40, "b": 2}')]))
            tool_round, answer = run_round(local, "add forty and two")
            assert tool_round.calls[0].output == "sum is 42"
            assert answer.text == "The tool said: sum is 42"
            sent = {t["function"]["name"] for t in standin.requests[0]["body"]["tools"]}
            assert "demo__add" in sent  # the local model was offered the MCP tool
        finally:
            local.close()


def test_two_threads_adding_one_label_leave_one_server(session):
    outcomes: list[str] = []

    def add() -> None:
        try:
            session.add_mcp_server("twin", command=demo(), start_timeout=PROCESS_WAIT)
            outcomes.append("added")
        except ConfigurationError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=add) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PROCESS_WAIT)
    assert sorted(outcomes)[0] == "added"
    assert "an MCP server labelled 'twin' exists" in sorted(outcomes)[1]
    assert list(session.mcp) == ["twin"]
    assert session.tools["twin__add"].run({"a": 1, "b": 1}) == "sum is 2"


def test_the_published_mcp_server_git_on_a_temporary_repository(session, tmp_path):
    pytest.importorskip("mcp_server_git")
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "notes.txt").write_text("hello\n")
    session.add_mcp_server(
        "git",
        command=[sys.executable, "-m", "mcp_server_git", "--repository", str(repo)],
        allowed_tools=["git_status"],
        start_timeout=PROCESS_WAIT,
    )
    assert [name for name in session.tools if name.startswith("git__")] == ["git__git_status"]
    arguments = json.dumps({"repo_path": str(repo)})
    tool_round, _ = run_round(session, f"call git__git_status {arguments}")
    [call] = tool_round.calls
    assert call.state is CallState.DONE, call.error
    assert "notes.txt" in call.output  # untracked
