"""Test support: the one time scale of every wait and library timer in the tests.

``RT_TEST_TIME_SCALE`` (a number > 0, default 1) multiplies every time the tests allow:

- the ceilings of waits for something that should happen (:func:`within`, :data:`WAIT`,
  :func:`wait_until`), and pytest-timeout's per-test limit (``tests/conftest.py``);
- the library timers tests shorten to stay fast (backoff, idle and cancel timeouts,
  session lifetimes, a paced server's pause), all multiples of :data:`UNIT`.

A busy machine (a 2-core CI runner shared with other jobs) runs the same tests with, say,
``RT_TEST_TIME_SCALE=4``: every ceiling and timer is four times longer, nothing else
changes. No test asserts how long something took; these are only limits, and tests wait on
events or conditions, never for a fixed time. The former variables (``RT_TEST_TIME_UNIT``,
``RT_NOTEBOOK_TEST_TIME_UNIT``) had two meanings between them, so setting one is an error
that names this one rather than being silently ignored.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

__all__ = ["PROCESS_WAIT", "SCALE", "UNIT", "WAIT", "wait_until", "within"]

_VARIABLE = "RT_TEST_TIME_SCALE"
_RETIRED = ("RT_TEST_TIME_UNIT", "RT_NOTEBOOK_TEST_TIME_UNIT")


def _scale() -> float:
    for name in _RETIRED:
        if name in os.environ:
            raise RuntimeError(
                f"{name} is no longer read: set {_VARIABLE} instead, a multiplier of every "
                "test timeout and timer (default 1; e.g. 4 on a busy machine)"
            )
    raw = os.environ.get(_VARIABLE, "1")
    try:
        scale = float(raw)
    except ValueError:
        scale = 0.0
    if not scale > 0 or scale == float("inf"):
        raise RuntimeError(f"{_VARIABLE} must be a finite number > 0, not {raw!r}")
    return scale


SCALE: float = _scale()

UNIT: float = 0.05 * SCALE
"""Seconds in one tick of the library timers tests shorten (backoff starts at one tick)."""


def within(seconds: float) -> float:
    """A ceiling of ``seconds`` on an idle machine, stretched by ``RT_TEST_TIME_SCALE``."""
    return seconds * SCALE


WAIT: float = within(30)
"""The ceiling of any single wait for something that should happen promptly."""

PROCESS_WAIT: float = within(120)
"""The ceiling for the first answer of a fresh Python process (a server, a kernel): it
imports heavy libraries first (the SDK's models take about a second on an idle machine and
were measured at 9 s with a load of 11 on 2 cores)."""

_POLL_S = 0.005  # how often a condition is re-read: short next to any ceiling


def wait_until(predicate: Callable[[], object], what: str, timeout: float = WAIT) -> None:
    """Return once ``predicate()`` is true; fail naming ``what`` after ``timeout`` seconds.

    For state the code under test changes on another thread without an event to wait on
    (a widget's value, a server's connection count); it polls, so it returns as soon as the
    condition holds.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(_POLL_S)
