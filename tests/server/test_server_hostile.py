"""A hostile client: every bad frame is answered with an ``error`` and the connection goes
on; per-connection memory is capped; a server bound beyond loopback needs a token.

Through the real ``websockets`` client and the real ``openai`` SDK against the embedded
server on 127.0.0.1, plus the sans-I/O state with its real caps.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import subprocess
import sys
from typing import Any

import pytest
import websockets
from server_helpers import run, sdk_client, text_mode, user_text

from rt_notebook.protocol.events import Dialect, Event
from rt_notebook.server import EchoResponder, EmbeddedServer
from rt_notebook.server import state as server_state
from rt_notebook.server.cli import main
from rt_notebook.server.driver import MAX_FRAME_BYTES
from rt_notebook.server.frames import parse_client_frame
from rt_notebook.server.limits import MAX_CONVERSATION_CHARS, MAX_INPUT_AUDIO_BYTES
from rt_notebook.server.state import ConnectionState
from tests.timing import PROCESS_WAIT, within

DEEP_OBJECT = '{"a":' * 20_000 + "1" + "}" * 20_000
DEEP_ARRAY = "[" * 100_000 + "]" * 100_000
HUGE_INTEGER = '{"type": "session.update", "session": {"max_output_tokens": ' + "9" * 5_000 + "}}"
LONE_SURROGATE = json.dumps(
    {"type": "conversation.item.create", "item": user_text("half a pair: \ud800!")}
)
SURROGATE_KEY = '{"type": "session.update", "session": {"\\udc00": 1}}'

BAD_FRAMES: list[tuple[str, str | bytes, str]] = [
    ("deep object", DEEP_OBJECT, "invalid_json"),
    ("deep array", DEEP_ARRAY, "invalid_json"),
    ("5,000-digit integer", HUGE_INTEGER, "invalid_json"),
    ("lone surrogate in text", LONE_SURROGATE, "invalid_json"),
    ("lone surrogate in a key", SURROGATE_KEY, "invalid_json"),
    ("NaN", '{"type": "session.update", "session": {"temperature": NaN}}', "invalid_json"),
    ("cut frame", '{"type": "conversation.item.create", "item": {"type": "mess', "invalid_json"),
    ("not an object", "[1, 2, 3]", "invalid_type"),
    ("binary frame", b"\xff\xfe\x00\x01", "invalid_event"),
    ("binary JSON", b'{"type": "response.create"}', "invalid_event"),
    ("oversized garbage", "x" * (MAX_FRAME_BYTES - 1024), "invalid_json"),
    (
        "oversized audio append",
        json.dumps({"type": "input_audio_buffer.append", "audio": "A" * (16 * 1024 * 1024)}),
        "string_above_max_length",
    ),
]


async def _connect(server: EmbeddedServer) -> Any:
    connection = await websockets.connect(
        server.url + "?model=gpt-realtime",
        additional_headers={"Authorization": f"Bearer {server.token}"},
        max_size=None,
    )
    assert json.loads(await connection.recv())["type"] == "session.created"
    return connection


async def _until(connection: Any, wanted: str) -> list[Event]:
    """Receive until an event of type ``wanted``; every frame must be JSON (UTF-8)."""
    seen: list[Event] = []
    while True:
        raw = await asyncio.wait_for(connection.recv(), within(30))
        assert isinstance(raw, str)
        seen.append(json.loads(raw))
        if seen[-1]["type"] == wanted:
            return seen


async def _probe(connection: Any, tag: str) -> Event:
    """An event answered by an error naming ``tag``: proves the connection goes on."""
    probe = {"type": "conversation.item.retrieve", "item_id": "item_nope", "event_id": tag}
    await connection.send(json.dumps(probe))
    while True:
        event = json.loads(await asyncio.wait_for(connection.recv(), within(30)))
        if event["type"] == "error" and event["error"]["event_id"] == tag:
            return event


async def _one_turn(connection: Any, text: str) -> str:
    session = {"type": "realtime", "output_modalities": ["text"]}
    await connection.send(json.dumps({"type": "session.update", "session": session}))
    await connection.send(json.dumps({"type": "conversation.item.create", "item": user_text(text)}))
    await connection.send(json.dumps({"type": "response.create"}))
    events = await _until(connection, "response.done")
    return next(e["text"] for e in events if e["type"] == "response.output_text.done")


@pytest.mark.timeout(within(180))
def test_every_bad_frame_gets_an_error_and_the_connection_goes_on(
    fast_server: EmbeddedServer,
) -> None:
    async def scenario() -> list[tuple[str, str]]:
        answered = []
        async with await _connect(fast_server) as connection:
            for name, frame, _ in BAD_FRAMES:
                await connection.send(frame)
                event = json.loads(await asyncio.wait_for(connection.recv(), within(30)))
                assert event["type"] == "error", (name, event)
                answered.append((name, event["error"]["code"]))
            await _probe(connection, "after-bad-frames")
            assert await _one_turn(connection, "still here") == "Echo: still here"
        return answered

    answered = run(scenario())
    assert answered == [(name, code) for name, _, code in BAD_FRAMES]


@pytest.mark.timeout(within(300))
def test_a_fuzz_of_mutated_frames_never_closes_the_connection(fast_server: EmbeddedServer) -> None:
    """300 seeded mutations of valid events (cut, bytes flipped, nested, spliced numbers);
    after each a probe must be answered on the same connection."""
    seeds = [
        {"type": "conversation.item.create", "item": user_text("fuzz me")},
        {"type": "session.update", "session": {"type": "realtime", "instructions": "x"}},
        {"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\0" * 960).decode()},
        {"type": "response.cancel"},
        {"type": "conversation.item.truncate", "item_id": "x", "content_index": 0},
    ]
    chooser = random.Random(23)

    def mutate(text: str) -> str | bytes:
        kind = chooser.randrange(7)
        cut = chooser.randrange(len(text))
        if kind == 0:
            return text[:cut]
        if kind == 1:
            return (
                text[:cut]
                + chooser.choice(["\\ud83d", "\\udfff", "\\u0000", '"', "{"])
                + text[cut:]
            )
        if kind == 2:
            return text[:cut] + "9" * chooser.choice([10, 400, 4_400, 9_000]) + text[cut:]
        if kind == 3:
            depth = chooser.choice([100, 999, 5_000, 50_000])
            return text[:cut] + "[" * depth + "]" * depth + text[cut:]
        if kind == 4:
            data = bytearray(text.encode())
            data[cut] = chooser.randrange(256)
            return bytes(data)
        if kind == 5:
            return text.replace(":", ": -1e999,", 1)
        return text[:cut] + chr(chooser.randrange(0x20, 0x2FFFF)) + text[cut:]

    async def scenario() -> int:
        async with await _connect(fast_server) as connection:
            for number in range(300):
                frame = mutate(json.dumps(chooser.choice(seeds)))
                if isinstance(frame, bytes):
                    with contextlib.suppress(UnicodeDecodeError):  # else a binary frame
                        frame = frame.decode()
                await connection.send(frame)
                await _probe(connection, f"probe-{number}")
            await connection.send(json.dumps({"type": "input_audio_buffer.clear"}))
            await connection.send(json.dumps({"type": "response.cancel"}))
            assert "fine" in await _one_turn(connection, "fine after the fuzz")
            return number + 1

    assert run(scenario()) == 300


def test_a_lone_surrogate_through_the_openai_sdk_is_refused_not_fatal(
    fast_server: EmbeddedServer,
) -> None:
    async def scenario() -> tuple[Event, list[Event]]:
        async with sdk_client(fast_server) as client:
            await text_mode(client)
            bad = {"type": "conversation.item.create", "item": user_text("broken \udc80 pair")}
            await client.connection.send(bad)
            error = await client.next()
            await client.send({"type": "conversation.item.create", "item": user_text("whole")})
            await client.send({"type": "response.create"})
            return error, await client.until("response.done")

    error, events = run(scenario())
    assert error["type"] == "error"
    assert error["error"]["code"] == "invalid_json"
    assert "surrogate" in error["error"]["message"]
    done = next(e for e in events if e["type"] == "response.output_text.done")
    assert done["text"] == "Echo: whole"


def test_conversation_memory_is_capped_through_the_sdk(
    fast_server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 items of 5 MB with the cap set to 12 MB: refused with a clear error past the cap,
    the connection goes on, and deleting items makes room again."""
    cap = 12 * 1024 * 1024
    monkeypatch.setattr(server_state, "MAX_CONVERSATION_CHARS", cap)
    text = "x" * (5 * 1024 * 1024)

    async def scenario() -> list[Event]:
        answers = []
        async with sdk_client(fast_server) as client:
            await text_mode(client)
            for number in range(20):
                item = {**user_text(text), "id": f"item_big{number:02d}"}
                await client.send({"type": "conversation.item.create", "item": item})
                while (event := await client.next())["type"] not in (
                    "conversation.item.done",
                    "error",
                ):
                    pass
                answers.append(event)
            await client.send({"type": "conversation.item.delete", "item_id": "item_big00"})
            await client.until("conversation.item.deleted")
            item = {**user_text(text), "id": "item_again"}
            await client.send({"type": "conversation.item.create", "item": item})
            answers.append((await client.until("conversation.item.done"))[-1])
        return answers

    answers = run(scenario())
    kinds = [event["type"] for event in answers]
    assert kinds[:2] == ["conversation.item.done"] * 2
    assert kinds[2:20] == ["error"] * 18
    error = answers[2]["error"]
    assert error["code"] == "conversation_too_large"
    assert f"{cap:,}" in error["message"]
    assert answers[20]["item"]["id"] == "item_again"


def _state() -> ConnectionState:
    return ConnectionState(
        model="gpt-realtime", dialect=Dialect.GA, responder=EchoResponder(), now=0.0
    )


def _feed(state: ConnectionState, event: Event) -> list[Event]:
    return [*state.receive_text(json.dumps(event)), *state.process()]


def test_the_input_audio_buffer_is_capped_at_its_real_size() -> None:
    state = _state()
    _feed(
        state,
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
        },
    )
    chunk = base64.b64encode(b"\x01\x00" * (5 * 1024 * 1024)).decode()  # 10 MiB of PCM
    answers = [
        _feed(state, {"type": "input_audio_buffer.append", "audio": chunk}) for _ in range(4)
    ]
    assert answers[:3] == [[], [], []]
    (error,) = answers[3]
    assert error["error"]["code"] == "input_audio_buffer_full"
    assert f"{MAX_INPUT_AUDIO_BYTES:,}" in error["error"]["message"]
    cleared = _feed(state, {"type": "input_audio_buffer.clear"})
    assert cleared[-1]["type"] == "input_audio_buffer.cleared"
    assert _feed(state, {"type": "input_audio_buffer.append", "audio": chunk}) == []


def test_the_conversation_is_capped_at_its_real_size() -> None:
    state = _state()
    text = "y" * (5 * 1024 * 1024)
    codes = []
    for _ in range(20):
        out = _feed(state, {"type": "conversation.item.create", "item": user_text(text)})
        codes.append(out[0]["type"] if out[0]["type"] != "error" else out[0]["error"]["code"])
    accepted = MAX_CONVERSATION_CHARS // len(text)
    assert codes[:accepted] == ["conversation.item.added"] * accepted
    assert set(codes[accepted:]) == {"conversation_too_large"}
    assert state.conversation.chars <= MAX_CONVERSATION_CHARS


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (DEEP_OBJECT, "invalid_json"),
        (HUGE_INTEGER, "invalid_json"),
        (SURROGATE_KEY, "invalid_json"),
        ('{"ok": "\\ud83d\\ude00 a pair is fine"}', None),
    ],
)
def test_parse_client_frame_never_raises(text: str, code: str | None) -> None:
    parsed = parse_client_frame(text)
    if code is None:
        assert parsed == {"ok": "\U0001f600 a pair is fine"}
    else:
        assert getattr(parsed, "code", None) == code


def test_a_host_beyond_loopback_needs_a_token(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--host", "0.0.0.0"])
    assert info.value.code == 2
    assert "needs --token" in capsys.readouterr().err
    with pytest.raises(ValueError, match="choose a token"):
        EmbeddedServer(host="0.0.0.0")
    with pytest.raises(ValueError, match="choose a token"):
        EmbeddedServer(host="")


def test_a_host_beyond_loopback_with_a_token_warns() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rt_notebook.server",
            "--host",
            "0.0.0.0",
            "--token",
            "t-0123456789",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        warning = process.stderr.readline()
    finally:
        process.terminate()
        process.communicate(timeout=PROCESS_WAIT)
    assert warning.startswith("warning: --host 0.0.0.0 serves beyond this machine")


def test_loopback_hosts_need_no_token() -> None:
    from rt_notebook.server.admission import is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "", "::", "192.168.1.2", "example.org"))


class _ClientThatDoesNotRead:
    """A connection whose client sends ``frames`` and never reads: each send blocks."""

    def __init__(self, frames: list[str]) -> None:
        self.frames = frames
        self.taken = 0

    async def send(self, text: str) -> None:
        await asyncio.Event().wait()  # the client's receive window stays full

    def __aiter__(self) -> Any:
        return self._frames()

    async def _frames(self) -> Any:
        for frame in self.frames:
            self.taken += 1
            yield frame
        await asyncio.Event().wait()


def test_a_client_that_does_not_read_is_not_read_either(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pump is stuck writing to a client that does not read; the receiver stops taking
    its frames once 32 MiB wait to be applied, instead of queueing all of them."""
    from rt_notebook.server import driver

    monkeypatch.setattr(driver, "_BATCHED_WRITES", False)
    item = json.dumps({"type": "conversation.item.create", "item": user_text("z" * 4_000_000)})
    client = _ClientThatDoesNotRead([item] * 20)
    waiting = asyncio.Event()
    wait_for_pump = driver._Link._wait_for_pump

    async def noted(self: Any) -> None:
        waiting.set()
        await wait_for_pump(self)

    monkeypatch.setattr(driver._Link, "_wait_for_pump", noted)

    async def scenario() -> int:
        link = driver._Link(
            client, _state(), driver.DriverConfig(token="t", responder=EchoResponder())
        )
        link.send = _send_after_start(link)  # session.created goes out; then the client stalls
        task = asyncio.create_task(link.run())
        await asyncio.wait_for(waiting.wait(), within(30))
        taken = client.taken
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return taken

    taken = run(scenario())
    assert taken <= 10  # 8 frames of 4 MB pass 32 MiB; the first was applied (then stuck)


def _send_after_start(link: Any) -> Any:
    original = link.send
    started = False

    async def send(events: list[Event]) -> None:
        nonlocal started
        if not started:
            started = True
            return
        await original(events)

    return send
