"""Sans-I/O connection lifecycle of the client core: connecting, drops, backoff, timers,
renewal and the restore of a conversation on a new connection.

A mixin of :class:`~rt_notebook.protocol.client.ClientCore` (the turn queue and matching
live there). Every method takes ``now`` and only changes state and the core's outputs.
"""

from __future__ import annotations

import random
from collections import deque
from typing import TYPE_CHECKING

from ..errors import RealtimeConnectionError, RealtimeError
from .conversation import Conversation
from .events import Dialect, Event
from .restore import restore_items
from .settings import SessionSettings
from .turns import Request, State, Timing, Turn, TurnState

__all__ = ["Lifecycle"]


class Lifecycle:
    """Lifecycle and timers; the state below is set up by ``ClientCore.__init__``."""

    dialect: Dialect
    timing: Timing
    conversation: Conversation
    state: State
    outbox: list[Event]
    commands: list[str]
    finished: list[Request | Turn]
    protocol_errors: deque[str]
    settings: SessionSettings
    generation: int
    attempt: int
    restored: int
    renewed_at: float | None
    reason: str | None
    _random: random.Random
    _queue: deque[Turn]
    _current: Turn | None
    _oob: dict[str, Turn]
    _by_event: dict[str, Request | Turn]
    _items: dict[str, list[Request]]
    _deferred: list[Request]
    _restore_pending: set[str]
    _interrupted: Turn | None
    _retry_at: float | None
    _renew_at: float | None
    _attempt_deadline: float | None
    _session_generation: int
    _expired_generation: int | None
    _expiries: int
    _last_drop_expired: bool
    _refused: str | None
    _last_rx: float
    _had_session: bool
    _renewing: bool
    _now: float

    # Provided by ClientCore.
    def add_item(self, request: Request, now: float, first: bool = False) -> None:
        raise NotImplementedError

    def _pump(self, now: float) -> None:
        raise NotImplementedError

    def _next_update(self) -> None:
        raise NotImplementedError

    def _send_request(self, request: Request) -> None:
        raise NotImplementedError

    def _send_tracked(self, request: Request) -> None:
        raise NotImplementedError

    def _send(self, event: Event) -> None:
        raise NotImplementedError

    def _send_response_create(self, turn: Turn, now: float) -> None:
        raise NotImplementedError

    def _finish_turn(self, turn: Turn, status: str) -> None:
        raise NotImplementedError

    def _fail_turn(self, turn: Turn, error: RealtimeError) -> None:
        raise NotImplementedError

    def _fail_everything(self, error: RealtimeConnectionError) -> None:
        raise NotImplementedError

    def _fail_request(self, request: Request, error: RealtimeError) -> None:
        raise NotImplementedError

    if TYPE_CHECKING:  # provided by VoiceCore, after this class in ClientCore's bases

        def _drop_voice(self, reason: str) -> None: ...

    # Lifecycle ----------------------------------------------------------------------

    def open(self, now: float) -> None:
        """The user asked to connect: open the first socket."""
        if self.state is not State.CLOSED:
            return
        self.state = State.CONNECTING
        self.attempt = 0
        self.reason = None
        self._had_session = False
        self._expiries = 0
        self._open_socket(now)

    def close(self, reason: str = "the session was closed") -> None:
        """Close on purpose: every pending request fails, no reconnect."""
        self.state = State.CLOSED
        self.reason = reason
        self.commands.append("close")
        self._fail_everything(RealtimeConnectionError(reason))

    def restore_snapshot(
        self, now: float, conversation: Conversation | None = None, why: str = "moved"
    ) -> None:
        """Restore a conversation on a new connection: ``conversation`` (default: the one
        held now) with the accepted settings, through the restore every reconnect uses.

        The connection held now (if any) is closed; what was in flight is handled as on a
        drop (an answer under way is asked again once restored). The new connection is a
        first connection: if it cannot be opened, the core closes and the caller is told,
        and the conversation stays here for another try. The driver may have changed the
        endpoint first (``Session.move``).
        """
        self.reason = why
        if self.state is not State.CLOSED:
            self.commands.append("close")
            self.generation += 1  # frames of the old socket are ignored from now on
            self._interrupt_in_flight()
        if conversation is not None:
            self.conversation = conversation
        self.state = State.CONNECTING
        self.attempt = 0
        self.reason = None
        self._had_session = False
        self._expiries = 0
        self._open_socket(now)

    def reset(self) -> None:
        """A fresh, empty conversation on the next connection (settings are kept)."""
        self.conversation = Conversation()
        self.restored = 0

    def socket_opened(self, generation: int, now: float) -> None:
        """The socket of ``generation`` is open; ``session.created`` comes next."""
        if generation == self.generation:
            self._last_rx = now

    def socket_closed(self, generation: int, reason: str, now: float) -> None:
        """The socket of ``generation`` closed or failed to open."""
        if generation != self.generation or self.state is State.CLOSED:
            return
        self.reason = reason
        self.commands.append("close")  # the dead socket's tasks go with it
        self._last_drop_expired = self._expired_generation == generation
        if self._last_drop_expired:
            self._expiries += 1
        if self.state is State.CONNECTING and not self._had_session:
            self.state = State.CLOSED  # the first connect fails to its caller
            self._fail_everything(RealtimeConnectionError(reason))
            return
        if self._expiries >= self.timing.max_expiries:
            # Each new session expires before an answer completes: reconnecting again
            # would loop forever (the attempt counter starts over at each restore).
            self._stop_reconnecting(
                f"the server ended the session (session_expired) {self._expiries} times in "
                "a row before any answer completed, so the Session stopped reconnecting "
                "(its sessions are shorter than an answer); connect() tries again"
            )
            return
        self._begin_reconnect(now, reason)

    def renew(self, now: float, reason: str = "renewal") -> None:
        """Move the conversation to a new connection now (between responses)."""
        if self.state is State.READY:
            self.commands.append("close")
            self._renewing = True
            self._begin_reconnect(now, reason, immediately=True)

    def _begin_reconnect(self, now: float, reason: str, *, immediately: bool = False) -> None:
        self.generation += 1  # frames of the old socket are ignored from now on
        self.state = State.RECONNECTING
        self._attempt_deadline = None  # armed again when the next attempt opens
        self.attempt += 1
        if self.attempt > self.timing.max_attempts:
            self._stop_reconnecting(
                f"gave up reconnecting after {self.timing.max_attempts} attempts ({reason})"
            )
            return
        self._interrupt_in_flight()
        if immediately:
            self._open_socket(now)
        else:
            delay = min(
                self.timing.backoff_max, self.timing.backoff_initial * 2 ** (self.attempt - 1)
            )
            self._retry_at = now + delay * (0.5 + self._random.random() / 2)

    def _stop_reconnecting(self, reason: str) -> None:
        """Give up for good: every pending request fails with ``reason``."""
        self.state = State.CLOSED
        self.reason = reason
        self._fail_everything(RealtimeConnectionError(reason))

    def _open_socket(self, now: float) -> None:
        self._retry_at = None
        self._renew_at = None
        self.generation += 1
        self._last_rx = now
        # Every attempt has a deadline: open, session.created and the restore acknowledged.
        self._attempt_deadline = now + self.timing.restore_timeout
        self.commands.append("open")

    def _attempt_timed_out(self, now: float) -> None:
        """The connection attempt did not become ready in time: abandon it, try again
        (with backoff), and fail the turns waiting for it rather than keep them hanging."""
        limit = self.timing.restore_timeout
        if self._session_generation != self.generation:
            why = f"no session.created within {limit:g} s of opening the connection"
        else:
            why = f"the server did not acknowledge the restored conversation within {limit:g} s"
        self._attempt_deadline = None
        self.reason = why
        self.commands.append("close")
        self._begin_reconnect(now, why)
        if self.state is State.CLOSED:
            return  # gave up: everything failed already
        error = RealtimeConnectionError(
            f"{why}; the Session is reconnecting (attempt {self.attempt}), and this was "
            "not sent (try again)"
        )
        waiting = [*self._queue, *self._oob.values()]
        self._queue.clear()
        for turn in waiting:
            self._fail_turn(turn, error)
        deferred, self._deferred = self._deferred, []
        for request in deferred:
            self._fail_request(request, error)

    def _interrupt_in_flight(self) -> None:
        """The connection dropped: decide what becomes of everything in flight."""
        self._by_event.clear()
        self._restore_pending.clear()
        self.settings.dropped()  # an update in flight goes again once restored
        turn = self._current
        self._current = None
        own = turn.items if turn is not None else []
        if turn is not None:
            partial = turn.response_id
            if partial is not None:
                self._abandon_response(partial)
            if turn.cancel_requested:
                self._finish_turn(turn, "cancelled")
            elif turn.tool_ran or self._called_tool(partial):
                self._fail_turn(
                    turn,
                    RealtimeConnectionError(
                        "the connection dropped after this answer called a tool; it is not "
                        "requested again, so no tool runs twice"
                    ),
                )
            elif turn.restarts >= 1:
                self._fail_turn(turn, RealtimeConnectionError(self._second_drop()))
            else:
                turn.restarts += 1
                turn.state = TurnState.QUEUED
                turn.response_id = None
                self._interrupted = turn
                self._queue.appendleft(turn)
        for oob in list(self._oob.values()):
            self._fail_turn(
                oob,
                RealtimeConnectionError(
                    f"the connection dropped during this out-of-band answer ({self.reason})"
                ),
            )
        # Requests in flight are sent again once the conversation is restored.
        for requests in self._items.values():
            for request in requests:
                if request.sent and request not in self._deferred and request not in own:
                    request.sent = False
                    self._deferred.append(request)
        self._items.clear()
        self._drop_voice(self.reason or "the connection dropped")

    def _second_drop(self) -> str:
        """Why an answer interrupted twice fails, naming the cause."""
        if self._last_drop_expired:
            return (
                "the server's session expired (session_expired) during this answer twice: "
                "its sessions are shorter than this answer; it was not requested again"
            )
        return (
            f"the connection dropped twice during this answer ({self.reason}); "
            "it was not requested again"
        )

    def _called_tool(self, response_id: str | None) -> bool:
        if response_id is None:
            return False
        return any(
            item.type == "function_call" and item.status == "completed"
            for item in self.conversation.response_items(response_id)
        )

    def _abandon_response(self, response_id: str) -> None:
        """Forget a response that will never finish here and its partial items."""
        conversation = self.conversation
        response = conversation.responses.get(response_id)
        if response is not None and not response.done:
            response.status = "incomplete"
        if conversation.active_response_id == response_id:
            conversation.active_response_id = None
        for item in list(conversation.response_items(response_id)):
            if item.status != "completed":
                conversation.forget(item.id)

    # Time ----------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has something to do (``None``: nothing timed)."""
        times = [] if self._retry_at is None else [self._retry_at]
        if self._attempt_deadline is not None and self.state is State.RECONNECTING:
            # (A first connection's deadline is its caller's: connect(timeout=...).)
            times.append(self._attempt_deadline)
        turn = self._current
        if self._renew_at is not None and self._can_renew():
            times.append(self._renew_at)
        update = self.settings.inflight
        if update is not None and self.state is State.READY:
            times.append(update.sent_at + self.timing.idle_timeout)
        if turn is not None and turn.state is TurnState.ADDING:
            times.append((turn.sent_at or 0.0) + self.timing.idle_timeout)
        elif turn is not None and turn.state in (TurnState.REQUESTED, TurnState.ACTIVE):
            times.append(max(self._last_rx, turn.sent_at or 0.0) + self.timing.idle_timeout)
            if turn.cancel_sent_at is not None:
                times.append(turn.cancel_sent_at + self.timing.cancel_timeout)
        elif self._blocked_by_foreign_response():
            # A response not ours blocks the queue: it too must show signs of life.
            times.append(self._last_rx + self.timing.idle_timeout)
        for oob in self._oob.values():
            if oob.sent_at is not None:
                times.append(max(self._last_rx, oob.sent_at) + self.timing.idle_timeout)
            if oob.cancel_sent_at is not None:
                times.append(oob.cancel_sent_at + self.timing.cancel_timeout)
        return min(times) if times else None

    def tick(self, now: float) -> None:
        """Fire the timers that are due."""
        self._now = now
        if self._retry_at is not None and now >= self._retry_at:
            self._open_socket(now)
        if (
            self._attempt_deadline is not None
            and self.state is State.RECONNECTING
            and now >= self._attempt_deadline
        ):
            self._attempt_timed_out(now)
        update = (
            self.settings.expired(now, self.timing.idle_timeout)
            if self.state is State.READY
            else None
        )
        if update is not None:
            self._fail_request(
                update,
                RealtimeError(
                    f"no acknowledgement of session.update within {self.timing.idle_timeout:g} s"
                ),
            )
            self._next_update()
        turn = self._current
        if (
            turn is not None
            and turn.state is TurnState.ADDING
            and now >= (turn.sent_at or 0.0) + self.timing.idle_timeout
        ):
            self._give_up(
                turn,
                now,
                f"the server did not acknowledge the items within {self.timing.idle_timeout:g} s",
            )
        elif turn is not None and turn.state in (TurnState.REQUESTED, TurnState.ACTIVE):
            if (
                turn.cancel_sent_at is not None
                and now >= turn.cancel_sent_at + self.timing.cancel_timeout
            ):
                self._give_up(
                    turn,
                    now,
                    f"no response.done within {self.timing.cancel_timeout:g} s of response.cancel",
                )
            elif now >= max(self._last_rx, turn.sent_at or 0.0) + self.timing.idle_timeout:
                self._give_up(turn, now, self._silence())
        elif (
            self._blocked_by_foreign_response() and now >= self._last_rx + self.timing.idle_timeout
        ):
            stuck = str(self.conversation.active_response_id)
            self._abandon_response(stuck)
            self.protocol_errors.append(f"gave up on {stuck}: no event for it; reconnecting")
            self.commands.append("close")
            self._begin_reconnect(now, "a response that never finished", immediately=True)
        for oob in list(self._oob.values()):
            if (
                oob.cancel_sent_at is not None
                and now >= oob.cancel_sent_at + self.timing.cancel_timeout
            ):
                self._fail_turn(
                    oob,
                    RealtimeError(
                        f"gave up on the answer: no response.done within "
                        f"{self.timing.cancel_timeout:g} s of response.cancel"
                    ),
                )
            elif (
                oob.sent_at is not None
                and now >= max(self._last_rx, oob.sent_at) + self.timing.idle_timeout
            ):
                self._fail_turn(oob, RealtimeError(f"gave up on the answer: {self._silence()}"))
        if self._renew_at is not None and now >= self._renew_at and self._can_renew():
            self.renew(now)

    def _silence(self) -> str:
        """Why an answer is given up for lack of events: silence, or events refused."""
        limit = self.timing.idle_timeout
        if self._refused is not None:
            return (
                f"nothing usable for {limit:g} s (the server's last refused event: "
                f"{self._refused[:160]})"
            )
        return f"the server sent nothing for {limit:g} s"

    def _can_renew(self) -> bool:
        """Renewals happen between responses only."""
        return (
            self.state is State.READY
            and self._current is None
            and not self._oob
            and self.conversation.active_response_id is None
        )

    def _blocked_by_foreign_response(self) -> bool:
        return (
            self.state is State.READY
            and self._current is None
            and bool(self._queue)
            and self.conversation.active_response_id is not None
        )

    def _give_up(self, turn: Turn, now: float, why: str) -> None:
        """A response that never finishes: fail it, then recycle the connection so the
        server's stuck response cannot block the next turn."""
        self._current = None
        if turn.response_id is not None:
            self._abandon_response(turn.response_id)
        if turn.cancel_requested:
            self._finish_turn(turn, "cancelled")
        else:
            self._fail_turn(turn, RealtimeError(f"gave up on the answer: {why}"))
        if self.state is State.READY:
            self.commands.append("close")
            self._begin_reconnect(now, why, immediately=True)

    # The restore ----------------------------------------------------------------------

    def _on_session_created(self, event: Event, now: float) -> None:
        self._had_session = True
        self._session_generation = self.generation
        self.settings.created(event["session"])
        expires_at = event["session"].get("expires_at")
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
        self._restore(now)

    def _restore(self, now: float) -> None:
        """Send the settings, then the conversation's items in order."""
        # The accepted settings only: never a field the server refused.
        request = self.settings.restore_update()
        if request is not None:
            self._send_tracked(request)
        skip = self._interrupted.response_id if self._interrupted else None
        plan = restore_items(self.conversation.items, self.dialect, skip)
        for item in plan:
            self._restore_pending.add(item["id"])
            self._send({"type": "conversation.item.create", "item": item})
        self.restored = len(plan)
        self._maybe_ready(now)

    def _maybe_ready(self, now: float) -> None:
        if self.settings.restoring is not None or self._restore_pending:
            return
        if self._renewing:
            self._renewing = False
            self.renewed_at = now
        self.state = State.READY
        self._attempt_deadline = None
        self.attempt = 0
        self.reason = None  # up again: the last drop's reason is history, not status
        self._interrupted = None
        self._next_update()  # settings first: the turns below answer with them
        deferred, self._deferred = self._deferred, []
        for request in deferred:
            if request.error is None and request.result is None:
                if request.kind == "item":
                    self.add_item(request, now)
                else:
                    self._send_request(request)
        for oob in list(self._oob.values()):
            if oob.state is TurnState.QUEUED:
                self._send_response_create(oob, now)
        self._pump(now)
