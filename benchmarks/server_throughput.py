"""How fast the embedded server streams events to an ``openai`` SDK client.

Two senders, one client loop, same run:

- **embedded server**: ``EmbeddedServer(pace=0)`` (its own thread and loop, as in a notebook)
  echoes a long user message word by word: one ``response.output_text.delta`` per word;
- **bare websockets baseline**: a minimal ``websockets`` server (also on its own thread)
  that sends the very same frames, pre-encoded, as fast as it can.

The client is ``AsyncOpenAI(...).realtime.connect()`` reading with ``recv_bytes()`` and
looking at each frame's type, until ``response.done``. The rate is frames received per
second from the first streamed frame to ``response.done``; the best of a few rounds is
reported, then the ratio server / baseline (how much the protocol work costs).

Run: ``.venv/bin/python benchmarks/server_throughput.py`` (about 10-20 s on 2 cores).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
from collections.abc import Awaitable, Callable

from openai import AsyncOpenAI
from websockets.asyncio.server import ServerConnection, serve

from rt_notebook.server import EmbeddedServer

WORDS = 20_000
ROUNDS = 5
MODEL = "gpt-realtime"

Sender = Callable[[], Awaitable[None]]


async def receive_stream(
    base_url: str, token: str, trigger: Callable[[object], Awaitable[None]]
) -> tuple[int, float, list[bytes]]:
    """Connect with the SDK, run ``trigger(connection)``, read frames until ``response.done``.

    Returns (frames after the trigger, seconds from the first of them to response.done,
    the frames themselves).
    """
    async with (
        AsyncOpenAI(api_key=token, base_url=base_url) as client,
        client.realtime.connect(model=MODEL) as connection,
    ):
        await connection.recv_bytes()  # session.created
        await trigger(connection)
        frames: list[bytes] = []
        first = 0.0
        while True:
            frame = await connection.recv_bytes()
            if not frames:
                first = time.perf_counter()
            frames.append(frame)
            if json.loads(frame)["type"] == "response.done":
                return len(frames), time.perf_counter() - first, frames


async def ask_for_long_echo(connection: object) -> None:
    send = connection.send  # type: ignore[attr-defined]
    words = " ".join(f"w{n}" for n in range(WORDS))
    await send(
        {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}}
    )
    await connection.recv_bytes()  # type: ignore[attr-defined]  # session.updated
    await send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": words}],
            },
        }
    )
    await send({"type": "response.create"})


async def nothing(connection: object) -> None:
    return None


class BareSender:
    """A websockets server on its own thread that sends fixed frames to each client."""

    def __init__(self, frames: list[str]) -> None:
        self.frames = frames
        self.port = 0
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _handler(self, connection: ServerConnection) -> None:
        await connection.send('{"type":"session.created","event_id":"event_0"}')
        for frame in self.frames:
            await connection.send(frame)
        await connection.wait_closed()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._handler, "127.0.0.1", 0, compression=None) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> BareSender:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


async def measure() -> None:
    server_rates: list[float] = []
    frames: list[bytes] = []
    with EmbeddedServer(pace=0) as server:
        for _ in range(ROUNDS):
            count, seconds, frames = await receive_stream(
                server.base_url, server.token, ask_for_long_echo
            )
            server_rates.append(count / seconds)
    # The same frames the server sent, minus the acknowledgements that came before the stream.
    replay = [frame.decode() for frame in frames]
    baseline_rates: list[float] = []
    with BareSender(replay) as bare:
        for _ in range(ROUNDS):
            count, seconds, _ = await receive_stream(
                f"http://127.0.0.1:{bare.port}/v1", "unused", nothing
            )
            baseline_rates.append(count / seconds)

    print(f"frames per response: {len(frames)} ({WORDS} text deltas and the events around them)")
    report("embedded server", server_rates)
    report("bare websockets", baseline_rates)
    best = max(server_rates) / max(baseline_rates)
    typical = statistics.median(server_rates) / statistics.median(baseline_rates)
    print(f"ratio server/baseline: {best:.2f} (best rounds), {typical:.2f} (medians)")


def report(name: str, rates: list[float]) -> None:
    rounds = ", ".join(f"{rate:,.0f}" for rate in rates)
    print(
        f"{name + ':':18} best {max(rates):8,.0f} events/s, "
        f"median {statistics.median(rates):8,.0f}  (rounds: {rounds})"
    )


if __name__ == "__main__":
    asyncio.run(measure())
