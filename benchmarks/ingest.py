"""Goal 3: the Session ingests server events at least as fast as a bare loop (CPU time).

A blasting server runs in a subprocess (``_server.py blast``): it answers the protocol with
the embedded server's sans-I/O state, but computes a whole response before its
``response.created`` leaves, then writes it as pre-encoded WebSocket frames in 1 MiB writes,
far faster than any consumer. So the consumer is the bottleneck, and two consumers read
the same answer (one ``response.output_text.delta`` per word):

- **bare loop**: ``websockets`` ``recv()`` + ``json.loads`` until ``response.done``;
- **Session**: ``rt_notebook.Session`` (the SDK connection, the conversation mirror,
  routing, one subscriber that counts).

Each measures from ``response.created`` to ``response.done`` as it sees them (the Session
through its subscriber) and counts the events in between (the Session from the turn's
timeline: its subscriber gets the deltas of one reader step in one call). One Session
answers every repetition, as in a notebook; the bare loop connects per repetition (outside
the measured span). Both start each repetition with a full garbage collection, so a
collection owed to earlier work (connecting, importing) does not land in one side's span.
Repetitions alternate. Printed: wall and CPU microseconds per event (median and min) of
each, and the goal figure: the Session's rate over the bare loop's from CPU time, from the
medians (and from the minimums); the same ratio from wall time is printed too.
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _goals import goal
from _server import blaster_process
from websockets.asyncio.client import connect

WORDS = 10_000
REPETITIONS = 11
GOAL = 1.0
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


class SessionRun:
    """One Session, connected once, asking for the same answer at each repetition (as a
    notebook's Session answers cell after cell), with a subscriber that counts."""

    def __init__(self, url: str, token: str) -> None:
        from rt_notebook.client.session import Session
        from rt_notebook.protocol.conversation import ItemDelta, ResponseCreated, ResponseDone

        self.session = Session(websocket_base_url=url, api_key=token).connect()
        seen: dict[str, Any] = {"start": 0.0, "cpu": 0.0}
        self.seen = seen
        # The subscriber may hear of the response's end just after wait() returns (they run
        # on different threads): each repetition waits for both.
        self.done = done = threading.Event()

        def count(_session: object, changes: Any) -> None:
            # A reader step delivers its changes in one call: deltas, and sometimes the
            # response's start or end among them (not only first), so each is looked at.
            for change in changes:
                if type(change) is ItemDelta:
                    continue
                if isinstance(change, ResponseCreated):
                    seen.update(start=time.perf_counter(), cpu=time.process_time())
                elif isinstance(change, ResponseDone):
                    seen.update(end=time.perf_counter(), end_cpu=time.process_time())
                    done.set()

        self.session.subscribe(count)

    def __call__(self) -> Sample:
        self.session.add_message(TEXT)
        gc.collect()  # as before the bare loop: no collection left over from earlier work
        self.done.clear()
        handle = self.session.create_response()
        result = handle.wait(120)
        assert result.status == "completed", result.status
        assert self.done.wait(120), "the subscriber never saw the response end"
        seen = self.seen
        return (
            self.events(handle.request_id),
            seen["end"] - seen["start"],
            seen["end_cpu"] - seen["cpu"],
        )

    def events(self, tag: str) -> int:
        """Events received from ``response.created`` to ``response.done``, as the bare loop
        counts them (the turn's timeline folds deltas into counted entries)."""
        timeline = self.session.timeline(tag)
        assert timeline is not None
        received = [entry for entry in timeline.entries if entry.direction == "received"]
        start = next(i for i, e in enumerate(received) if e.type == "response.created")
        end = next(i for i, e in enumerate(received) if e.type == "response.done")
        return sum(entry.count for entry in received[start : end + 1])

    def close(self) -> None:
        self.session.close()


def bare_run(url: str, token: str) -> Sample:
    gc.collect()
    return asyncio.run(bare_loop(url, token))


def main() -> None:
    bare: list[Sample] = []
    ours: list[Sample] = []
    with blaster_process(WORDS) as (url, token, _pid):
        session_run = SessionRun(url, token)
        bare_run(url, token)  # warm-up, both
        session_run()
        for _ in range(REPETITIONS):  # interleaved
            bare.append(bare_run(url, token))
            ours.append(session_run())
        session_run.close()
    print(
        f"ingest: one answer of {WORDS} words from a blasting server in a subprocess, "
        f"{REPETITIONS} interleaved repetitions (microseconds per event: median, min)"
    )
    per_event: dict[str, list[float]] = {}
    cpu_per_event: dict[str, list[float]] = {}
    for name, samples in (("bare recv + json.loads", bare), ("rt_notebook Session", ours)):
        wall = per_event[name] = [seconds / events * 1e6 for events, seconds, _ in samples]
        cpu = cpu_per_event[name] = [cpu / events * 1e6 for events, _, cpu in samples]
        print(
            f"  {name:24s} {samples[0][0]:6d} events  wall {statistics.median(wall):5.1f}"
            f" ({min(wall):5.1f}) us/event = {1e6 / statistics.median(wall):7,.0f} events/s"
            f"   CPU {statistics.median(cpu):5.1f} ({min(cpu):5.1f}) us/event"
        )
    # Session rate / bare rate = bare time per event / Session time per event. The goal is
    # judged on CPU time: steadier when other jobs take the cores (wall time then includes
    # the time this process waited for one).
    base, session = cpu_per_event["bare recv + json.loads"], cpu_per_event["rt_notebook Session"]
    goal(
        "3",
        "ingest rate (CPU), Session / bare loop",
        statistics.median(base) / statistics.median(session),
        min(base) / min(session),
        GOAL,
        at_most=False,
        unit="x",
    )
    base, session = per_event["bare recv + json.loads"], per_event["rt_notebook Session"]
    print(
        f"  (from wall time: median {statistics.median(base) / statistics.median(session):.3f}x"
        f"  min {min(base) / min(session):.3f}x)"
    )


if __name__ == "__main__":
    main()
