"""Benchmark helpers: servers in subprocesses, so that they do not share the client's GIL.

- :func:`server_process`: the embedded server's CLI (``rt-notebook-server --pace 0``);
- :func:`bare_sender_process`: a bare ``websockets`` server that, once a client sends any
  frame, replays recorded frames with one ``send()`` each (the baseline of a server);
- :func:`blaster_process`: a source much faster than any consumer: it answers the protocol
  with the embedded server's sans-I/O state, but a response is computed in full before its
  ``response.created`` leaves, then written as pre-encoded WebSocket frames in large writes.

Run as a script (``python _server.py bare FRAMES PORT`` / ``python _server.py blast WORDS
PORT``) it is one of those servers; it prints ``listening`` once it accepts connections.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import ctypes.util
import json
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """CPU time of process ``pid`` so far, to the nanosecond (its POSIX CPU-time clock)."""
    clock = ctypes.c_int()
    if _libc.clock_getcpuclockid(pid, ctypes.byref(clock)) == 0:
        return time.clock_gettime(clock.value)
    # Elsewhere: user + system time from /proc, in clock ticks (usually 10 ms).
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_libc = ctypes.CDLL(ctypes.util.find_library("c"))


@contextlib.contextmanager
def _process(command: list[str], ready: str) -> Iterator[subprocess.Popen[str]]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if ready in line:
                break
        else:
            raise RuntimeError(f"{command} did not start")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:  # raw clients do not answer closing handshakes
            process.kill()
            process.wait(5)


@contextlib.contextmanager
def server_process(token: str = TOKEN) -> Iterator[tuple[str, str, int]]:
    """Yield (websocket_base_url, token, pid) of a pace-0 embedded server in a subprocess."""
    port = free_port()
    command = [sys.executable, "-m", "rt_notebook.server", "--port", str(port)]
    command += ["--token", token, "--pace", "0"]
    with _process(command, "base_url:") as process:
        yield f"ws://127.0.0.1:{port}/v1", token, process.pid


@contextlib.contextmanager
def bare_sender_process(frames: Path) -> Iterator[tuple[str, int]]:
    """Yield (websocket_base_url, pid) of a bare sender replaying ``frames`` (JSON lines)."""
    port = free_port()
    command = [sys.executable, __file__, "bare", str(frames), str(port)]
    with _process(command, "listening") as process:
        yield f"ws://127.0.0.1:{port}/v1", process.pid


@contextlib.contextmanager
def blaster_process(words: int) -> Iterator[tuple[str, str, int]]:
    """Yield (websocket_base_url, token, pid) of a blaster answering ``words``-word echoes."""
    port = free_port()
    command = [sys.executable, __file__, "blast", str(words), str(port)]
    with _process(command, "listening") as process:
        yield f"ws://127.0.0.1:{port}/v1", TOKEN, process.pid


class RawClient:
    """A blocking WebSocket client that sends masked text frames and scans received bytes."""

    def __init__(self, websocket_base_url: str, token: str) -> None:
        host, port = websocket_base_url.removeprefix("ws://").split("/")[0].split(":")
        self.sock = socket.create_connection((host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                "GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Authorization: Bearer {token}\r\n\r\n"
            ).encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send(self, event: dict[str, object]) -> None:
        payload = json.dumps(event).encode()
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", 0x81, 0x80 | size)
        elif size < 1 << 16:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, size)
        else:
            header = struct.pack("!BBQ", 0x81, 0x80 | 127, size)
        # A zero masking key leaves the payload as it is; the frame is still a valid masked one.
        self.sock.sendall(header + b"\0\0\0\0" + payload)

    def wait_for(self, marker: bytes, count: int = 1) -> float:
        """Read until ``marker`` has shown up ``count`` times; return when bytes first came."""
        first = 0.0
        while True:
            index = self.buffer.find(marker)
            if index >= 0:
                self.buffer = self.buffer[index + len(marker) :]
                count -= 1
                if count == 0:
                    return first or time.perf_counter()
                continue
            chunk = self.sock.recv(1 << 20)
            if not first:
                first = time.perf_counter()
            assert chunk, "connection closed"
            # Keep what could be the start of a marker cut in two by the chunking.
            self.buffer = self.buffer[-len(marker) + 1 :] + chunk

    def close(self) -> None:
        self.sock.close()


# The servers themselves (run in the subprocess)


async def _bare(frames: list[str], port: int) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    async def handler(connection: ServerConnection) -> None:
        await connection.send('{"type":"session.created","event_id":"event_0"}')
        await connection.recv()  # the client's trigger
        for frame in frames:
            await connection.send(frame)
        await connection.wait_closed()

    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None):
        print("listening", flush=True)
        await asyncio.Future()


def _frame(text: str) -> bytes:
    """An unmasked, unfragmented WebSocket text frame (RFC 6455 section 5.2)."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        return struct.pack("!BB", 0x81, size) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


async def _blast(words: int, port: int) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    from rt_notebook.protocol.events import Dialect
    from rt_notebook.server.responders import PlannedMessage, ResponseRequest
    from rt_notebook.server.state import ConnectionState

    text = " ".join(f"w{n}" for n in range(words))

    class LongAnswer:
        name = "blast"

        def respond(self, request: ResponseRequest) -> list[PlannedMessage]:
            return [PlannedMessage(text)]

    def encode(event: object) -> str:
        return json.dumps(event, ensure_ascii=False, separators=(",", ":"))

    async def write(connection: ServerConnection, events: list[dict[str, object]]) -> None:
        data = b"".join(_frame(encode(event)) for event in events)
        for start in range(0, len(data), 1 << 20):
            # Whole frames only pass through here and keepalive pings are off, so writing
            # to the transport directly cannot interleave with websockets' own frames.
            connection.transport.write(data[start : start + (1 << 20)])
            await connection.drain()

    async def handler(connection: ServerConnection) -> None:
        dialect = (
            Dialect.BETA
            if "realtime=v1" in (connection.request.headers.get("OpenAI-Beta") or "")
            else Dialect.GA
        )  # type: ignore[union-attr]
        state = ConnectionState(
            model="blast", dialect=dialect, responder=LongAnswer(), now=time.time()
        )
        await write(connection, state.start())
        with contextlib.suppress(Exception):
            async for message in connection:
                out = state.receive_text(message if isinstance(message, str) else message.decode())
                out += state.process()
                while state.streaming:  # the whole response, before its first frame leaves
                    out += state.advance()
                await write(connection, out)

    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None):
        print("listening", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    kind, argument, port_text = sys.argv[1:4]
    if kind == "bare":
        asyncio.run(_bare(Path(argument).read_text(encoding="utf-8").splitlines(), int(port_text)))
    else:
        asyncio.run(_blast(int(argument), int(port_text)))
