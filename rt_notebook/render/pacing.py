"""Sans-I/O update pacing for streamed text: when a view should publish again.

Jupyter drops IOPub messages above ``iopub_msg_rate_limit`` and every update resends the
whole text, so per-delta updates lose data and cost O(n²) bytes (``docs/architecture.md``
has the numbers). A :class:`Pacer` publishes the first delta at once, then at most one update per
interval; the interval stretches with the text length so that bytes per second stay
bounded; the final text is always published by the caller, whatever the pacer says.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Pacer"]


@dataclass(slots=True)
class Pacer:
    """Decides when a growing text should be re-published."""

    min_interval: float = 0.05  # seconds: at most ~20 updates per second per view
    max_interval: float = 1.0  # seconds: a long answer still visibly grows
    bytes_per_second: float = 150_000.0  # the budget that stretches the interval
    # When this view last published (monotonic seconds), or None before the first update.
    last_published: float | None = None

    def interval(self, text_length: int) -> float:
        """The minimum time between two updates of a text of ``text_length`` characters."""
        stretched = text_length / self.bytes_per_second
        return min(self.max_interval, max(self.min_interval, stretched))

    def due(self, now: float, text_length: int) -> bool:
        """Whether an update of a text of ``text_length`` characters may go out at ``now``."""
        if self.last_published is None:
            return True  # the first delta is shown at once
        return now - self.last_published >= self.interval(text_length)

    def wait_time(self, now: float, text_length: int) -> float:
        """Seconds until the next update may go out (0 when it is due)."""
        if self.last_published is None:
            return 0.0
        return max(0.0, self.last_published + self.interval(text_length) - now)

    def published(self, now: float) -> None:
        """Record that an update went out at ``now``."""
        self.last_published = now
