"""View loop (threads): wake, pull, pace, publish, for any view of a growing answer.

A view of something the Session's I/O thread changes (a cell's answer, a chat panel, a
voice turn, the inspector's timeline) must never render on that thread: its subscriber
only calls :meth:`ViewLoop.wake`. The loop, on the view's own thread, waits for a wake,
waits out the pace (:class:`Pace`: the first change at once, then at most one publish per
``interval``), then calls the view's ``publish`` callback, which pulls the current state
and sends what is new. It returns when the given future is done; the caller then publishes
the final state itself.

Paced this way a view sends at most ``1 / interval`` messages a second however fast
deltas come, and a change waits at most ``interval`` before it is sent: the first delta
of an answer is shown at once, later ones within the interval (200 ms by default, five
messages a second).
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Pace", "ViewLoop"]


@dataclass(slots=True)
class Pace:
    """Sans-I/O: when a view may publish again (the first change at once)."""

    interval: float = 0.2  # seconds between publishes: at most five messages a second
    last: float | None = None  # when the view last published (monotonic), None before

    def wait(self, now: float) -> float:
        """Seconds until a publish may go out (0: now)."""
        if self.last is None:
            return 0.0
        return max(0.0, self.last + self.interval - now)

    def published(self, now: float) -> None:
        self.last = now


class ViewLoop:
    """Runs a view's ``publish`` on the caller's thread, woken by :meth:`wake`."""

    def __init__(self, publish: Callable[[], bool], *, interval: float = 0.2) -> None:
        # Pulls the current state and sends what is new; returns whether it sent anything.
        self._publish = publish
        self.pace = Pace(interval)
        self._woken = threading.Event()  # something changed since the last pull
        self.publishes = 0  # publishes that sent something (for tests and benchmarks)

    def wake(self, *_: Any) -> None:
        """Something changed (any thread; usable directly as a Session subscriber)."""
        self._woken.set()

    def run(self, done: concurrent.futures.Future[Any], deadline: float | None = None) -> None:
        """Publish changes until ``done`` completes.

        Raises :class:`TimeoutError` at ``deadline`` (monotonic seconds)."""
        while not done.done():
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError
            if not self._woken.wait(0.25):
                continue
            delay = self.pace.wait(time.monotonic())
            if delay > 0:
                # The answer may end meanwhile: then the caller's final publish covers it.
                concurrent.futures.wait([done], timeout=delay)
                if done.done():
                    return
            self.step()

    def step(self) -> bool:
        """Pull and publish now (the pace is the caller's business)."""
        self._woken.clear()
        sent = self._publish()
        if sent:
            self.pace.published(time.monotonic())
            self.publishes += 1
        return sent
