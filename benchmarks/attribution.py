"""What attributing events to turns costs the ingest path (issue 13).

The receive path of the Session is ``ClientCore.receive`` (check, mirror, matching); the
inspector adds ``Timelines.received`` (one dict lookup and a fold for a delta) plus a
``time.monotonic()``. Both are fed the same frames of one response (``response.created``,
WORDS ``response.output_text.delta`` frames, ``response.done``), in process, with repetitions
alternating between "core only" and "core + attribution". Printed: microseconds per event
(median and min of repetitions: on a loaded machine the min is the steadier figure) each
way and the overhead in percent.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _timing import interleaved

from rt_notebook.protocol.client import REQUEST_TAG, ClientCore
from rt_notebook.protocol.events import Dialect
from rt_notebook.protocol.timeline import Timelines
from rt_notebook.protocol.turns import Turn

WORDS = 5_000
REPETITIONS = 21


def frames(tag: str) -> list[str]:
    response = {"id": "resp_1", "object": "realtime.response", "status": "in_progress"}
    created = {**response, "metadata": {REQUEST_TAG: tag}, "output": []}
    item = {"id": "item_out", "type": "message", "role": "assistant", "content": []}
    out = [
        json.dumps({"type": "response.created", "event_id": "e0", "response": created}),
        json.dumps(
            {
                "type": "response.output_item.added",
                "event_id": "e1",
                "response_id": "resp_1",
                "output_index": 0,
                "item": item,
            }
        ),
    ]
    for n in range(WORDS):
        delta = {
            "type": "response.output_text.delta",
            "event_id": f"ev{n}",
            "response_id": "resp_1",
            "item_id": "item_out",
            "output_index": 0,
            "content_index": 0,
            "delta": f" w{n}",
        }
        out.append(json.dumps(delta))
    done = {**created, "status": "completed", "output": []}
    out.append(json.dumps({"type": "response.done", "event_id": "e2", "response": done}))
    return out


def run(attribute: bool) -> float:
    core = ClientCore(Dialect.GA)
    core.assume_ready(True)
    turn = Turn([], {})
    core.submit(turn, time.time())
    core.events_to_send()
    timelines = Timelines()
    timelines.begin(turn, time.monotonic())
    raw = frames(turn.tag)
    generation = core.generation
    receive, received, monotonic = core.receive, timelines.received, time.monotonic
    start = time.perf_counter()
    for frame in raw:
        event, _ = receive(frame, generation, 0.0)
        if attribute and event is not None:
            received(event, len(frame), monotonic())
    elapsed = time.perf_counter() - start
    assert turn.status == "completed"
    if attribute:
        found = timelines.find("resp_1")
        assert found is not None
        assert [e.count for e in found.entries if e.type.endswith(".delta")] == [WORDS]
    return elapsed / len(raw) * 1e6


def attribution_only() -> float:
    """Microseconds per event of ``Timelines.received`` alone (frames parsed beforehand)."""
    turn = Turn([], {})
    timelines = Timelines()
    timelines.begin(turn, time.monotonic())
    turn.response_id = "resp_1"
    events = [json.loads(frame) for frame in frames(turn.tag)]
    sizes = [len(frame) for frame in frames(turn.tag)]
    received, monotonic = timelines.received, time.monotonic
    start = time.perf_counter()
    for event, size in zip(events, sizes, strict=True):
        received(event, size, monotonic())
    return (time.perf_counter() - start) / len(events) * 1e6


def main() -> None:
    samples = interleaved(
        {
            "bare": lambda _: run(False),
            "attributed": lambda _: run(True),
            "alone": lambda _: attribution_only(),
        },
        REPETITIONS,
    )
    bare, attributed, alone = samples["bare"], samples["attributed"], samples["alone"]
    b, a = statistics.median(bare), statistics.median(attributed)
    bmin, amin = min(bare), min(attributed)
    sys.stdout.write(
        f"{WORDS} deltas, {REPETITIONS} alternating repetitions\n"
        f"core only:          {b:.2f} us/event median, {bmin:.2f} min\n"
        f"core + attribution: {a:.2f} us/event median, {amin:.2f} min\n"
        f"overhead: {(a - b) / b * 100:+.1f} % (median), "
        f"{(amin - bmin) / bmin * 100:+.1f} % (min)\n"
        f"attribution alone: {statistics.median(alone):.2f} us/event median, "
        f"{min(alone):.2f} min = {min(alone) / bmin * 100:.1f} % of the core's min\n"
    )


if __name__ == "__main__":
    main()
