"""Goal 5 (server part): a turn costs the same at turn 1,000 as at turn 10 (ratio <= 1.2).

The embedded server runs in a subprocess (``rt-notebook-server --pace 0``); a raw-socket
client here holds two connections: one whose conversation is at turn 10, one at turn 1,000
(each earlier turn is a user message and an assistant answer, created in bulk). Measured
turns (a user message, ``response.create``, wait for ``response.done``) alternate between
the two, so a busy machine slows both alike. Printed: the median and min wall time of a
turn on each, their ratio and the goal. The same is then measured in process on the
sans-I/O state alone (CPU time), without sockets or the client.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _timing
from _goals import goal
from _server import RawClient, cpu_seconds, server_process

SHORT, LONG = 10, 1000  # the turn each conversation is at when measuring starts
ROUNDS = 21  # measured turns on each
GOAL = 1.2
TEXT_ONLY = {
    "type": "session.update",
    "session": {"type": "realtime", "output_modalities": ["text"]},
}


def message(n: int, role: str = "user") -> dict[str, object]:
    text = f"This is turn number {n} of a long conversation about nothing in particular."
    kind = "input_text" if role == "user" else "output_text"
    item = {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}
    return {"type": "conversation.item.create", "item": item}


def history(turns: int) -> list[dict[str, object]]:
    """The client events that build a conversation of ``turns`` - 1 earlier turns."""
    events = []
    for n in range(turns - 1):
        events += [message(n), message(n, "assistant")]
    return events


Sample = tuple[float, float]  # (wall seconds, CPU seconds) of one turn


def interleaved(
    short: Callable[[int], Sample], long: Callable[[int], Sample]
) -> tuple[list[Sample], list[Sample]]:
    """Each side's samples over ROUNDS rounds, after a warm-up turn on each."""
    samples = _timing.interleaved({"long": long, "short": short}, ROUNDS)
    return samples["short"], samples["long"]


def over_the_wire() -> tuple[list[Sample], list[Sample]]:
    """(wall, server CPU) seconds of each measured turn at turn ~10 and ~1,000."""
    with server_process() as (url, token, pid):
        clients = []
        for turns in (SHORT, LONG):
            client = RawClient(url, token)
            client.wait_for(b"session.created")
            for event in [TEXT_ONLY, *history(turns)]:
                client.send(event)
            client.wait_for(b'{"type":"conversation.item.done"', 2 * (turns - 1))
            clients.append(client)

        def turn(client: RawClient) -> Callable[[int], Sample]:
            def run(n: int) -> Sample:
                cpu, start = cpu_seconds(pid), time.perf_counter()
                client.send(message(n))
                client.send({"type": "response.create"})
                client.wait_for(b'{"type":"response.done"')
                return time.perf_counter() - start, cpu_seconds(pid) - cpu

            return run

        result = interleaved(turn(clients[0]), turn(clients[1]))
        for client in clients:
            client.close()
    return result


def in_process() -> tuple[list[Sample], list[Sample]]:
    """(wall, CPU) seconds of each measured turn of the sans-I/O state alone."""
    from rt_notebook.protocol.events import Dialect
    from rt_notebook.server import ConnectionState, EchoResponder

    states = []
    for turns in (SHORT, LONG):
        state = ConnectionState(
            model="gpt-realtime", dialect=Dialect.GA, responder=EchoResponder(), now=time.time()
        )
        state.start()
        for event in [TEXT_ONLY, *history(turns)]:
            state.receive_text(json.dumps(event))
        state.process()
        states.append(state)

    def turn(state: ConnectionState) -> Callable[[int], Sample]:
        def run(n: int) -> Sample:
            cpu, start = time.process_time(), time.perf_counter()
            state.receive_text(json.dumps(message(n)))
            state.receive_text('{"type":"response.create"}')
            state.process()
            while state.streaming:
                state.advance()
            return time.perf_counter() - start, time.process_time() - cpu

        return run

    return interleaved(turn(states[0]), turn(states[1]))


def main() -> None:
    wire = over_the_wire()
    state = in_process()
    print(
        f"server turns: a turn at turn {SHORT} (baseline) vs at turn {LONG} "
        f"({ROUNDS} interleaved turns each; medians, min in brackets)"
    )
    figures = {}
    for name, (shorts, longs), column in (
        ("server CPU, out of process", wire, 1),
        ("wall, 3 processes", wire, 0),
        ("sans-I/O state, CPU", state, 1),
    ):
        early = [sample[column] for sample in shorts]
        late = [sample[column] for sample in longs]
        ratio = _timing.median_ratio(late, early)
        figures[name] = ratio, _timing.ratio(min(late), min(early))
        print(
            f"  {name:27s} turn {SHORT}: {statistics.median(early) * 1e3:6.3f} ms"
            f" ({min(early) * 1e3:6.3f})   turn {LONG}: {statistics.median(late) * 1e3:6.3f} ms"
            f" ({min(late) * 1e3:6.3f})   ratio {ratio:.2f} ({figures[name][1]:.2f})"
        )
    goal(
        "5 server",
        f"server CPU per turn, turn {LONG} / turn {SHORT}",
        *figures["server CPU, out of process"],
        GOAL,
        at_most=True,
        unit="x",
    )


if __name__ == "__main__":
    main()
