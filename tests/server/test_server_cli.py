"""The command line: ``python -m rt_notebook.server`` (what ``rt-notebook-server`` runs)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets
from server_helpers import user_text

from rt_notebook.server.cli import main
from tests.timing import PROCESS_WAIT, WAIT


@pytest.fixture
def script_file(tmp_path: Path) -> Path:
    path = tmp_path / "turns.json"
    path.write_text(json.dumps({"turns": ["Scripted hello from the CLI."]}))
    return path


def start_cli(*arguments: str, port: int = 0) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start the CLI; return the process and what it printed (``label: value`` lines)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "rt_notebook.server", "--port", str(port), *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    printed: dict[str, str] = {}
    for line in process.stdout:
        printed["text"] = printed.get("text", "") + line
        match = re.match(r"\s+(endpoint|websocket_base_url|base_url|token):\s+(\S+)", line)
        if match:
            printed[match.group(1)] = match.group(2)
        if line.startswith("Press Ctrl-C"):
            break
    else:
        process.wait(WAIT)
        assert process.stderr is not None
        raise AssertionError(f"the server did not start: {process.stderr.read()}")
    return process, printed


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:  # only if a test failed half-way
        if process.poll() is None:
            process.kill()
        process.communicate()


async def one_turn(url: str, token: str) -> str:
    async with websockets.connect(
        url, additional_headers={"Authorization": f"Bearer {token}"}
    ) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
        await ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {"type": "realtime", "output_modalities": ["text"]},
                }
            )
        )
        await ws.send(json.dumps({"type": "conversation.item.create", "item": user_text("hi")}))
        await ws.send(json.dumps({"type": "response.create"}))
        while True:
            event = json.loads(await ws.recv())
            if event["type"] == "response.output_text.done":
                return str(event["text"])


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_cli_serves_prints_how_to_connect_and_stops_cleanly(
    stop_signal: signal.Signals, script_file: Path, processes: list[subprocess.Popen[str]]
) -> None:
    process, printed = start_cli(
        "--token",
        "cli-token",
        "--pace",
        "0",
        "--responder",
        "scripted",
        "--script",
        str(script_file),
    )
    processes.append(process)
    assert printed["token"] == "cli-token"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", printed["base_url"])
    assert re.fullmatch(r"ws://127\.0\.0\.1:\d+/v1", printed["websocket_base_url"])
    assert printed["endpoint"] == printed["websocket_base_url"] + "/realtime?model=gpt-realtime-2.1"
    # A fresh server process imports the SDK's models on its first event.
    answer = asyncio.run(
        asyncio.wait_for(one_turn(printed["endpoint"], printed["token"]), PROCESS_WAIT)
    )
    assert answer == "Scripted hello from the CLI."
    process.send_signal(stop_signal)
    out, err = process.communicate(timeout=WAIT)
    assert process.returncode == 0, err
    assert "stopped" in out
    assert "Traceback" not in err


def test_cli_generates_a_token_when_none_is_given(processes: list[subprocess.Popen[str]]) -> None:
    process, printed = start_cli()
    processes.append(process)
    assert printed["token"].startswith("rtnb-")
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=WAIT)
    assert process.returncode == 0


async def first_reply(url: str, token: str, beta: bool) -> tuple[dict[str, object], int | None]:
    """The first event a client gets, and the close code if the server closes at once."""
    headers = {"Authorization": f"Bearer {token}"}
    if beta:
        headers["OpenAI-Beta"] = "realtime=v1"
    async with websockets.connect(url, additional_headers=headers) as ws:
        first = json.loads(await ws.recv())
        with contextlib.suppress(websockets.ConnectionClosed):
            if first["type"] == "error":
                await ws.recv()
        return first, ws.close_code


@pytest.mark.parametrize(
    ("arguments", "beta_welcome"), [((), False), (("--dialect", "beta"), True)]
)
def test_cli_speaks_ga_and_refuses_beta_clients_unless_started_for_beta(
    arguments: tuple[str, ...], beta_welcome: bool, processes: list[subprocess.Popen[str]]
) -> None:
    process, printed = start_cli(*arguments)
    processes.append(process)
    assert f"dialect: {'beta' if beta_welcome else 'ga'}" in printed["text"]
    first, code = asyncio.run(
        asyncio.wait_for(first_reply(printed["endpoint"], printed["token"], True), PROCESS_WAIT)
    )
    if beta_welcome:
        assert first["type"] == "session.created"
    else:
        assert first["type"] == "error"
        assert first["error"]["code"] == "beta_api_shape_disabled"  # type: ignore[index]
        assert code == 4000
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=WAIT)


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["--responder", "scripted"], "needs script"),
        (["--pace", "-1"], "--pace must be >= 0"),
        (["--dialect", "v2"], "invalid choice"),
    ],
)
def test_cli_rejects_bad_options(
    arguments: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(arguments)
    assert info.value.code == 2
    assert complaint in capsys.readouterr().err


PASTE_IN_IPYTHON = r"""
import sys
from IPython.core.interactiveshell import InteractiveShell

printed = sys.stdin.read().splitlines()
connect_line = next(line.strip() for line in printed if "rt_notebook.connect(" in line)
magic_lines = [line.strip() for line in printed if line.strip().startswith(("%env", "%config"))]
shell = InteractiveShell.instance()
for cell in ["%load_ext rt_notebook", *magic_lines, "%%realtime --session pasted --out r\nfirst"]:
    assert shell.run_cell(cell).success, cell
print("magics:", shell.user_ns["r"].text)
assert shell.run_cell(connect_line).success
assert shell.run_cell("answer = rt_notebook.connect().ask('second').wait(30).text").success
print("connect:", shell.user_ns["answer"])
"""


def test_the_printed_lines_work_pasted_into_ipython(processes: list[subprocess.Popen[str]]) -> None:
    process, printed = start_cli("--pace", "0")
    processes.append(process)
    # One turn first: a fresh server imports the SDK's models on its first event, which on a
    # loaded machine can outlast the pasted cells' own connect timeout (the library's 30 s).
    asyncio.run(asyncio.wait_for(one_turn(printed["endpoint"], printed["token"]), PROCESS_WAIT))
    pasted = subprocess.run(
        [sys.executable, "-c", PASTE_IN_IPYTHON],
        input=printed["text"],
        check=False,
        capture_output=True,
        text=True,
        timeout=PROCESS_WAIT,
    )
    assert pasted.returncode == 0, pasted.stderr
    assert "magics: Echo: first\n" in pasted.stdout
    assert "connect: Echo: second\n" in pasted.stdout
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=WAIT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def hold_open(url: str, token: str) -> websockets.ClientConnection:
    connection = await websockets.connect(
        url, additional_headers={"Authorization": f"Bearer {token}"}
    )
    assert json.loads(await connection.recv())["type"] == "session.created"
    return connection


@pytest.mark.parametrize("how", ["kill", "terminate"])
def test_a_fixed_port_server_can_be_restarted_at_once(
    how: str, processes: list[subprocess.Popen[str]]
) -> None:
    """Killed or stopped with clients connected, it starts again on the same port at once."""
    port = free_port()
    options = ("--token", "fixed-token", "--pace", "0")

    async def scenario() -> str:
        first, printed = start_cli(*options, port=port)
        processes.append(first)
        url = printed["endpoint"]
        held = await hold_open(url, "fixed-token")
        try:  # closed even when this fails: a socket left to the collector fails a later test
            await one_turn(url, "fixed-token")  # the socket has carried traffic both ways
            getattr(first, how)()
            await asyncio.to_thread(first.wait, WAIT)  # the loop stays free to answer its close
            with contextlib.suppress(websockets.ConnectionClosed):
                await asyncio.wait_for(held.recv(), WAIT)  # the client saw the server go
            second, printed_again = start_cli(*options, port=port)
            processes.append(second)
            assert printed_again["endpoint"] == url
            answer = await one_turn(url, "fixed-token")
        finally:
            await held.close()
        second.send_signal(signal.SIGINT)
        second.communicate(timeout=WAIT)
        assert second.returncode == 0
        return answer

    assert asyncio.run(asyncio.wait_for(scenario(), 2 * PROCESS_WAIT)) == "Echo: hi"  # 2 servers


def test_cli_checks_max_session_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--max-session-seconds", "0"])
    assert info.value.code == 2
    assert "--max-session-seconds must be > 0" in capsys.readouterr().err


def test_cli_max_session_seconds_ends_sessions(processes: list[subprocess.Popen[str]]) -> None:
    process, printed = start_cli("--token", "t0k", "--max-session-seconds", "0.5")
    processes.append(process)
    assert "sessions end after 0.5 seconds" in printed["text"]

    async def scenario() -> tuple[dict[str, object], websockets.ConnectionClosed]:
        connection = await hold_open(printed["endpoint"], "t0k")
        error = json.loads(await asyncio.wait_for(connection.recv(), PROCESS_WAIT))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(connection.recv(), WAIT)
        return error, closed.value

    error, closed = asyncio.run(scenario())
    reason = "Your session hit the maximum duration of 0.5 seconds."
    assert error["type"] == "error"
    assert error["error"] == {
        "type": "invalid_request_error",
        "code": "session_expired",
        "message": reason,
        "param": None,
        "event_id": None,
    }
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (1001, reason)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=WAIT)
