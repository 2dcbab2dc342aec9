"""Sans-I/O client core: server frames and user requests in, client events and outcomes out.

:class:`ClientCore` decides everything a Realtime client must decide, with no I/O and no
clock (every call takes ``now``, in seconds): the connection lifecycle (:class:`State`),
the queue of turns, matching each client event to its acknowledgement or error, the
documented retry after ``conversation_already_has_active_response``, give-up timers, and
the restore of the conversation on a new connection. The Session is a thin driver: it
feeds frames and requests in, then sends :attr:`ClientCore.outbox`, acts on
:attr:`ClientCore.commands` and resolves :attr:`ClientCore.finished`.

Matching, since acknowledgements carry only server ids:

* errors name the client's ``event_id``;
* items by the item id the client chose (``conversation.item.added``);
* responses by the metadata tag (:data:`REQUEST_TAG`) the client put in ``response.create``;
* ``session.update`` by order, with one in flight at a time (:mod:`.settings` owns them:
  a setting is the Session's only once the server accepts it).

A turn is the items it adds plus its response request. Queued turns keep their items
unsent until it is their turn, so each response answers its own question. Responses the
server starts by itself (server VAD, another client) carry no tag of ours and never take a
waiting turn's place; they become watchable turns of their own (:mod:`.voice`, with the
input audio buffer's appends and commits).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Any

from ..errors import RealtimeConnectionError, RealtimeError, ServerError
from .checks import STREAMED, decode
from .conversation import (
    Change,
    Conversation,
    ErrorReceived,
    ItemAdded,
    ItemDeleted,
    ItemDelta,
    ItemDone,
    ItemUpdated,
    ResponseCreated,
    ResponseDone,
    SessionChanged,
)
from .events import Dialect, Event, new_id
from .images import image_parts
from .lifecycle import Lifecycle
from .settings import SessionSettings
from .turns import Request, State, Timing, Turn, TurnState
from .voice import VoiceCore

__all__ = ["REQUEST_TAG", "ClientCore"]

# Metadata key that ties a response back to the turn that requested it.
REQUEST_TAG = "rt_notebook_request"
ACTIVE_RESPONSE = "conversation_already_has_active_response"
SESSION_EXPIRED = "session_expired"


class ClientCore(Lifecycle, VoiceCore):
    """The decisions of one Session's connection(s); see the module docstring."""

    def __init__(
        self, dialect: Dialect, timing: Timing | None = None, *, seed: int | None = None
    ) -> None:
        self.dialect = dialect
        self.timing = timing or Timing()
        self.conversation = Conversation()
        self.state = State.CLOSED
        # Outputs the driver drains after each call.
        self.outbox: list[Event] = []
        self.commands: list[str] = []  # "open": open a socket; "close": close the current one
        self.finished: list[Request | Turn] = []
        self.protocol_errors: deque[str] = deque(maxlen=200)
        # The settings the server accepted (restored on every connection), and the updates
        # on their way; a part with its own state.
        self.settings = SessionSettings()
        self.generation = 0  # of the socket the core listens to
        self.attempt = 0
        self.restored = 0  # items re-created by the last restore
        self.renewed_at: float | None = None
        self.reason: str | None = None  # why the connection is (or was last) down
        self._random = random.Random(seed)
        self._queue: deque[Turn] = deque()  # in-conversation turns, oldest first
        self._current: Turn | None = None  # the in-conversation turn in flight
        self._oob: dict[str, Turn] = {}  # out-of-band turns by tag
        self._by_tag: dict[str, Turn] = {}
        self._by_event: dict[str, Request | Turn] = {}
        self._items: dict[str, list[Request]] = {}  # acknowledgements by item id
        self._deferred: list[Request] = []  # sent once ready
        self._restore_pending: set[str] = set()  # item ids the restore waits for
        self._interrupted: Turn | None = None
        self._retry_at: float | None = None
        self._renew_at: float | None = None
        self._attempt_deadline: float | None = None  # of the connection attempt under way
        self._session_generation = -1  # of the socket the last session.created came on
        self._expired_generation: int | None = None  # of the socket session_expired came on
        self._expiries = 0  # session_expired drops in a row with no answer completed
        self._last_drop_expired = False
        self._refused: str | None = None  # the last frame refused since a response was asked
        self._last_rx = 0.0
        self._had_session = False  # a session.created arrived since open()
        self._awaiting_delta: dict[str, Turn] = {}  # response id -> turn, until a delta
        self._renewing = False
        self._now = 0.0  # the latest time an entry point was given
        self._voice_init()

    # Requests from the user ------------------------------------------------------------

    def submit(self, turn: Turn, now: float, first: bool = False) -> None:
        """Queue a turn (``first``: at the head); out-of-band turns run at once, beside
        the active one."""
        self._now = now
        if self.state is State.CLOSED:
            self._fail_turn(
                turn, RealtimeConnectionError(f"not connected ({self.reason or 'closed'})")
            )
            return
        turn.created_at = now
        if turn.params is not None:
            turn.params.setdefault("metadata", {})[REQUEST_TAG] = turn.tag
            self._by_tag[turn.tag] = turn
        if turn.out_of_band:
            self._oob[turn.tag] = turn
            if self.state is State.READY:
                self._send_response_create(turn, now)
            return
        if first:
            self._queue.appendleft(turn)
        else:
            self._queue.append(turn)
        self._pump(now)

    def add_item(self, request: Request, now: float, first: bool = False) -> None:
        """Add one item: at once when idle, else as a turn of its own (it waits its turn;
        ``first``: at the head of the queue)."""
        self._now = now
        if self.state is State.CLOSED:
            self._fail(
                request, RealtimeConnectionError(f"not connected ({self.reason or 'closed'})")
            )
        elif self._current is not None or self._queue or self.state is not State.READY:
            turn = Turn([request], None)
            turn.created_at = now
            if first:
                self._queue.appendleft(turn)
            else:
                self._queue.append(turn)
            self._pump(now)
        else:
            self._send_request(request)

    def request(self, request: Request, now: float | None = None) -> None:
        """A delete, retrieve, truncate or session.update."""
        if now is not None:
            self._now = now
        if self.state is State.CLOSED:
            self._fail(
                request, RealtimeConnectionError(f"not connected ({self.reason or 'closed'})")
            )
            return
        if request.kind == "update":
            self.settings.ask(request)
            self._next_update()
        elif self.state is State.READY:
            self._send_request(request)
        else:
            self._deferred.append(request)

    def cancel(self, turn: Turn, now: float) -> None:
        """Cancel a turn: a queued one never sends anything, a running one is cancelled."""
        self._now = now
        if turn.state is TurnState.DONE:
            return
        turn.cancel_requested = True
        if turn in self._queue:
            self._queue.remove(turn)
            self._finish_turn(turn, "cancelled")
        elif turn.state is TurnState.ADDING:
            self._current = None
            self._finish_turn(turn, "cancelled")
            self._pump(now)
        elif turn.response_id is not None and turn.cancel_sent_at is None:
            self._send({"type": "response.cancel", "response_id": turn.response_id})
            turn.cancel_sent_at = now
        elif turn.state is TurnState.QUEUED and turn.out_of_band:
            self._oob.pop(turn.tag, None)
            self._finish_turn(turn, "cancelled")
        # REQUESTED: cancelled as soon as response.created names it.

    def abandon(self, turn: Turn, now: float) -> None:
        """Cancel a turn without waiting for the server's confirmation: it finishes as
        cancelled now. A response still running is forgotten and its connection recycled
        (a new one, with the conversation restored), so it cannot block the next turn."""
        self._now = now
        running = turn.state in (TurnState.REQUESTED, TurnState.ACTIVE)
        self.cancel(turn, now)  # queued (or only adding items): it is finished now
        if not running:
            return
        if turn is self._current:
            self._give_up(turn, now, "the server did not confirm the cancel in time")
        else:  # out of band: nothing in the conversation waits for it
            if turn.response_id is not None:
                self._abandon_response(turn.response_id)
            self._finish_turn(turn, "cancelled")

    def cancel_all(self, now: float) -> None:
        """Cancel every turn that asks for a response (plain item additions still go)."""
        for turn in [
            *self._queue,
            *([self._current] if self._current else []),
            *self._oob.values(),
            *self._server_turns.values(),
        ]:
            if turn.params is not None or turn.by_server:
                self.cancel(turn, now)

    @property
    def pending(self) -> int:
        """Turns not finished (queued or running)."""
        current = 1 if self._current is not None and self._current.params is not None else 0
        return current + len(self._oob) + sum(1 for t in self._queue if t.params is not None)

    # Frames from the server --------------------------------------------------------------

    def receive(
        self, raw: str | bytes, generation: int, now: float, *, binary: bool = False
    ) -> tuple[Event | None, list[Change]]:
        """Check and apply one frame; return the event (``None`` when rejected) and changes.

        ``binary``: it came as a binary websocket frame, which the protocol never sends.
        """
        if generation != self.generation:
            return None, []  # an old socket's frame
        self._last_rx = self._now = now
        if binary:
            self._refuse(f"binary frame ({len(raw)} bytes)")
            return None, []
        event, why = decode(raw)
        if event is None:
            self._refuse(why or "bad frame")
            return None, []
        try:
            changes = self.conversation.apply(event)
        except Exception as exc:  # a check the mirror needed is missing: never crash
            self._refuse(f"{event.get('type')}: {type(exc).__name__}: {exc}")
            return None, []
        kind = event["type"]
        if kind in STREAMED:
            # Most frames: a delta acknowledges, starts and ends nothing, so no handler
            # runs; it only marks its turn's first delta.
            if self._awaiting_delta:
                self._note_first_delta(changes, now)
            return event, changes
        if kind == "session.created":
            self._on_session_created(event, now)
            return event, changes
        for change in changes:
            handler = _HANDLERS.get(type(change))
            if handler is not None:
                handler(self, change, now)
        if event["type"].startswith("input_audio_buffer."):
            self._on_input_audio(event, now)
        return event, changes

    def _refuse(self, why: str) -> None:
        """A frame the mirror cannot take: logged, and named if a turn is given up."""
        self.protocol_errors.append(why)
        self._refused = why

    def _note_first_delta(self, changes: list[Change], now: float) -> None:
        for change in changes:
            if type(change) is ItemDelta and change.response_id in self._awaiting_delta:
                self._awaiting_delta.pop(change.response_id).first_delta_at = now

    # Matching acknowledgements ---------------------------------------------------------

    def _on_item_added(self, change: Any, now: float) -> None:
        item_id = change.item_id
        if item_id in self._restore_pending:
            self._restore_pending.discard(item_id)
            self._maybe_ready(now)
            return
        requests = self._items.get(item_id)
        if requests:
            for request in [r for r in requests if r.kind == "item"]:
                requests.remove(request)
                self._keep_images(item_id, request)
                self._resolve(request, item_id)
            self._after_item(now)

    def _keep_images(self, item_id: str, request: Request) -> None:
        """The images the client sent, when the server's echo left their data out: the
        mirror shows them and a restore sends them again."""
        item = self.conversation.item(item_id)
        sent = request.event.get("item")
        if item is not None and not item.images and isinstance(sent, dict):
            item.images[:] = image_parts(sent.get("content"))

    def _after_item(self, now: float) -> None:
        turn = self._current
        if turn is None or turn.state is not TurnState.ADDING:
            return
        if all(r.result is not None for r in turn.items):
            if turn.params is None:
                self._current = None
                self._finish_turn(turn, "completed")
                self._pump(now)
            else:
                self._send_response_create(turn, now)

    def _on_session_changed(self, change: Any, now: float) -> None:
        restoring = self.settings.restoring is not None
        request = self.settings.acknowledged(change.session)
        if restoring:
            self._maybe_ready(now)
        elif request is not None:
            self._resolve(request, change.session)
            self._next_update()

    def _on_response_created(self, change: Any, now: float) -> None:
        response = self.conversation.responses[change.response_id]
        tag = (response.metadata or {}).get(REQUEST_TAG)
        turn = self._by_tag.get(tag) if tag else None
        current = self._current
        if (
            turn is None
            and response.metadata is None
            and response.conversation_id is not None
            and current is not None
            and current.state is TurnState.REQUESTED
        ):
            # A server that drops metadata: responses are serialised, so ours is this one.
            turn = current
        if turn is None and not tag:
            if self.conversation.active_response_id == change.response_id:
                # Started by the server (VAD) or another client: watched, never matched.
                self._on_server_response(change.response_id, now)
            return
        if turn is None or turn.state is TurnState.DONE:
            return
        turn.state = TurnState.ACTIVE
        turn.response_id = change.response_id
        self._awaiting_delta[change.response_id] = turn
        if turn.cancel_requested and turn.cancel_sent_at is None:
            self._send({"type": "response.cancel", "response_id": change.response_id})
            turn.cancel_sent_at = now

    def _on_response_done(self, change: ResponseDone, now: float) -> None:
        response = self.conversation.responses.get(change.response_id)
        tag = ((response.metadata if response else None) or {}).get(REQUEST_TAG)
        owner = self._by_tag.get(tag) if isinstance(tag, str) else None
        if owner is not None and owner.response_id is None and owner.state is TurnState.REQUESTED:
            # Its response.created was lost or comes late; response.done carries the whole
            # response, so the answer is complete all the same.
            owner.response_id = change.response_id
        turn = self._current
        if turn is not None and turn.response_id == change.response_id:
            self._current = None
            self._finish_turn(turn, change.status)
        else:
            oob = self._oob.get(tag) if isinstance(tag, str) else None
            if oob is not None and oob.response_id == change.response_id:
                self._finish_turn(oob, change.status)
            elif self._server_turns:
                self._on_server_response_done(change.response_id, change.status)
        self._pump(now)

    def _on_error(self, change: Any, now: float) -> None:
        event_id = change.client_event_id
        target = self._by_event.pop(event_id, None) if event_id else None
        if target is None:
            if change.error.get("code") == SESSION_EXPIRED:
                self._expired_generation = self.generation  # the close that follows says why
            return  # not ours to fail; it stays in the error log
        error = change.error
        if isinstance(target, Request) and target.kind == "commit":
            self._on_commit_error(target, error, now)
            return
        if isinstance(target, Turn):
            self._on_turn_error(target, error, now)
            return
        if target is self.settings.restoring:
            # The settings it carried are lost: settings.lost tells the user which.
            self.settings.refused(target, str(error.get("message") or error.get("code")))
            self._maybe_ready(now)
            return
        if self.settings.refused(target, str(error.get("message") or "")):
            # Nothing accepted changes: the Session keeps the settings it had.
            self._fail(target, ServerError(error))
            self._next_update()
            return
        requests = self._items.get(target.key or "")
        if requests and target in requests:
            requests.remove(target)
        self._fail(target, ServerError(error))
        turn = self._current
        if turn is not None and target in turn.items:
            self._current = None
            self._fail_turn(turn, ServerError(error))
            self._pump(now)

    def _on_turn_error(self, turn: Turn, error: dict[str, Any], now: float) -> None:
        code = error.get("code")
        message = str(error.get("message") or "")
        if turn is self._current and (
            code == ACTIVE_RESPONSE
            or message.startswith("Conversation already has an active response")
        ):
            # Someone else's response is running: wait until it is done, then ask again.
            turn.state = TurnState.QUEUED
            self._current = None
            self._queue.appendleft(turn)
            self._pump(now)
            return
        if turn is self._current:
            self._current = None
        self._fail_turn(turn, ServerError(error))
        self._pump(now)

    # Sending -----------------------------------------------------------------------------

    def _pump(self, now: float) -> None:
        """Start the next queued turn when nothing occupies the conversation."""
        while (
            self.state is State.READY
            and self._current is None
            and self._queue
            and self.conversation.active_response_id is None
        ):
            turn = self._queue.popleft()
            self._current = turn
            unsent = [r for r in turn.items if r.result is None]
            if unsent:
                turn.state = TurnState.ADDING
                turn.sent_at = now
                for request in unsent:
                    if request.kind != "commit":  # sent already; its committed is awaited
                        self._send_request(request)
                return
            if turn.params is None:
                self._current = None
                self._finish_turn(turn, "completed")
                continue
            self._send_response_create(turn, now)

    def _send_response_create(self, turn: Turn, now: float) -> None:
        assert turn.params is not None
        self._refused = None
        turn.event_id = new_id("event")
        turn.state = TurnState.REQUESTED
        turn.sent_at = now
        self._by_event[turn.event_id] = turn
        self.outbox.append(
            {"type": "response.create", "event_id": turn.event_id, "response": turn.params}
        )

    def _send_request(self, request: Request) -> None:
        if request.key is not None:
            self._items.setdefault(request.key, []).append(request)
        self._send_tracked(request)

    def _send_tracked(self, request: Request) -> None:
        event = dict(request.event)
        event["event_id"] = new_id("event")
        request.sent = True
        request.sent_at = self._now
        self._by_event[event["event_id"]] = request
        self.outbox.append(event)

    def _next_update(self) -> None:
        if self.state is State.READY:
            request = self.settings.next_update()
            if request is not None:
                self._send_tracked(request)

    def _send(self, event: Event) -> None:
        event["event_id"] = new_id("event")
        self.outbox.append(event)

    # Finishing ---------------------------------------------------------------------------

    def _resolve(self, request: Request, result: Any) -> None:
        if request.result is None and request.error is None:
            request.result = result
            self.finished.append(request)

    def _fail_request(self, request: Request, error: RealtimeError) -> None:
        self._fail(request, error)

    def _fail(self, request: Request, error: RealtimeError) -> None:
        if request.result is None and request.error is None:
            request.error = error
            self.finished.append(request)

    def _finish_turn(self, turn: Turn, status: str) -> None:
        if turn.state is TurnState.DONE:
            return
        turn.state = TurnState.DONE
        turn.status = status
        if status == "completed" and (turn.params is not None or turn.by_server):
            self._expiries = 0  # an answer fits in the server's sessions
        if status == "cancelled":
            for request in turn.items:  # never sent: their waiters must not hang
                self._fail(request, RealtimeError("cancelled before it was sent"))
        self._by_tag.pop(turn.tag, None)
        self._oob.pop(turn.tag, None)
        if turn.response_id is not None:
            self._awaiting_delta.pop(turn.response_id, None)
        self.finished.append(turn)

    def _fail_turn(self, turn: Turn, error: RealtimeError) -> None:
        if turn.state is TurnState.DONE:
            return
        for request in turn.items:
            self._fail(request, error)
        turn.error = error
        self._finish_turn(turn, "failed")
        turn.status = None

    def _fail_everything(self, error: RealtimeConnectionError) -> None:
        self._drop_voice(str(error))
        self._generation_reset()
        turns = [*self._queue, *self._oob.values()]
        if self._current is not None:
            turns.append(self._current)
        self._queue.clear()
        self._current = None
        for turn in turns:
            self._fail_turn(turn, error)
        requests = (
            [r for rs in self._items.values() for r in rs]
            + self._deferred
            + self.settings.fail_all()
        )
        self._items.clear()
        self._deferred = []
        for request in requests:
            self._fail(request, error)

    def _generation_reset(self) -> None:
        self._by_event.clear()
        self._restore_pending.clear()
        self.settings.dropped()
        self._interrupted = None
        self._retry_at = None
        self._renew_at = None
        self._attempt_deadline = None
        if self.conversation.active_response_id is not None:
            self._abandon_response(self.conversation.active_response_id)


def _keyed(kind: str) -> Callable[[ClientCore, Any, float], None]:
    """The acknowledgement of a delete, retrieve or truncate: the item id it names."""

    def handle(core: ClientCore, change: Any, now: float) -> None:
        requests = core._items.get(change.item_id)
        if requests:
            for request in [r for r in requests if r.kind == kind]:
                requests.remove(request)
                core._resolve(request, change.item_id)

    return handle


# Which core method each mirror change goes to (deltas go nowhere: the fast path).
_HANDLERS: dict[type, Callable[[ClientCore, Any, float], None]] = {
    ItemAdded: ClientCore._on_item_added,
    ItemDeleted: _keyed("delete"),
    ItemDone: _keyed("retrieve"),
    ItemUpdated: _keyed("truncate"),
    SessionChanged: ClientCore._on_session_changed,
    ResponseCreated: ClientCore._on_response_created,
    ResponseDone: ClientCore._on_response_done,
    ErrorReceived: ClientCore._on_error,
}
