"""Cold-start benchmark: ``%load_ext rt_notebook`` and the first offline answer.

Each repetition starts a fresh kernel (jupyter_client, no credentials in its environment),
times ``%load_ext rt_notebook`` from the request to the reply, waits two seconds (a user
reading), then times a first ``%%realtime`` cell answered by the embedded offline server.
A second fresh kernel per repetition separates the machine's load from the critical path:
it waits for the background warm-up to end (and reports how long it took), then times the
first answer. Prints min and median of the repetitions next to the goals (0.25 s, 0.3 s).

The package's bytecode is compiled first, as installing it does: with
``PYTHONDONTWRITEBYTECODE`` set (as here) a source checkout would otherwise be compiled
again by every kernel, inside ``%load_ext``.
"""

from __future__ import annotations

import compileall
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _goals import goal
from _timing import interleaved

from tests.kernel.harness import Kernel

ROOT = Path(__file__).resolve().parents[1]

REPETITIONS = 5
GOALS = {"%load_ext rt_notebook": 0.25, "first %%realtime answer": 0.3}
INFO = ("background warm-up", "first answer once warm")
WAIT_FOR_WARM_UP = """
import threading
for thread in threading.enumerate():
    if thread.name == "rt_notebook-warmup":
        thread.join()
"""


def once() -> tuple[float, float]:
    kernel = Kernel()
    try:
        kernel.execute("1")  # the kernel is up and idle
        start = time.perf_counter()
        loaded = kernel.execute("%load_ext rt_notebook")
        load = time.perf_counter() - start
        time.sleep(2)
        start = time.perf_counter()
        answered = kernel.execute("%%realtime\nhello")
        first = time.perf_counter() - start
        assert loaded.status == answered.status == "ok", answered.error_text()
        return load, first
    finally:
        kernel.shutdown()


def once_warm() -> tuple[float, float]:
    kernel = Kernel()
    try:
        kernel.execute("1")
        start = time.perf_counter()
        kernel.execute("%load_ext rt_notebook")
        kernel.execute(WAIT_FOR_WARM_UP)
        warm_up = time.perf_counter() - start  # load_ext until the warm-up ended
        begin = time.perf_counter()
        answered = kernel.execute("%%realtime\nhello")
        assert answered.status == "ok", answered.error_text()
        return warm_up, time.perf_counter() - begin
    finally:
        kernel.shutdown()


def main() -> None:
    compileall.compile_dir(ROOT / "rt_notebook", quiet=1)
    # No warm-up round: a fresh kernel each time is the thing measured.
    samples = interleaved(
        {"cold": lambda _: once(), "warm": lambda _: once_warm()}, REPETITIONS, warm_up=False
    )
    runs, warm = samples["cold"], samples["warm"]
    print(f"cold start: fresh kernel, offline server, {REPETITIONS} repetitions")
    for index, (name, bound) in enumerate(GOALS.items()):
        values = [run[index] for run in runs]
        goal("7", name, statistics.median(values), min(values), bound, at_most=True, unit=" s")
    for index, name in enumerate(INFO):
        values = [run[index] for run in warm]
        low, median = min(values), statistics.median(values)
        print(f"  {name:24s} min {low:6.3f} s  median {median:6.3f} s  (load-dependent, no goal)")


if __name__ == "__main__":
    main()
