"""Goal 5 (kernel part): a ``%%realtime`` turn costs the same at item 1,000 as at item 10.

An IPython shell in this process runs real ``%%realtime`` cells (the magic, the Session,
the cell view) against the embedded server in a subprocess (``--pace 0``), so this
process's CPU time is the kernel's alone: the server's own per-turn cost (measured by
``server_turns.py``) does not enter it. Two Sessions, one with 10 items, one with 1,000
(user and assistant messages added in bulk); measured cells (each a new message and its
answer) alternate between them, so a busy machine slows both alike. Printed: median and
min of the kernel's CPU time and of the wall time per cell, their ratios and the goal.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _goals import goal
from _server import server_process

SHORT, LONG = 10, 1000  # items in each conversation when measuring starts
ROUNDS = 21  # measured cells on each
GOAL = 1.2

Sample = tuple[float, float]  # (wall, CPU) seconds of one cell


def main() -> None:
    from IPython.core.interactiveshell import InteractiveShell

    import rt_notebook

    shell = InteractiveShell.instance()
    sink = io.StringIO()
    with server_process() as (url, token, _pid), contextlib.redirect_stdout(sink):
        shell.run_line_magic("load_ext", "rt_notebook")
        names = {SHORT: "short", LONG: "long"}
        sessions = {}
        for count, name in names.items():
            session = rt_notebook.connect(
                name, websocket_base_url=url, api_key=token, modalities=["text"]
            )
            for n in range(count):
                role = "assistant" if n % 2 else "user"
                session.add_message(f"Turn {n // 2} of a long talk about nothing.", role=role)
            assert session.item_count == count, session.item_count
            sessions[name] = session

        def cell(name: str, n: int) -> Sample:
            sink.seek(0)
            sink.truncate()
            cpu, start = time.process_time(), time.perf_counter()
            shell.run_cell_magic("realtime", f"--session {name} --out r", f"Question {n}?")
            sample = time.perf_counter() - start, time.process_time() - cpu
            status = getattr(shell.user_ns.pop("r", None), "status", None)
            assert status == "completed", status
            return sample

        for name in names.values():  # warm-up: first-use costs out of the figures
            cell(name, -1)
        shorts: list[Sample] = []
        longs: list[Sample] = []
        for n in range(ROUNDS):
            order = [(shorts, "short"), (longs, "long")]
            for samples, name in order if n % 2 else reversed(order):
                samples.append(cell(name, n))
        final = {name: session.item_count for name, session in sessions.items()}
        for session in sessions.values():
            session.close()
    print(
        f"kernel turns: a %%realtime cell at {SHORT} items (baseline) vs at {LONG} items "
        f"({ROUNDS} interleaved cells each, ending at {final['short']} and {final['long']} "
        "items; medians, min in brackets)"
    )
    figures = {}
    for label, column in (("kernel CPU", 1), ("wall (server in a subprocess)", 0)):
        early = [sample[column] for sample in shorts]
        late = [sample[column] for sample in longs]
        figures[label] = (
            statistics.median(late) / statistics.median(early),
            min(late) / min(early),
        )
        print(
            f"  {label:29s} {SHORT} items: {statistics.median(early) * 1e3:6.2f} ms"
            f" ({min(early) * 1e3:6.2f})   {LONG} items: {statistics.median(late) * 1e3:6.2f} ms"
            f" ({min(late) * 1e3:6.2f})   ratio {figures[label][0]:.2f} ({figures[label][1]:.2f})"
        )
    goal(
        "5 kernel",
        f"%%realtime cell CPU, {LONG} items / {SHORT}",
        *figures["kernel CPU"],
        GOAL,
        at_most=True,
        unit="x",
    )


if __name__ == "__main__":
    main()
