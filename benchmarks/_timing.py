"""Benchmark support: run the variants being compared interleaved, and summarise them.

A benchmark compares two or more variants (ours against a bare baseline, turn 10 against
turn 1,000). Timing them one after another would let a change in the machine's load (other
jobs on a shared CI runner) land on one variant only; interleaving gives each round one run
of every variant, in an order that alternates so none always runs first, and a load change
slows them alike. Ratios are taken between medians; the min is printed too, as the steadier
figure on a loaded machine.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

__all__ = ["interleaved", "median_ratio", "ratio"]

T = TypeVar("T")


def interleaved(
    variants: Mapping[str, Callable[[int], T]], rounds: int, *, warm_up: bool = True
) -> dict[str, list[T]]:
    """Each variant's results over ``rounds`` rounds, by name.

    A variant is called with the round's number (``-1`` for the warm-up, whose results are
    dropped: first-use costs stay out of the figures). Round ``n`` runs the variants in
    their given order when ``n`` is even, reversed when it is odd.
    """
    names = list(variants)
    if warm_up:
        for name in names:
            variants[name](-1)
    results: dict[str, list[T]] = {name: [] for name in names}
    for n in range(rounds):
        for name in names if n % 2 == 0 else reversed(names):
            results[name].append(variants[name](n))
    return results


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, or NaN when the denominator measured as zero (a CPU
    clock read from /proc ticks every 10 ms: a short span can read 0)."""
    return numerator / denominator if denominator > 0 else math.nan


def median_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """``median(numerator) / median(denominator)`` (NaN if the latter is zero)."""
    return ratio(statistics.median(numerator), statistics.median(denominator))
