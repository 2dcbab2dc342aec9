"""Sans-I/O validation of numbers that come from outside: the server's or the page's.

A number in an event or a comm message is checked where it enters, so that nothing
downstream (the status line, prices, durations) meets a string, a bool, ``NaN`` or an
integer too large for a float: what is not a plausible count is dropped, not raised on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_COUNT", "clean_usage", "count", "nonzero_usage", "seconds_of"]

# Far above any real token count or sample count, far below a float's limit.
MAX_COUNT = 10**15


def count(value: Any) -> int | None:
    """``value`` if it is a whole number in ``0..MAX_COUNT`` (not a bool), else ``None``."""
    if type(value) is int and 0 <= value <= MAX_COUNT:
        return value
    return None


def clean_usage(usage: Any) -> dict[str, Any] | None:
    """A server's ``usage`` object with only plausible token counts: each ``*_tokens``
    field a count (else dropped), each ``*_details`` object cleaned the same way;
    ``None`` when ``usage`` is not an object."""
    if not isinstance(usage, Mapping):
        return None
    clean: dict[str, Any] = {}
    for key, value in usage.items():
        if not isinstance(key, str):
            continue
        if key.endswith("_tokens"):
            if (number := count(value)) is not None:
                clean[key] = number
        elif key.endswith("_details"):
            if (details := clean_usage(value)) is not None:
                clean[key] = details
        elif value is None or isinstance(value, str):
            clean[key] = value
    return clean


def nonzero_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """A cleaned ``usage`` (:func:`clean_usage`) without its zero counts and the details
    objects left empty, for a saved output's metadata: most of a text answer's nested
    counts (audio, image, cached tokens) are 0. Nothing is lost: a count that is not
    there is 0 (nothing in rt_notebook reads usage back from a saved output; ``pricing``,
    reading a session's, takes a missing count as 0 too)."""
    kept: dict[str, Any] = {}
    for key, value in usage.items():
        if isinstance(value, Mapping):
            if details := nonzero_usage(value):
                kept[key] = details
        elif value != 0:
            kept[key] = value
    return kept


def seconds_of(samples: Any, rate: Any) -> float:
    """Seconds of ``samples`` at ``rate`` per second; 0.0 unless both are plausible."""
    number = count(samples)
    if number is None or isinstance(rate, bool) or not isinstance(rate, int | float):
        return 0.0
    try:
        per_second = float(rate)
    except OverflowError:
        return 0.0
    if not math.isfinite(per_second) or not 1.0 <= per_second <= 10_000_000.0:
        return 0.0
    return number / per_second
