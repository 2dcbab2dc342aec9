"""View loop (threads): wake, pull, pace, publish, for any view of a growing answer.

A view of something the Session's I/O thread changes (a cell's answer, a chat panel, a
voice turn, the inspector's timeline) must never render on that thread: its subscriber
only calls :meth:`ViewLoop.wake`. The loop, on the view's own thread, waits for a wake,
waits out the pace (:class:`Pace`: the first change at once, then at most one publish per
``interval``), then calls the view's ``publish`` callback, which pulls the current state
and sends what is new.

Two ways to run it:

- :meth:`ViewLoop.run` until a future is done (a cell's answer: the caller then
  publishes the final state itself);
- :meth:`ViewLoop.serve` until :meth:`ViewLoop.stop` (the chat panel, the voice view, a
  live inspector: views that live as long as they are shown). With ``idle`` it also
  publishes every ``idle`` seconds without a wake (for what no event announces: a
  closed connection, a Session replaced by ``%realtime reset``); a view that paces parts
  of itself (the panel paces each streaming answer) asks to be called again with
  :meth:`ViewLoop.again`. A failed publish is logged and the loop goes on.

Paced this way a view sends at most ``1 / interval`` messages a second however fast
deltas come, and a change waits at most ``interval`` before it is sent: the first delta
of an answer is shown at once, later ones within the interval (200 ms by default, five
messages a second; cells use 210 ms), counted from the first change a message carries
(:class:`Pace`).
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Pace", "ViewLoop"]

log = logging.getLogger("rt_notebook")


@dataclass(slots=True)
class Pace:
    """Sans-I/O: when a view may publish again.

    The first change goes out at once, and so does a change that comes after a whole
    ``interval`` without a publish. Any other change waits, with those that follow it,
    until it has waited one ``interval``: no change waits longer (the display lag), and
    since the wait starts at the first change rather than at the last publish, a stream of
    words 50 ms apart sends a message every interval *plus* the gap before its first word
    (one every 250 ms for an interval of 200 or 210 ms, each with ~58 bytes of framing).
    """

    interval: float = 0.2  # seconds a change may wait: at most five messages a second
    last: float | None = None  # when the view last published (monotonic), None before
    pending: float | None = None  # when the first change since the last pull came

    def changed(self, now: float) -> None:
        """Something changed at ``now`` (only the first change since the last pull counts)."""
        if self.pending is None:
            self.pending = now

    def wait(self, now: float) -> float:
        """Seconds until a publish may go out (0: now)."""
        if self.last is None:
            return 0.0
        since = now if self.pending is None else self.pending
        if since >= self.last + self.interval:
            return 0.0  # quiet for a whole interval: nothing to wait for
        return max(0.0, since + self.interval - now)

    def pulled(self) -> None:
        """The view pulled the current state: changes after this one wait anew."""
        self.pending = None

    def published(self, now: float) -> None:
        self.last = now
        self.pending = None


class ViewLoop:
    """Runs a view's ``publish`` on the caller's thread, woken by :meth:`wake`."""

    def __init__(
        self,
        publish: Callable[[], bool],
        *,
        interval: float = 0.2,
        idle: float | None = None,
    ) -> None:
        # Pulls the current state and sends what is new; returns whether it sent anything.
        self._publish = publish
        self.pace = Pace(interval)
        self.idle = idle  # serve(): publish this often without a wake (None: never)
        self._woken = threading.Event()  # something changed since the last pull
        self._stopping = threading.Event()
        self._again: float | None = None  # serve(): seconds until a held-back part is due
        self.publishes = 0  # publishes that sent something (for tests and benchmarks)

    def wake(self, *_: Any) -> None:
        """Something changed (any thread; usable directly as a Session subscriber)."""
        # No lock on this per-delta path: a wake racing the loop's pull can at worst lose
        # its time (the loop then counts from when it looks, microseconds later).
        self.pace.changed(time.monotonic())
        self._woken.set()

    def stop(self) -> None:
        """End :meth:`serve` (any thread; the publish under way, if any, completes)."""
        self._stopping.set()
        self._woken.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def again(self, seconds: float) -> None:
        """From ``publish``: something was held back; call again within ``seconds``."""
        self._again = seconds if self._again is None else min(self._again, seconds)

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

    def serve(self) -> None:
        """Publish changes until :meth:`stop` (see the module docstring)."""
        while not self._stopping.is_set():
            again, self._again = self._again, None
            limit = self.idle if again is None else again
            if self.idle is not None and limit is not None:
                limit = min(limit, self.idle)
            # With a paced part due, let changes pile up until then instead of waking for
            # each delta (everything that arrives meanwhile goes out together).
            woken = self._woken.wait(limit) if again is None else True
            if again is not None:
                self._stopping.wait(limit)
            if self._stopping.is_set():
                return
            if not woken and self.idle is None:
                continue
            delay = self.pace.wait(time.monotonic())
            if delay > 0 and self._stopping.wait(delay):
                return
            try:
                self.step()
            except Exception:  # a failed write must not end the view's updates
                log.exception("rt_notebook: a view's update failed")

    def step(self) -> bool:
        """Pull and publish now (the pace is the caller's business)."""
        self._woken.clear()
        self.pace.pulled()
        sent = self._publish()
        if sent:
            self.pace.published(time.monotonic())
            self.publishes += 1
        return sent
