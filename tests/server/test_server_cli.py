"""The command line: ``python -m rt_notebook.server`` (what ``rt-notebook-server`` runs)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets
from server_helpers import user_text

from rt_notebook.server.cli import main


@pytest.fixture
def script_file(tmp_path: Path) -> Path:
    path = tmp_path / "turns.json"
    path.write_text(json.dumps({"turns": ["Scripted hello from the CLI."]}))
    return path


def start_cli(*arguments: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start the CLI; return the process and the printed ``url``/``token``/``base_url``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "rt_notebook.server", "--port", "0", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    printed: dict[str, str] = {}
    for line in process.stdout:
        match = re.match(r"\s+(url|base_url|token):\s+(\S+)", line)
        if match:
            printed[match.group(1)] = match.group(2)
        if line.startswith("Press Ctrl-C"):
            break
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
    assert printed["url"].startswith("ws://127.0.0.1:")
    answer = asyncio.run(asyncio.wait_for(one_turn(printed["url"], printed["token"]), 30))
    assert answer == "Scripted hello from the CLI."
    process.send_signal(stop_signal)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "stopped" in out
    assert "Traceback" not in err


def test_cli_generates_a_token_when_none_is_given(processes: list[subprocess.Popen[str]]) -> None:
    process, printed = start_cli()
    processes.append(process)
    assert printed["token"].startswith("rtnb-")
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=30)
    assert process.returncode == 0


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
