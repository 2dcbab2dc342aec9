"""Sans-I/O update pacing for streamed text: when a view should publish again.

Every update of a display (or a widget) resends what it shows, so publishing at a fixed
rate costs bytes proportional to time times length: at a real model's speed (~50 tokens a
second for a minute) that is hundreds of times the text. A :class:`Pacer` bounds the
*total* instead, with a byte credit: each character the text grows by earns ``ratio``
bytes, and an update may go out only when the credit covers what it resends (plus the
message's framing). Whatever the rate, the updates of one view then cost at most
``ratio`` times the final text (plus the first update, which is free so the first delta is
shown at once). A minimum interval also bounds the message rate. The caller always
publishes the final text, whatever the pacer says.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Pacer"]


@dataclass(slots=True)
class Pacer:
    """Decides when a growing text may be re-published."""

    min_interval: float = 0.05  # seconds: at most 20 updates a second per view
    ratio: float = 14.0  # bytes an update may resend per character the text grew
    overhead: int = 160  # bytes of message framing counted per update
    # When this view last published (monotonic seconds), or None before the first update.
    last_published: float | None = None
    credit: float = 0.0  # bytes earned by growth and not yet spent
    credited_length: int = 0  # the text length credit was last earned up to

    def grow(self, text_length: int) -> None:
        """The text is now ``text_length`` characters long: earn credit for the growth."""
        if text_length > self.credited_length:
            self.credit += self.ratio * (text_length - self.credited_length)
            self.credited_length = text_length

    def affordable(self, cost: int) -> bool:
        """Whether the credit covers an update resending ``cost`` bytes."""
        return self.last_published is None or self.credit >= cost + self.overhead

    def due(self, now: float, cost: int) -> bool:
        """Whether an update resending ``cost`` bytes may go out at ``now``."""
        return self.wait_time(now, cost) == 0.0

    def wait_time(self, now: float, cost: int) -> float | None:
        """Seconds until such an update may go out (0: now); ``None``: only once the text
        has grown enough to pay for it."""
        if self.last_published is None:
            return 0.0  # the first delta is shown at once
        if not self.affordable(cost):
            return None
        return max(0.0, self.last_published + self.min_interval - now)

    def published(self, now: float, cost: int = 0) -> None:
        """Record that an update resending ``cost`` bytes went out at ``now``."""
        if self.last_published is not None:
            self.credit -= cost + self.overhead
        self.last_published = now
