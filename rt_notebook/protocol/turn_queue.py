"""Sans-I/O turn queue, a part of the client core: the turns waiting for the conversation,
the one in it, and the out-of-band turns running beside it.

In-conversation turns run one at a time, oldest first (a tool round's follow-up or an
answer asked again after a drop goes to the head). Out-of-band turns run at once. Turns
that ask for a response are found by their tag (the response's metadata names it). The
queue decides nothing about sending: the core
(:class:`~rt_notebook.protocol.client.ClientCore`) takes turns from it.
"""

from __future__ import annotations

from collections import deque

from .turns import Turn

__all__ = ["TurnQueue"]


class TurnQueue:
    """Queued, current and out-of-band turns (see the module docstring)."""

    def __init__(self) -> None:
        self._waiting: deque[Turn] = deque()  # in-conversation turns, oldest first
        self._current: Turn | None = None  # the in-conversation turn in flight
        self._oob: dict[str, Turn] = {}  # out-of-band turns by tag
        self._by_tag: dict[str, Turn] = {}  # turns that asked for a response, by tag

    # Reading -------------------------------------------------------------------------

    @property
    def current(self) -> Turn | None:
        return self._current

    def waiting(self) -> list[Turn]:
        """The queued in-conversation turns, oldest first."""
        return list(self._waiting)

    def has_waiting(self) -> bool:
        return bool(self._waiting)

    def is_waiting(self, turn: Turn) -> bool:
        return turn in self._waiting

    def out_of_band(self) -> list[Turn]:
        return list(self._oob.values())

    def has_out_of_band(self) -> bool:
        return bool(self._oob)

    def out_of_band_turn(self, tag: str) -> Turn | None:
        return self._oob.get(tag)

    def tagged(self, tag: str) -> Turn | None:
        """The turn whose response carries ``tag``."""
        return self._by_tag.get(tag)

    def pending(self) -> int:
        """Turns asking for a response, not finished (queued or running)."""
        current = self._current
        running = 1 if current is not None and current.params is not None else 0
        return running + len(self._oob) + sum(1 for t in self._waiting if t.params is not None)

    # Changing ------------------------------------------------------------------------

    def tag(self, turn: Turn) -> None:
        """``turn`` asks for a response tagged with its tag."""
        self._by_tag[turn.tag] = turn

    def add(self, turn: Turn, first: bool = False) -> None:
        """Queue an in-conversation turn (``first``: at the head)."""
        if first:
            self._waiting.appendleft(turn)
        else:
            self._waiting.append(turn)

    def add_out_of_band(self, turn: Turn) -> None:
        self._oob[turn.tag] = turn

    def remove(self, turn: Turn) -> bool:
        """Take a queued turn out; whether it was queued."""
        if turn in self._waiting:
            self._waiting.remove(turn)
            return True
        return False

    def next(self) -> Turn:
        """Make the oldest queued turn the current one (there must be one)."""
        turn = self._waiting.popleft()
        self._current = turn
        return turn

    def release(self, turn: Turn | None = None) -> Turn | None:
        """The current turn leaves the conversation (only if it is ``turn``, when given);
        returns the turn released."""
        current = self._current
        if turn is None or turn is current:
            self._current = None
            return current
        return None

    def take_waiting(self) -> list[Turn]:
        """Empty the queue; return what waited (oldest first)."""
        turns = list(self._waiting)
        self._waiting.clear()
        return turns

    def finished(self, turn: Turn) -> None:
        """``turn`` is done: it is found by its tag no more."""
        self._by_tag.pop(turn.tag, None)
        self._oob.pop(turn.tag, None)
