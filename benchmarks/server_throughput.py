"""Goal 4: the embedded server streams at least 0.8x as fast as a bare websockets sender.

Three processes: the embedded server (``rt-notebook-server --pace 0``) in one, a bare
``websockets`` sender in another (it replays the very frames the embedded server sent, one
``send()`` each, once the client sends any frame), and the client here. The client is a
raw socket that speaks just enough WebSocket to ask and then only scans bytes for
``response.done``: far cheaper per frame than either sender, so the senders are measured.

Each repetition asks the embedded server for a long echo (one ``response.output_text.delta``
per word) and the bare sender for the same frames; repetitions alternate. Printed: frames
per second from the first frame after the request to ``response.done`` (min and median),
each sender's CPU microseconds per frame (from ``/proc``), the ratio of medians and the goal.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _goals import goal
from _server import RawClient, bare_sender_process, cpu_seconds, server_process
from _timing import interleaved

WORDS = 10_000
REPETITIONS = 5
GOAL = 0.8
DONE = b'{"type":"response.done"'


def ask_long_echo(url: str, token: str) -> RawClient:
    """Connect, switch to text, add the long message; the next send is the request."""
    client = RawClient(url, token)
    client.wait_for(b"session.created")
    client.send(
        {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}}
    )
    client.wait_for(b"session.updated")
    text = " ".join(f"w{n}" for n in range(WORDS))
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    client.send({"type": "conversation.item.create", "item": item})
    client.wait_for(b'"type":"conversation.item.done"')
    return client


def record_frames(url: str, token: str) -> list[str]:
    """The frames the embedded server sends for one long echo, from response.created on."""
    import asyncio

    from websockets.asyncio.client import connect

    async def run() -> list[str]:
        headers = {"Authorization": f"Bearer {token}"}
        async with connect(f"{url}/realtime?model=gpt-realtime", additional_headers=headers) as ws:
            await ws.recv()
            await ws.send(
                json.dumps(
                    {
                        "type": "session.update",
                        "session": {"type": "realtime", "output_modalities": ["text"]},
                    }
                )
            )
            text = " ".join(f"w{n}" for n in range(WORDS))
            item = {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": text}],
            }
            await ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
            await ws.send(json.dumps({"type": "response.create"}))
            frames: list[str] = []
            while True:
                frame = str(await ws.recv())
                if frame.startswith('{"type":"response.created"') or frames:
                    frames.append(frame)
                if frame.startswith(DONE.decode()):
                    return frames

    return asyncio.run(run())


Run = tuple[float, float, float]  # seconds from the first frame to done, server CPU, ours


def measure_embedded(url: str, token: str, pid: int) -> Run:
    client = ask_long_echo(url, token)
    return timed(client, {"type": "response.create"}, pid)


def measure_bare(url: str, pid: int) -> Run:
    client = RawClient(url, "unused")
    client.wait_for(b"session.created")
    return timed(client, {"type": "go"}, pid)


def timed(client: RawClient, request: dict[str, object], pid: int) -> Run:
    cpu, own = cpu_seconds(pid), time.process_time()
    client.send(request)
    first = client.wait_for(DONE)
    elapsed = time.perf_counter() - first
    cpu, own = cpu_seconds(pid) - cpu, time.process_time() - own
    client.close()
    return elapsed, cpu, own


def main() -> None:
    with server_process() as (url, token, pid):
        frames = record_frames(url, token)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "frames.jsonl"
            path.write_text("\n".join(frames) + "\n", encoding="utf-8")
            with bare_sender_process(path) as (bare_url, bare_pid):
                runs = interleaved(
                    {
                        "embedded server": lambda _: measure_embedded(url, token, pid),
                        "bare websockets sender": lambda _: measure_bare(bare_url, bare_pid),
                    },
                    REPETITIONS,
                )
    count = len(frames)
    print(
        f"server throughput: {count} frames per answer ({WORDS} text deltas), "
        f"3 processes, {REPETITIONS} interleaved repetitions"
    )
    per_frame: dict[str, list[float]] = {}
    for name in ("bare websockets sender", "embedded server"):
        per_frame[name] = [seconds / count * 1e6 for seconds, _, _ in runs[name]]
        cpu = statistics.median(cpu for _, cpu, _ in runs[name]) / count
        own = statistics.median(own for _, _, own in runs[name]) / count
        per_second = [count / seconds for seconds, _, _ in runs[name]]
        print(
            f"  {name:24s} median {statistics.median(per_second):9,.0f} frames/s"
            f"  min {min(per_second):9,.0f}  max {max(per_second):9,.0f}"
            f"  server CPU {cpu * 1e6:5.1f} us/frame (client {own * 1e6:4.1f})"
        )
    # Embedded rate / bare rate = bare time per frame / embedded time per frame.
    base, embedded = per_frame["bare websockets sender"], per_frame["embedded server"]
    goal(
        "4",
        "server rate, embedded / bare sender",
        statistics.median(base) / statistics.median(embedded),
        min(base) / min(embedded),
        GOAL,
        at_most=False,
        unit="x",
    )


if __name__ == "__main__":
    main()
