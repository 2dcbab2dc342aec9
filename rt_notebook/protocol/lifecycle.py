"""Sans-I/O connection lifecycle, a part of the client core: the connection's state, the
socket generation, reconnect attempts with backoff, and the timers of a connection.

:class:`Lifecycle` owns its state and decides nothing about turns: the core
(:class:`~rt_notebook.protocol.client.ClientCore`) tells it what happened (a socket opened
or dropped, ``session.created``, the restore finished) and asks it what follows (open
again, give up, the next deadline). Every method that needs a time takes ``now``.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from .turns import State, Timing

__all__ = ["ConnectionStatus", "Drop", "Lifecycle", "Timer"]


class Drop(enum.Enum):
    """What a socket closing means (:meth:`Lifecycle.dropped`)."""

    IGNORED = "ignored"  # an old socket, or closed already
    FIRST_FAILED = "first_failed"  # the first connection never got a session: closed
    EXPIRED_TOO_OFTEN = "expired_too_often"  # session_expired again and again: closed
    RECONNECT = "reconnect"  # reconnect (see :meth:`Lifecycle.begin_reconnect`)


class Timer(enum.Enum):
    """The lifecycle's own timers (:meth:`Lifecycle.due`)."""

    RETRY = "retry"  # the backoff is over: open the next socket
    ATTEMPT = "attempt"  # a reconnect attempt did not become ready in time
    RENEW = "renew"  # time to move to a new connection (between responses)


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    """The lifecycle's public state, at one moment."""

    state: State
    attempt: int  # reconnect attempt under way (0 when none)
    restored: int  # items re-created by the last restore
    renewed_at: float | None  # when the last renewal finished
    reason: str | None  # why the connection is (or was last) down


class Lifecycle:
    """Connection state and its timers (see the module docstring)."""

    def __init__(self, timing: Timing, seed: int | None = None) -> None:
        self.timing = timing
        self.state = State.CLOSED
        self.generation = 0  # of the socket the core listens to; older sockets are ignored
        self._attempt = 0  # reconnect attempts since the last ready connection
        self._restored = 0  # items re-created by the last restore
        self._renewed_at: float | None = None
        self.reason: str | None = None  # why the connection is (or was last) down
        self._random = random.Random(seed)  # backoff jitter
        self._retry_at: float | None = None  # the next socket opens then (backoff)
        self._renew_at: float | None = None  # renew then, between responses
        self._attempt_deadline: float | None = None  # of the connection attempt under way
        self._session_generation = -1  # of the socket the last session.created came on
        self._expired_generation: int | None = None  # of the socket session_expired came on
        self._expiries = 0  # session_expired drops in a row with no answer completed
        self._last_drop_expired = False
        self._had_session = False  # a session.created arrived since start()
        self._renewing = False

    # Reading -------------------------------------------------------------------------

    def status(self) -> ConnectionStatus:
        return ConnectionStatus(
            self.state, self._attempt, self._restored, self._renewed_at, self.reason
        )

    @property
    def attempt(self) -> int:
        return self._attempt

    @property
    def last_drop_expired(self) -> bool:
        """The last drop followed the server's ``session_expired``."""
        return self._last_drop_expired

    def attempt_timeout_reason(self) -> str:
        """Why the attempt under way timed out."""
        limit = self.timing.restore_timeout
        if self._session_generation != self.generation:
            return f"no session.created within {limit:g} s of opening the connection"
        return f"the server did not acknowledge the restored conversation within {limit:g} s"

    def expired_too_often(self) -> str:
        return (
            f"the server ended the session (session_expired) {self._expiries} times in "
            "a row before any answer completed, so the Session stopped reconnecting "
            "(its sessions are shorter than an answer); connect() tries again"
        )

    # Fed by the core -------------------------------------------------------------------

    def start(self) -> None:
        """A first connection begins (connect, or a restore elsewhere)."""
        self.state = State.CONNECTING
        self._attempt = 0
        self.reason = None
        self._had_session = False
        self._expiries = 0

    def opening(self, now: float) -> None:
        """A socket is about to open: a new generation, with a deadline for the attempt
        (open, ``session.created`` and the restore acknowledged)."""
        self._retry_at = None
        self._renew_at = None
        self.generation += 1
        self._attempt_deadline = now + self.timing.restore_timeout

    def supersede(self) -> None:
        """Frames of the socket held now are ignored from now on."""
        self.generation += 1

    def closed(self, reason: str) -> None:
        """Closed for good (on purpose, or given up)."""
        self.state = State.CLOSED
        self.reason = reason

    def down(self, reason: str) -> None:
        """Why the connection is down (or moving)."""
        self.reason = reason

    def assume(self, state: State) -> None:
        """Take ``state`` without a socket (frames fed by hand, in tests)."""
        self.state = state

    def session_expired(self) -> None:
        """The server said ``session_expired``: the close that follows says why."""
        self._expired_generation = self.generation

    def dropped(self, generation: int, reason: str) -> Drop:
        """The socket of ``generation`` closed or failed to open: what it means."""
        if generation != self.generation or self.state is State.CLOSED:
            return Drop.IGNORED
        self.reason = reason
        self._last_drop_expired = self._expired_generation == generation
        if self._last_drop_expired:
            self._expiries += 1
        if self.state is State.CONNECTING and not self._had_session:
            self.closed(reason)
            return Drop.FIRST_FAILED
        if self._expiries >= self.timing.max_expiries:
            # Each new session expires before an answer completes: reconnecting again
            # would loop forever (the attempt counter starts over at each restore).
            return Drop.EXPIRED_TOO_OFTEN
        return Drop.RECONNECT

    def begin_reconnect(self, now: float, *, immediately: bool = False) -> bool:
        """Enter RECONNECTING; ``False`` when the attempts are used up (the caller gives
        up). Without ``immediately`` the next socket waits for the backoff."""
        self.generation += 1  # frames of the old socket are ignored from now on
        self.state = State.RECONNECTING
        self._attempt_deadline = None  # armed again when the next attempt opens
        self._attempt += 1
        if self._attempt > self.timing.max_attempts:
            return False
        if not immediately:
            delay = min(
                self.timing.backoff_max, self.timing.backoff_initial * 2 ** (self._attempt - 1)
            )
            self._retry_at = now + delay * (0.5 + self._random.random() / 2)
        return True

    def renewing(self) -> None:
        """The reconnect under way is a renewal (its end is recorded)."""
        self._renewing = True

    def session_created(self, expires_at: object, now: float) -> None:
        """``session.created`` on the current socket: arm the renewal."""
        self._had_session = True
        self._session_generation = self.generation
        candidates = []
        if (
            self.timing.renew_before_expiry
            and isinstance(expires_at, int | float)
            and not isinstance(expires_at, bool)
        ):
            # A lifetime shorter than the margin renews half-way, never at once (a loop).
            lifetime = float(expires_at) - now
            candidates.append(now + max(lifetime - self.timing.renew_margin, lifetime / 2))
        if self.timing.max_age is not None:
            candidates.append(now + self.timing.max_age)
        self._renew_at = min(candidates) if candidates else None

    def restoring(self, items: int) -> None:
        """The restore re-creates ``items`` items."""
        self._restored = items

    def reset(self) -> None:
        """A fresh conversation: nothing restored yet."""
        self._restored = 0

    def ready(self, now: float) -> None:
        """The restore is acknowledged: the connection is ready."""
        if self._renewing:
            self._renewing = False
            self._renewed_at = now
        self.state = State.READY
        self._attempt_deadline = None
        self._attempt = 0
        self.reason = None  # up again: the last drop's reason is history, not status

    def answered(self) -> None:
        """An answer completed: the server's sessions are long enough for one."""
        self._expiries = 0

    def stopped(self) -> None:
        """The connection went (closed or dropped): its timers with it."""
        self._retry_at = None
        self._renew_at = None
        self._attempt_deadline = None

    # Time ----------------------------------------------------------------------------

    def deadlines(self, can_renew: bool) -> list[float]:
        """The times of the lifecycle's timers (``can_renew``: a renewal may happen)."""
        times = [] if self._retry_at is None else [self._retry_at]
        if self._attempt_deadline is not None and self.state is State.RECONNECTING:
            # (A first connection's deadline is its caller's: connect(timeout=...).)
            times.append(self._attempt_deadline)
        if self._renew_at is not None and can_renew:
            times.append(self._renew_at)
        return times

    def due(self, now: float) -> list[Timer]:
        """The timers due at ``now`` (the attempt's is disarmed: it fires once)."""
        timers = []
        if self._retry_at is not None and now >= self._retry_at:
            timers.append(Timer.RETRY)
        if (
            self._attempt_deadline is not None
            and self.state is State.RECONNECTING
            and now >= self._attempt_deadline
        ):
            self._attempt_deadline = None
            timers.append(Timer.ATTEMPT)
        if self._renew_at is not None and now >= self._renew_at:
            timers.append(Timer.RENEW)
        return timers
