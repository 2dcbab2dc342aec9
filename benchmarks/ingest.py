"""Goal 3: the Session ingests server events at least 0.8x as fast as a bare loop.

A blasting server runs in a subprocess (``_server.py blast``): it answers the protocol with
the embedded server's sans-I/O state, but computes a whole response before its
``response.created`` leaves, then writes it as pre-encoded WebSocket frames in 1 MiB writes,
far faster than any consumer. So the consumer is the bottleneck, and two consumers read
the same answer (one ``response.output_text.delta`` per word):

- **bare loop**: ``websockets`` ``recv()`` + ``json.loads`` until ``response.done``;
- **Session**: ``rt_notebook.Session`` (the SDK connection, the conversation mirror,
  routing, one subscriber that counts).

Each measures from ``response.created`` to ``response.done`` as it sees them (the Session
through its subscriber). Repetitions alternate. Printed: events per second (median and
min), the consumer's CPU microseconds per event, the ratio of medians and the goal.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _server import blaster_process
from websockets.asyncio.client import connect

WORDS = 10_000
REPETITIONS = 5
GOAL = 0.8
TEXT = " ".join(f"w{i}" for i in range(WORDS))

Sample = tuple[int, float, float]  # (events, seconds, CPU seconds) from created to done


async def bare_loop(url: str, token: str) -> Sample:
    headers = {"Authorization": f"Bearer {token}"}
    async with connect(
        f"{url}/realtime?model=gpt-realtime", additional_headers=headers, max_size=None
    ) as ws:
        session = {"type": "realtime", "output_modalities": ["text"]}
        await ws.send(json.dumps({"type": "session.update", "session": session}))
        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": TEXT}],
        }
        await ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
        await ws.send(json.dumps({"type": "response.create"}))
        events, start, cpu = 0, 0.0, 0.0
        while True:
            event = json.loads(await ws.recv())
            events += 1
            if event["type"] == "response.created":
                events, start, cpu = 1, time.perf_counter(), time.process_time()
            elif event["type"] == "response.done":
                return events, time.perf_counter() - start, time.process_time() - cpu


def session_run(url: str, token: str) -> Sample:
    from rt_notebook.protocol.conversation import ResponseCreated, ResponseDone
    from rt_notebook.session import Session

    session = Session(websocket_base_url=url, api_key=token).connect()
    seen: dict[str, Any] = {"events": 0, "start": 0.0, "cpu": 0.0}

    def count(_session: object, changes: Any) -> None:
        seen["events"] += 1
        for change in changes:
            if isinstance(change, ResponseCreated):
                seen.update(events=1, start=time.perf_counter(), cpu=time.process_time())
            elif isinstance(change, ResponseDone):
                seen.update(end=time.perf_counter(), end_cpu=time.process_time())
                seen["count"] = seen["events"]

    session.add_message(TEXT)
    session.subscribe(count)
    result = session.create_response().wait(120)
    session.close()
    assert result.status == "completed", result.status
    return seen["count"], seen["end"] - seen["start"], seen["end_cpu"] - seen["cpu"]


def main() -> None:
    bare: list[Sample] = []
    ours: list[Sample] = []
    with blaster_process(WORDS) as (url, token, _pid):
        asyncio.run(bare_loop(url, token))  # warm-up, both
        session_run(url, token)
        for _ in range(REPETITIONS):  # interleaved
            bare.append(asyncio.run(bare_loop(url, token)))
            ours.append(session_run(url, token))
    print(
        f"ingest: one answer of {WORDS} words from a blasting server in a subprocess, "
        f"{REPETITIONS} interleaved repetitions"
    )
    rates = []
    for name, samples in (("bare recv + json.loads", bare), ("rt_notebook Session", ours)):
        per_second = [events / seconds for events, seconds, _ in samples]
        cpu = statistics.median(cpu / events for events, _, cpu in samples)
        rates.append(statistics.median(per_second))
        print(
            f"  {name:24s} {samples[0][0]:6d} events  median {rates[-1]:9,.0f} events/s"
            f"  min {min(per_second):9,.0f}  CPU {cpu * 1e6:5.1f} us/event"
        )
    ratio = rates[1] / rates[0]
    verdict = "met" if ratio >= GOAL else "NOT met"
    print(f"  ratio Session/bare (medians): {ratio:.2f}   goal >= {GOAL}: {verdict}")


if __name__ == "__main__":
    main()
