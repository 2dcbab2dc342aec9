"""Sans-I/O client core: server frames and user requests in, client events and outcomes out.

:class:`ClientCore` decides everything a Realtime client must decide, with no I/O and no
clock (every call takes ``now``, in seconds): the queue of turns, matching each client
event to its acknowledgement or error, the documented retry after
``conversation_already_has_active_response``, give-up timers, and the restore of the
conversation on a new connection. It is one class that owns small parts, each with its own
state: the connection's :class:`~.lifecycle.Lifecycle`, the :class:`~.turn_queue.TurnQueue`,
the :class:`~.voice.AudioInput` and the :class:`~.settings.SessionSettings`.

Like ``websockets``' sans-I/O ``Protocol``, it is fed and drained through methods only.
Fed: :meth:`~ClientCore.receive` (a frame), :meth:`~ClientCore.socket_opened` /
:meth:`~ClientCore.socket_closed`, :meth:`~ClientCore.tick` (a timer fired), and the user's
requests (:meth:`~ClientCore.submit`, :meth:`~ClientCore.request`, ...). Drained:
:meth:`~ClientCore.events_to_send`, :meth:`~ClientCore.commands_to_run` (:class:`Command`),
:meth:`~ClientCore.finished_turns`, :meth:`~ClientCore.finished_requests`,
:meth:`~ClientCore.server_started_turns`, :meth:`~ClientCore.protocol_errors`,
:meth:`~ClientCore.settings_loss_to_tell` and :meth:`~ClientCore.next_deadline`; each of
these (but the deadline) returns what accumulated and clears it.

Matching, since acknowledgements carry only server ids:

* errors name the client's ``event_id``;
* items by the item id the client chose (``conversation.item.added``);
* responses by the metadata tag (:data:`REQUEST_TAG`) the client put in ``response.create``;
* ``session.update`` by order, with one in flight at a time (:mod:`.settings` owns them:
  a setting is the Session's only once the server accepts it).

A turn is the items it adds plus its response request. Queued turns keep their items
unsent until it is their turn, so each response answers its own question. Responses the
server starts by itself (server VAD, another client) carry no tag of ours and never take a
waiting turn's place; they become watchable turns of their own (:mod:`.voice`).
"""

from __future__ import annotations

import enum
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
from .conversation_view import ConversationView
from .events import Dialect, Event, new_id
from .images import image_parts
from .lifecycle import ConnectionStatus, Drop, Lifecycle, Timer
from .restore import restore_items
from .settings import SessionSettings, SettingsLost
from .turn_queue import TurnQueue
from .turns import Request, State, Timing, Turn, TurnState
from .voice import AudioInput

__all__ = ["REQUEST_TAG", "ClientCore", "Command"]

# Metadata key that ties a response back to the turn that requested it.
REQUEST_TAG = "rt_notebook_request"
ACTIVE_RESPONSE = "conversation_already_has_active_response"
SESSION_EXPIRED = "session_expired"


class Command(enum.Enum):
    """What the driver must do with sockets (:meth:`ClientCore.commands_to_run`)."""

    OPEN = "open"  # close the socket held, if any, and open one for generation
    CLOSE = "close"  # close the socket held (its tasks go with it)


class ClientCore:
    """The decisions of one Session's connection(s); see the module docstring."""

    def __init__(
        self, dialect: Dialect, timing: Timing | None = None, *, seed: int | None = None
    ) -> None:
        self.dialect = dialect
        self.timing = timing or Timing()
        # Parts, each with its own state.
        self._life = Lifecycle(self.timing, seed)
        self._turns = TurnQueue()
        self._audio = AudioInput()
        self._settings = SessionSettings()  # accepted settings and updates in flight
        self._conversation = Conversation()
        # Outputs, drained by the driver through the take methods.
        self._outbox: list[Event] = []
        self._commands: list[Command] = []
        self._finished_turns: list[Turn] = []
        self._finished_requests: list[Request] = []
        self._started: list[Turn] = []  # server-started turns not announced yet
        self._protocol_errors: deque[str] = deque(maxlen=200)
        # Something may have been added to the outputs since has_output() last found them
        # empty: a delta then costs one check, not one per output.
        self._unseen = False
        # Matching acknowledgements to what was sent.
        self._by_event: dict[str, Request | Turn] = {}
        self._items: dict[str, list[Request]] = {}  # acknowledgements by item id
        self._deferred: list[Request] = []  # sent once ready
        self._restore_pending: set[str] = set()  # item ids the restore waits for
        self._interrupted: Turn | None = None  # the turn a drop interrupted, asked again
        self._awaiting_delta: dict[str, Turn] = {}  # response id -> turn, until a delta
        self._refused: str | None = None  # the last frame refused since a response was asked
        self._last_rx = 0.0  # when the last frame arrived
        self._now = 0.0  # the latest time an entry point was given

    # Public methods for reading the state -------------------------------------------

    @property
    def state(self) -> State:
        return self._life.state

    @property
    def generation(self) -> int:
        """The socket generation the core listens to (frames of others are ignored)."""
        return self._life.generation

    def status(self) -> ConnectionStatus:
        """The connection's state, attempt, restore count, last renewal and reason."""
        return self._life.status()

    def view(self) -> ConversationView:
        """The conversation mirror, read-only (it changes with every frame fed)."""
        return self._conversation

    def pending(self) -> int:
        """Turns not finished (queued or running)."""
        return self._turns.pending()

    def audio_dropped(self) -> int:
        """PCM bytes given to :meth:`append_audio` while not ready, never sent."""
        return self._audio.dropped_bytes()

    def accepted_settings(self) -> dict[str, Any]:
        """A copy of the settings the server accepted (what a restore sends)."""
        return self._settings.accepted()

    def pending_settings(self) -> list[dict[str, Any]]:
        """Copies of the updates not acknowledged yet, oldest first."""
        return self._settings.pending()

    def settings_loss(self) -> SettingsLost | None:
        """The settings the last restore lost (``None``: none)."""
        return self._settings.lost

    # Public methods for draining the outputs ------------------------------------------

    def has_output(self) -> bool:
        """Whether any take method below has something (checked after every frame)."""
        if not self._unseen:
            return False
        self._unseen = bool(
            self._outbox
            or self._commands
            or self._finished_turns
            or self._finished_requests
            or self._started
            or self._protocol_errors
            or self._settings.untold is not None
        )
        return self._unseen

    def events_to_send(self) -> list[Event]:
        """The client events to send, in order (cleared)."""
        events, self._outbox = self._outbox, []
        return events

    def commands_to_run(self) -> list[Command]:
        """The socket commands to run, in order (cleared)."""
        commands, self._commands = self._commands, []
        return commands

    def finished_turns(self) -> list[Turn]:
        """The turns finished (completed, cancelled or failed) since the last call."""
        turns, self._finished_turns = self._finished_turns, []
        return turns

    def finished_requests(self) -> list[Request]:
        """The requests acknowledged or failed since the last call."""
        requests, self._finished_requests = self._finished_requests, []
        return requests

    def server_started_turns(self) -> list[Turn]:
        """The responses the server started by itself since the last call, as turns."""
        turns, self._started = self._started, []
        return turns

    def protocol_errors(self) -> list[str]:
        """Why frames were refused (or given up on) since the last call."""
        errors = list(self._protocol_errors)
        self._protocol_errors.clear()
        return errors

    def settings_loss_to_tell(self) -> SettingsLost | None:
        """A loss of settings to tell the user of, once."""
        return self._settings.take_lost()

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has something to do (``None``: nothing timed)."""
        life, timing = self._life, self.timing
        times = life.deadlines(self._can_renew())
        update = self._settings.inflight
        if update is not None and life.state is State.READY:
            times.append(update.sent_at + timing.idle_timeout)
        turn = self._turns.current
        if turn is not None and turn.state is TurnState.ADDING:
            times.append((turn.sent_at or 0.0) + timing.idle_timeout)
        elif turn is not None and turn.state in (TurnState.REQUESTED, TurnState.ACTIVE):
            times.append(max(self._last_rx, turn.sent_at or 0.0) + timing.idle_timeout)
            if turn.cancel_sent_at is not None:
                times.append(turn.cancel_sent_at + timing.cancel_timeout)
        elif self._blocked_by_foreign_response():
            # A response not ours blocks the queue: it too must show signs of life.
            times.append(self._last_rx + timing.idle_timeout)
        for oob in self._turns.out_of_band():
            if oob.sent_at is not None:
                times.append(max(self._last_rx, oob.sent_at) + timing.idle_timeout)
            if oob.cancel_sent_at is not None:
                times.append(oob.cancel_sent_at + timing.cancel_timeout)
        return min(times) if times else None

    # Public methods for the connection --------------------------------------------------

    def start_fresh(self, settings: dict[str, Any]) -> None:
        """A fresh, empty conversation on the next connection, which asks for
        ``settings`` (the accepted settings are replaced once acknowledged)."""
        self._conversation = Conversation()
        self._life.reset()
        self._settings.begin(settings)

    def open(self, now: float) -> None:
        """The user asked to connect: open the first socket."""
        if self._life.state is not State.CLOSED:
            return
        self._life.start()
        self._open_socket(now)

    def close(self, reason: str = "the session was closed") -> None:
        """Close on purpose: every pending request fails, no reconnect."""
        self._life.closed(reason)
        self._unseen = True
        self._commands.append(Command.CLOSE)
        self._fail_everything(RealtimeConnectionError(reason))

    def assume_ready(self, ready: bool) -> None:
        """Take the connection as ready (or closed) without a socket: frames are fed by
        hand (tests of views)."""
        self._life.assume(State.READY if ready else State.CLOSED)

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
        life = self._life
        life.down(why)
        if life.state is not State.CLOSED:
            self._unseen = True
            self._commands.append(Command.CLOSE)
            life.supersede()  # frames of the old socket are ignored from now on
            self._interrupt_in_flight()
        if conversation is not None:
            self._conversation = conversation
        life.start()
        self._open_socket(now)

    def socket_opened(self, generation: int, now: float) -> None:
        """The socket of ``generation`` is open; ``session.created`` comes next."""
        if generation == self._life.generation:
            self._last_rx = now

    def socket_closed(self, generation: int, reason: str, now: float) -> None:
        """The socket of ``generation`` closed or failed to open."""
        drop = self._life.dropped(generation, reason)
        if drop is Drop.IGNORED:
            return
        self._unseen = True
        self._commands.append(Command.CLOSE)  # the dead socket's tasks go with it
        if drop is Drop.FIRST_FAILED:  # the first connect fails to its caller
            self._fail_everything(RealtimeConnectionError(reason))
        elif drop is Drop.EXPIRED_TOO_OFTEN:
            self._stop_reconnecting(self._life.expired_too_often())
        else:
            self._begin_reconnect(now, reason)

    def renew(self, now: float, reason: str = "renewal") -> None:
        """Move the conversation to a new connection now (between responses)."""
        if self._life.state is State.READY:
            self._unseen = True
            self._commands.append(Command.CLOSE)
            self._life.renewing()
            self._begin_reconnect(now, reason, immediately=True)

    def tick(self, now: float) -> None:
        """A timer fired: act on what is due at ``now``."""
        self._now = now
        timing = self.timing
        due = self._life.due(now)
        if Timer.RETRY in due:
            self._open_socket(now)
        if Timer.ATTEMPT in due:
            self._attempt_timed_out(now)
        update = (
            self._settings.expired(now, timing.idle_timeout)
            if self._life.state is State.READY
            else None
        )
        if update is not None:
            self._fail(
                update,
                RealtimeError(
                    f"no acknowledgement of session.update within {timing.idle_timeout:g} s"
                ),
            )
            self._next_update()
        self._tick_current(now)
        for oob in self._turns.out_of_band():
            if oob.cancel_sent_at is not None and now >= oob.cancel_sent_at + timing.cancel_timeout:
                self._fail_turn(
                    oob,
                    RealtimeError(
                        f"gave up on the answer: no response.done within "
                        f"{timing.cancel_timeout:g} s of response.cancel"
                    ),
                )
            elif (
                oob.sent_at is not None
                and now >= max(self._last_rx, oob.sent_at) + timing.idle_timeout
            ):
                self._fail_turn(oob, RealtimeError(f"gave up on the answer: {self._silence()}"))
        if Timer.RENEW in due and self._can_renew():
            self.renew(now)

    # Public methods for the user's requests ---------------------------------------------

    def submit(self, turn: Turn, now: float, first: bool = False) -> None:
        """Queue a turn (``first``: at the head); out-of-band turns run at once, beside
        the active one."""
        self._now = now
        if self._life.state is State.CLOSED:
            self._fail_turn(turn, self._not_connected())
            return
        turn.created_at = now
        if turn.params is not None:
            turn.params.setdefault("metadata", {})[REQUEST_TAG] = turn.tag
            self._turns.tag(turn)
        if turn.out_of_band:
            self._turns.add_out_of_band(turn)
            if self._life.state is State.READY:
                self._send_response_create(turn, now)
            return
        self._turns.add(turn, first)
        self._pump(now)

    def add_item(self, request: Request, now: float, first: bool = False) -> None:
        """Add one item: at once when idle, else as a turn of its own (it waits its turn;
        ``first``: at the head of the queue)."""
        self._now = now
        if self._life.state is State.CLOSED:
            self._fail(request, self._not_connected())
        elif (
            self._turns.current is not None
            or self._turns.has_waiting()
            or self._life.state is not State.READY
        ):
            turn = Turn([request], None)
            turn.created_at = now
            self._turns.add(turn, first)
            self._pump(now)
        else:
            self._send_request(request)

    def request(self, request: Request, now: float | None = None) -> None:
        """A delete, retrieve, truncate or session.update (``now``: default, the latest
        time given)."""
        if now is not None:
            self._now = now
        if self._life.state is State.CLOSED:
            self._fail(request, self._not_connected())
            return
        if request.kind == "update":
            self._settings.ask(request)
            self._next_update()
        elif self._life.state is State.READY:
            self._send_request(request)
        else:
            self._deferred.append(request)

    def cancel(self, turn: Turn, now: float) -> None:
        """Cancel a turn: a queued one never sends anything, a running one is cancelled."""
        self._now = now
        if turn.state is TurnState.DONE:
            return
        turn.cancel_requested = True
        if self._turns.remove(turn):
            self._finish_turn(turn, "cancelled")
        elif turn.state is TurnState.ADDING:
            self._turns.release(turn)
            self._finish_turn(turn, "cancelled")
            self._pump(now)
        elif turn.response_id is not None and turn.cancel_sent_at is None:
            self._send({"type": "response.cancel", "response_id": turn.response_id})
            turn.cancel_sent_at = now
        elif turn.state is TurnState.QUEUED and turn.out_of_band:
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
        if turn is self._turns.current:
            self._give_up(turn, now, "the server did not confirm the cancel in time")
        else:  # out of band: nothing in the conversation waits for it
            if turn.response_id is not None:
                self._abandon_response(turn.response_id)
            self._finish_turn(turn, "cancelled")

    def cancel_all(self, now: float) -> None:
        """Cancel every turn that asks for a response (plain item additions still go)."""
        current = self._turns.current
        for turn in [
            *self._turns.waiting(),
            *([current] if current else []),
            *self._turns.out_of_band(),
            *self._audio.server_turns(),
        ]:
            if turn.params is not None or turn.by_server:
                self.cancel(turn, now)

    def append_audio(self, events: list[Event], size: int) -> bool:
        """Queue ``input_audio_buffer.append`` events carrying ``size`` PCM bytes; while
        not ready they are dropped and counted. Returns whether they were queued."""
        if self._life.state is not State.READY:
            self._audio.not_sent(size)
            return False
        self._unseen = True
        self._outbox.extend(events)
        return True

    def clear_audio(self) -> None:
        """``input_audio_buffer.clear`` (not ready: the buffer went with the connection)."""
        if self._life.state is State.READY:
            self._send({"type": "input_audio_buffer.clear"})

    def commit_audio(self, request: Request, turn: Turn | None, now: float) -> None:
        """Commit the input audio buffer now; ``turn`` (whose only item is ``request``)
        then asks for the answer, queued like any turn."""
        self._now = now
        state = self._life.state
        if state is not State.READY:
            error = RealtimeConnectionError(
                f"cannot commit the input audio: the connection is {state.value} "
                "(the audio appended before a drop is lost with the connection)"
            )
            self._fail(request, error)
            if turn is not None:
                self._fail_turn(turn, error)
            return
        self._send_tracked(request)
        self._audio.commit_sent(request, turn)
        if turn is not None:
            self.submit(turn, now)

    # Public method for frames from the server -------------------------------------------

    def receive(
        self, raw: str | bytes, generation: int, now: float, *, binary: bool = False
    ) -> tuple[Event | None, list[Change]]:
        """Check and apply one frame; return the event (``None`` when rejected) and changes.

        ``binary``: it came as a binary websocket frame, which the protocol never sends.
        """
        if generation != self._life.generation:
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
            changes = self._conversation.apply(event)
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
        if kind.startswith("input_audio_buffer."):
            self._on_input_audio(event, now)
        return event, changes

    # Matching acknowledgements ---------------------------------------------------------

    def _refuse(self, why: str) -> None:
        """A frame the mirror cannot take: logged, and named if a turn is given up."""
        self._unseen = True
        self._protocol_errors.append(why)
        self._refused = why

    def _note_first_delta(self, changes: list[Change], now: float) -> None:
        for change in changes:
            if type(change) is ItemDelta and change.response_id in self._awaiting_delta:
                self._awaiting_delta.pop(change.response_id).first_delta_at = now

    def _on_item_added(self, change: ItemAdded, now: float) -> None:
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

    def _on_keyed(self, kind: str, item_id: str) -> None:
        """The acknowledgement of a delete, retrieve or truncate: the item id it names."""
        requests = self._items.get(item_id)
        if requests:
            for request in [r for r in requests if r.kind == kind]:
                requests.remove(request)
                self._resolve(request, item_id)

    def _on_item_deleted(self, change: ItemDeleted, now: float) -> None:
        self._on_keyed("delete", change.item_id)

    def _on_item_done(self, change: ItemDone, now: float) -> None:
        self._on_keyed("retrieve", change.item_id)

    def _on_item_updated(self, change: ItemUpdated, now: float) -> None:
        self._on_keyed("truncate", change.item_id)

    def _keep_images(self, item_id: str, request: Request) -> None:
        """The images the client sent, when the server's echo left their data out: the
        mirror shows them and a restore sends them again."""
        item = self._conversation.item(item_id)
        sent = request.event.get("item")
        if item is not None and not item.images and isinstance(sent, dict):
            item.images[:] = image_parts(sent.get("content"))

    def _after_item(self, now: float) -> None:
        turn = self._turns.current
        if turn is None or turn.state is not TurnState.ADDING:
            return
        if all(r.result is not None for r in turn.items):
            if turn.params is None:
                self._turns.release(turn)
                self._finish_turn(turn, "completed")
                self._pump(now)
            else:
                self._send_response_create(turn, now)

    def _on_session_changed(self, change: SessionChanged, now: float) -> None:
        restoring = self._settings.restoring is not None
        request = self._settings.acknowledged(change.session)
        if restoring:
            self._maybe_ready(now)
        elif request is not None:
            self._resolve(request, change.session)
            self._next_update()

    def _on_response_created(self, change: ResponseCreated, now: float) -> None:
        conversation = self._conversation
        response = conversation.responses[change.response_id]
        tag = (response.metadata or {}).get(REQUEST_TAG)
        turn = self._turns.tagged(tag) if tag else None
        current = self._turns.current
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
            if conversation.active_response_id == change.response_id:
                # Started by the server (VAD) or another client: watched, never matched.
                started = self._audio.server_started(change.response_id, now)
                if started is not None:
                    self._awaiting_delta[change.response_id] = started
                    self._unseen = True
                    self._started.append(started)
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
        response = self._conversation.responses.get(change.response_id)
        tag = ((response.metadata if response else None) or {}).get(REQUEST_TAG)
        owner = self._turns.tagged(tag) if isinstance(tag, str) else None
        if owner is not None and owner.response_id is None and owner.state is TurnState.REQUESTED:
            # Its response.created was lost or comes late; response.done carries the whole
            # response, so the answer is complete all the same.
            owner.response_id = change.response_id
        turn = self._turns.current
        if turn is not None and turn.response_id == change.response_id:
            self._turns.release(turn)
            self._finish_turn(turn, change.status)
        else:
            oob = self._turns.out_of_band_turn(tag) if isinstance(tag, str) else None
            if oob is not None and oob.response_id == change.response_id:
                self._finish_turn(oob, change.status)
            else:
                started = self._audio.server_done(change.response_id)
                if started is not None:
                    self._finish_turn(started, change.status)
        self._pump(now)

    def _on_error(self, change: ErrorReceived, now: float) -> None:
        self._unseen = True  # the settings part may have a loss to tell
        event_id = change.client_event_id
        target = self._by_event.pop(event_id, None) if event_id else None
        error = change.error
        if target is None:
            if error.get("code") == SESSION_EXPIRED:
                self._life.session_expired()  # the close that follows says why
            return  # not ours to fail; it stays in the error log
        if isinstance(target, Turn):
            self._on_turn_error(target, error, now)
            return
        if target.kind == "commit":
            refused = self._audio.refused(target)
            if refused is not None:
                self._fail_commit(target, refused[1], ServerError(error))
            self._pump(now)
            return
        if target is self._settings.restoring:
            # The settings it carried are lost: settings_loss_to_tell() tells the user which.
            self._settings.refused(target, str(error.get("message") or error.get("code")))
            self._maybe_ready(now)
            return
        if self._settings.refused(target, str(error.get("message") or "")):
            # Nothing accepted changes: the Session keeps the settings it had.
            self._fail(target, ServerError(error))
            self._next_update()
            return
        requests = self._items.get(target.key or "")
        if requests and target in requests:
            requests.remove(target)
        self._fail(target, ServerError(error))
        turn = self._turns.current
        if turn is not None and target in turn.items:
            self._turns.release(turn)
            self._fail_turn(turn, ServerError(error))
            self._pump(now)

    def _on_turn_error(self, turn: Turn, error: dict[str, Any], now: float) -> None:
        code = error.get("code")
        message = str(error.get("message") or "")
        current = turn is self._turns.current
        if current and (
            code == ACTIVE_RESPONSE
            or message.startswith("Conversation already has an active response")
        ):
            # Someone else's response is running: wait until it is done, then ask again.
            turn.state = TurnState.QUEUED
            self._turns.release(turn)
            self._turns.add(turn, first=True)
            self._pump(now)
            return
        if current:
            self._turns.release(turn)
        self._fail_turn(turn, ServerError(error))
        self._pump(now)

    def _on_input_audio(self, event: Event, now: float) -> None:
        kind = event["type"]
        item_id = event.get("item_id")
        if not isinstance(item_id, str):
            return
        if kind in ("input_audio_buffer.speech_stopped", "input_audio_buffer.timeout_triggered"):
            self._audio.server_commits(item_id)
        elif kind == "input_audio_buffer.committed":
            commit = self._audio.committed(item_id)
            if commit is None:
                return
            request, turn = commit
            request.key = item_id
            self._resolve(request, item_id)
            if turn is not None and turn is self._turns.current:
                self._after_item(now)

    def _fail_commit(self, request: Request, turn: Turn | None, error: RealtimeError) -> None:
        self._fail(request, error)
        if turn is None:
            return
        self._turns.remove(turn)
        self._turns.release(turn)
        if turn is self._interrupted:
            self._interrupted = None
        self._fail_turn(turn, error)

    # Sending -----------------------------------------------------------------------------

    def _pump(self, now: float) -> None:
        """Start the next queued turn when nothing occupies the conversation."""
        turns = self._turns
        while (
            self._life.state is State.READY
            and turns.current is None
            and turns.has_waiting()
            and self._conversation.active_response_id is None
        ):
            turn = turns.next()
            unsent = [r for r in turn.items if r.result is None]
            if unsent:
                turn.state = TurnState.ADDING
                turn.sent_at = now
                for request in unsent:
                    if request.kind != "commit":  # sent already; its committed is awaited
                        self._send_request(request)
                return
            if turn.params is None:
                turns.release(turn)
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
        self._unseen = True
        self._outbox.append(
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
        self._unseen = True
        self._outbox.append(event)

    def _next_update(self) -> None:
        if self._life.state is State.READY:
            request = self._settings.next_update()
            if request is not None:
                self._send_tracked(request)

    def _send(self, event: Event) -> None:
        event["event_id"] = new_id("event")
        self._unseen = True
        self._outbox.append(event)

    # Finishing ---------------------------------------------------------------------------

    def _not_connected(self) -> RealtimeConnectionError:
        return RealtimeConnectionError(f"not connected ({self._life.reason or 'closed'})")

    def _resolve(self, request: Request, result: Any) -> None:
        if request.result is None and request.error is None:
            request.result = result
            self._unseen = True
            self._finished_requests.append(request)

    def _fail(self, request: Request, error: RealtimeError) -> None:
        if request.result is None and request.error is None:
            request.error = error
            self._unseen = True
            self._finished_requests.append(request)

    def _finish_turn(self, turn: Turn, status: str) -> None:
        if turn.state is TurnState.DONE:
            return
        turn.state = TurnState.DONE
        turn.status = status
        if status == "completed" and (turn.params is not None or turn.by_server):
            self._life.answered()  # an answer fits in the server's sessions
        if status == "cancelled":
            for request in turn.items:  # never sent: their waiters must not hang
                self._fail(request, RealtimeError("cancelled before it was sent"))
        self._turns.finished(turn)
        if turn.response_id is not None:
            self._awaiting_delta.pop(turn.response_id, None)
        self._unseen = True
        self._finished_turns.append(turn)

    def _fail_turn(self, turn: Turn, error: RealtimeError) -> None:
        if turn.state is TurnState.DONE:
            return
        for request in turn.items:
            self._fail(request, error)
        turn.error = error
        self._finish_turn(turn, "failed")
        turn.status = None

    def _fail_everything(self, error: RealtimeConnectionError) -> None:
        self._drop_audio(str(error))
        self._generation_reset()
        turns = [*self._turns.take_waiting(), *self._turns.out_of_band()]
        current = self._turns.release()
        if current is not None:
            turns.append(current)
        for turn in turns:
            self._fail_turn(turn, error)
        requests = (
            [r for rs in self._items.values() for r in rs]
            + self._deferred
            + self._settings.fail_all()
        )
        self._items.clear()
        self._deferred = []
        for request in requests:
            self._fail(request, error)

    def _generation_reset(self) -> None:
        self._by_event.clear()
        self._restore_pending.clear()
        self._settings.dropped()
        self._interrupted = None
        self._life.stopped()
        active = self._conversation.active_response_id
        if active is not None:
            self._abandon_response(active)

    # The lifecycle: drops, reconnects, timers -----------------------------------------

    def _open_socket(self, now: float) -> None:
        self._life.opening(now)
        self._last_rx = now
        self._unseen = True
        self._commands.append(Command.OPEN)

    def _begin_reconnect(self, now: float, reason: str, *, immediately: bool = False) -> None:
        if not self._life.begin_reconnect(now, immediately=immediately):
            self._stop_reconnecting(
                f"gave up reconnecting after {self.timing.max_attempts} attempts ({reason})"
            )
            return
        self._interrupt_in_flight()
        if immediately:
            self._open_socket(now)

    def _stop_reconnecting(self, reason: str) -> None:
        """Give up for good: every pending request fails with ``reason``."""
        self._life.closed(reason)
        self._fail_everything(RealtimeConnectionError(reason))

    def _attempt_timed_out(self, now: float) -> None:
        """The connection attempt did not become ready in time: abandon it, try again
        (with backoff), and fail the turns waiting for it rather than keep them hanging."""
        why = self._life.attempt_timeout_reason()
        self._life.down(why)
        self._unseen = True
        self._commands.append(Command.CLOSE)
        self._begin_reconnect(now, why)
        if self._life.state is State.CLOSED:
            return  # gave up: everything failed already
        error = RealtimeConnectionError(
            f"{why}; the Session is reconnecting (attempt {self._life.attempt}), and this "
            "was not sent (try again)"
        )
        for turn in [*self._turns.take_waiting(), *self._turns.out_of_band()]:
            self._fail_turn(turn, error)
        deferred, self._deferred = self._deferred, []
        for request in deferred:
            self._fail(request, error)

    def _interrupt_in_flight(self) -> None:
        """The connection dropped: decide what becomes of everything in flight."""
        self._by_event.clear()
        self._restore_pending.clear()
        self._settings.dropped()  # an update in flight goes again once restored
        turn = self._turns.release()
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
                self._turns.add(turn, first=True)
        reason = self._life.reason
        for oob in self._turns.out_of_band():
            self._fail_turn(
                oob,
                RealtimeConnectionError(
                    f"the connection dropped during this out-of-band answer ({reason})"
                ),
            )
        # Requests in flight are sent again once the conversation is restored.
        for requests in self._items.values():
            for request in requests:
                if request.sent and request not in self._deferred and request not in own:
                    request.sent = False
                    self._deferred.append(request)
        self._items.clear()
        self._drop_audio(reason or "the connection dropped")

    def _drop_audio(self, reason: str) -> None:
        """The connection is gone: pending commits fail (their audio is lost with it), and
        so do the responses the server started on it."""
        commits, started = self._audio.dropped()
        for request, turn in commits:
            self._fail_commit(
                request,
                turn,
                RealtimeConnectionError(
                    f"the connection dropped before the input audio was committed ({reason})"
                ),
            )
        for turn in started:
            if turn.response_id is not None:
                self._abandon_response(turn.response_id)
            self._fail_turn(
                turn,
                RealtimeConnectionError(
                    f"the connection dropped during this answer the server started ({reason})"
                ),
            )

    def _second_drop(self) -> str:
        """Why an answer interrupted twice fails, naming the cause."""
        if self._life.last_drop_expired:
            return (
                "the server's session expired (session_expired) during this answer twice: "
                "its sessions are shorter than this answer; it was not requested again"
            )
        return (
            f"the connection dropped twice during this answer ({self._life.reason}); "
            "it was not requested again"
        )

    def _called_tool(self, response_id: str | None) -> bool:
        if response_id is None:
            return False
        return any(
            item.type == "function_call" and item.status == "completed"
            for item in self._conversation.response_items(response_id)
        )

    def _abandon_response(self, response_id: str) -> None:
        """Forget a response that will never finish here and its partial items."""
        conversation = self._conversation
        response = conversation.responses.get(response_id)
        if response is not None and not response.done:
            response.status = "incomplete"
        if conversation.active_response_id == response_id:
            conversation.active_response_id = None
        for item in list(conversation.response_items(response_id)):
            if item.status != "completed":
                conversation.forget(item.id)

    def _tick_current(self, now: float) -> None:
        """Give up on the in-conversation turn (or a foreign response) gone silent."""
        timing = self.timing
        turn = self._turns.current
        if (
            turn is not None
            and turn.state is TurnState.ADDING
            and now >= (turn.sent_at or 0.0) + timing.idle_timeout
        ):
            self._give_up(
                turn,
                now,
                f"the server did not acknowledge the items within {timing.idle_timeout:g} s",
            )
        elif turn is not None and turn.state in (TurnState.REQUESTED, TurnState.ACTIVE):
            if (
                turn.cancel_sent_at is not None
                and now >= turn.cancel_sent_at + timing.cancel_timeout
            ):
                self._give_up(
                    turn,
                    now,
                    f"no response.done within {timing.cancel_timeout:g} s of response.cancel",
                )
            elif now >= max(self._last_rx, turn.sent_at or 0.0) + timing.idle_timeout:
                self._give_up(turn, now, self._silence())
        elif self._blocked_by_foreign_response() and now >= self._last_rx + timing.idle_timeout:
            stuck = str(self._conversation.active_response_id)
            self._abandon_response(stuck)
            self._unseen = True
            self._protocol_errors.append(f"gave up on {stuck}: no event for it; reconnecting")
            self._unseen = True
            self._commands.append(Command.CLOSE)
            self._begin_reconnect(now, "a response that never finished", immediately=True)

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
            self._life.state is State.READY
            and self._turns.current is None
            and not self._turns.has_out_of_band()
            and self._conversation.active_response_id is None
        )

    def _blocked_by_foreign_response(self) -> bool:
        return (
            self._life.state is State.READY
            and self._turns.current is None
            and self._turns.has_waiting()
            and self._conversation.active_response_id is not None
        )

    def _give_up(self, turn: Turn, now: float, why: str) -> None:
        """A response that never finishes: fail it, then recycle the connection so the
        server's stuck response cannot block the next turn."""
        self._turns.release(turn)
        if turn.response_id is not None:
            self._abandon_response(turn.response_id)
        if turn.cancel_requested:
            self._finish_turn(turn, "cancelled")
        else:
            self._fail_turn(turn, RealtimeError(f"gave up on the answer: {why}"))
        if self._life.state is State.READY:
            self._unseen = True
            self._commands.append(Command.CLOSE)
            self._begin_reconnect(now, why, immediately=True)

    # The restore ----------------------------------------------------------------------

    def _on_session_created(self, event: Event, now: float) -> None:
        self._life.session_created(event["session"].get("expires_at"), now)
        self._settings.created(event["session"])
        self._restore(now)

    def _restore(self, now: float) -> None:
        """Send the settings, then the conversation's items in order."""
        # The accepted settings only: never a field the server refused.
        request = self._settings.restore_update()
        if request is not None:
            self._send_tracked(request)
        skip = self._interrupted.response_id if self._interrupted else None
        plan = restore_items(self._conversation.items, self.dialect, skip)
        for item in plan:
            self._restore_pending.add(item["id"])
            self._send({"type": "conversation.item.create", "item": item})
        self._life.restoring(len(plan))
        self._maybe_ready(now)

    def _maybe_ready(self, now: float) -> None:
        if self._settings.restoring is not None or self._restore_pending:
            return
        self._life.ready(now)
        self._interrupted = None
        self._next_update()  # settings first: the turns below answer with them
        deferred, self._deferred = self._deferred, []
        for request in deferred:
            if request.error is None and request.result is None:
                if request.kind == "item":
                    self.add_item(request, now)
                else:
                    self._send_request(request)
        for oob in self._turns.out_of_band():
            if oob.state is TurnState.QUEUED:
                self._send_response_create(oob, now)
        self._pump(now)


# Which core method each mirror change goes to (deltas go nowhere: the fast path).
_HANDLERS: dict[type, Callable[[ClientCore, Any, float], None]] = {
    ItemAdded: ClientCore._on_item_added,
    ItemDeleted: ClientCore._on_item_deleted,
    ItemDone: ClientCore._on_item_done,
    ItemUpdated: ClientCore._on_item_updated,
    SessionChanged: ClientCore._on_session_changed,
    ResponseCreated: ClientCore._on_response_created,
    ResponseDone: ClientCore._on_response_done,
    ErrorReceived: ClientCore._on_error,
}
