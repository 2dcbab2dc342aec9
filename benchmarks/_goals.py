"""Benchmark helper: each goal's figure printed the same way, and the summary of all goals.

A benchmark calls :func:`goal` once per goal figure it measured: the figure the goal is
judged on (from medians of interleaved repetitions), the same figure from the minimums, the
bound, and whether the figure must stay at most or at least the bound. It prints one line,
``goal 3: ingest rate, Session / bare loop  median 0.93x  min 0.97x  goal >= 0.8x: met``
(a figure measured once has no min), and, when
``RT_BENCH_GOALS`` names a file (``make bench`` sets it), appends the figure there as a JSON
line. ``python benchmarks/_goals.py FILE`` prints the table of every figure in FILE (the
last thing ``make bench`` prints).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

__all__ = ["goal", "summary"]


def goal(
    number: str,
    what: str,
    median: float,
    low: float | None,
    bound: float,
    *,
    at_most: bool,
    unit: str = "",
) -> bool:
    """Print (and record) one goal figure; return whether it is met (judged on ``median``)."""
    met = median <= bound if at_most else median >= bound
    sign = "<=" if at_most else ">="
    # One measurement (no repetitions): the figure alone; else its median and min.
    figure = f"{median:#.3g}{unit}" if low is None else f"median {median:#.3g}{unit}"
    low_text = "" if low is None else f"  min {low:#.3g}{unit}"
    line = (
        f"  goal {number}: {what}  {figure}{low_text}"
        f"  goal {sign} {bound:g}{unit}: {'met' if met else 'NOT met'}"
    )
    print(line, flush=True)
    path = os.environ.get("RT_BENCH_GOALS")
    if path:
        record = {
            "goal": number,
            "what": what,
            "median": median,
            "min": low,
            "bound": bound,
            "sign": sign,
            "unit": unit,
            "met": met,
        }
        with Path(path).open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(record) + "\n")
    return met


def summary(path: Path) -> str:
    """The table of every goal figure recorded in ``path``."""
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    rows = [("goal", "what", "median", "min", "bound", "verdict")]
    for r in sorted(records, key=lambda r: r["goal"]):  # stable: a goal's figures stay in order
        unit = r["unit"]
        rows.append(
            (
                r["goal"],
                r["what"],
                f"{r['median']:#.3g}{unit}",
                "" if r["min"] is None else f"{r['min']:#.3g}{unit}",
                f"{r['sign']} {r['bound']:g}{unit}",
                "met" if r["met"] else "NOT met",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    met = sum(r["met"] for r in records)
    lines.append(f"{met} of {len(records)} goal figures met")
    return "\n".join(lines)


if __name__ == "__main__":
    print("\nbenchmark summary (issue 11 goals; medians of interleaved repetitions)")
    print(summary(Path(sys.argv[1])))
