"""Goal 21: a restore after a drop costs the same per item at 8,000 items as at 1,000.

A pace-0 embedded server runs in a subprocess, so this process's CPU time is the client's
alone. One Session (default timing, as a notebook has it) grows its conversation to each
size in turn (plain messages, added from a few threads at once); at each size the
connection is dropped (the client's TCP transport aborted, as a network drop does) and a
question asked at once: it waits for the reconnect and the restore of every item, then is
answered. Measured per drop: the client's CPU time from the drop to the answer, and the
wall time from the drop to the answer (the default backoff, 0.25 to 0.5 s before the first
reconnect, included). The conversation only grows, so the sizes cannot alternate: each is
measured ``DROPS`` times in a row and the median taken.

A drop costs some CPU whatever the conversation holds (the reconnect, the session's
settings, the question and its answer): the baseline, measured first in the same run, as
drops of a ``BASE``-item conversation. The CPU per restored item at a size is what its
drops cost beyond the baseline, per item beyond ``BASE``: dividing the whole cost by the
items instead would charge the fixed cost mostly to the smallest size (it did: 106 µs per
item at 1,000 items against 74 at 8,000 in one run, a "spread" of 1.43x from a restore
that gets cheaper per item, not dearer). That figure is printed too, without a goal.

Printed: per size, the median and min of CPU µs per restored item (beyond the baseline,
and whole) and of the wall time (and the server's CPU time, which the wall time includes:
on a busy machine both wait); the goal figures: the spread of CPU per restored item
(largest median / smallest median, at most 1.3) and the drop-to-answer wall time at 2,000
items (at most 1 s on an unloaded machine).
"""

from __future__ import annotations

import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _goals import goal
from _server import cpu_seconds, server_process

BASE = 10  # items in the baseline's conversation
SIZES = (1000, 2000, 4000, 8000)
DROPS = 5  # measured drops at each size (a median of 3 moved by 30% between runs)
SPREAD_GOAL = 1.3
ANSWER_SIZE = 2000
ANSWER_GOAL = 1.0  # seconds from the drop to the next answer at ANSWER_SIZE items
FILLERS = 8  # threads adding messages at once

# (wall seconds, client CPU seconds, items restored, server CPU seconds)
Sample = tuple[float, float, int, float]


def fill(session: Any, count: int) -> None:
    """Add plain messages until the conversation holds ``count`` items."""
    missing = count - session.item_count
    with ThreadPoolExecutor(FILLERS) as pool:
        list(pool.map(lambda n: session.add_message(f"message {n}"), range(missing)))
    assert session.item_count == count, session.item_count


def trim(session: Any, size: int) -> None:
    """Remove the question and answer a drop added: every drop at a size restores the same
    count."""
    for item_id in session.item_ids()[size:]:
        session.delete_item(item_id)


def drop(session: Any) -> None:
    """Abort the client's TCP connection, as a network drop does (no closing handshake)."""
    driver = session._driver

    def abort() -> None:
        driver._socket._connection.transport.abort()

    session._io.call(abort).result()


def drop_and_ask(session: Any, n: int, server_pid: int) -> Sample:
    server_cpu = cpu_seconds(server_pid)
    cpu, start = time.process_time(), time.perf_counter()
    drop(session)
    result = session.ask(f"Question {n}?").wait(120)
    sample = time.perf_counter() - start, time.process_time() - cpu
    assert result.status == "completed", result.status
    status = session.status
    assert status.state == "ready", status
    return sample[0], sample[1], status.restored, cpu_seconds(server_pid) - server_cpu


def main() -> None:
    from rt_notebook.client.session import Session

    results: dict[int, list[Sample]] = {}
    with server_process() as (url, token, pid):
        session = Session(websocket_base_url=url, api_key=token, modalities=["text"])
        session.connect()
        try:
            fill(session, BASE)
            drop_and_ask(session, -1, pid)  # warm-up: first-use costs out of the figures
            trim(session, BASE)
            for size in (BASE, *SIZES):
                samples = []
                for n in range(DROPS):
                    fill(session, size)
                    samples.append(drop_and_ask(session, n, pid))
                    trim(session, size)
                results[size] = samples
        finally:
            session.close()
    baseline = results.pop(BASE)
    fixed = statistics.median(s[1] for s in baseline)
    print(f"restore: drop, then a question at once ({DROPS} drops per size; median, min)")
    print(
        f"  baseline, {BASE} items: client CPU {fixed * 1e3:6.2f} ms a drop   drop to answer"
        f" {statistics.median(s[0] for s in baseline):6.3f} s"
    )
    per_item: dict[int, tuple[float, float]] = {}
    for size, samples in results.items():
        cpu = [(s[1] - fixed) / (s[2] - BASE) for s in samples]
        whole = statistics.median(s[1] / s[2] for s in samples)
        wall = [s[0] for s in samples]
        per_item[size] = statistics.median(cpu), min(cpu)
        print(
            f"  {size:5d} items (restored {samples[-1][2]}): client CPU per item "
            f"{per_item[size][0] * 1e6:6.1f} µs ({per_item[size][1] * 1e6:6.1f}; whole"
            f" {whole * 1e6:6.1f})   drop to answer {statistics.median(wall):6.3f} s"
            f" ({min(wall):6.3f})   server CPU {statistics.median(s[3] for s in samples):6.3f} s"
        )
    medians = [figure[0] for figure in per_item.values()]
    lows = [figure[1] for figure in per_item.values()]
    goal(
        "21 restore",
        f"client CPU per restored item, spread {SIZES[0]}-{SIZES[-1]} items",
        max(medians) / min(medians),
        max(lows) / min(lows),
        SPREAD_GOAL,
        at_most=True,
        unit="x",
    )
    walls = [s[0] for s in results[ANSWER_SIZE]]
    goal(
        "21 restore",
        f"drop to next answer at {ANSWER_SIZE} items",
        statistics.median(walls),
        min(walls),
        ANSWER_GOAL,
        at_most=True,
        unit=" s",
    )


if __name__ == "__main__":
    main()
