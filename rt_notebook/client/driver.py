"""I/O layer: the driver that runs a Session's :class:`~rt_notebook.protocol.client.ClientCore`.

Everything here runs on the I/O thread (:mod:`rt_notebook.client.io_thread`). The driver opens and
closes sockets when the core says so, feeds it every frame with the time, sends what it
queues (one writer task per socket keeps the order), fires its timers, and turns what it
finished into futures and results for other threads. It holds no decisions of its own.

The receive path stays short: a text frame, one ``orjson.loads`` (in the core's check),
dispatch on ``type``; deltas skip the event log and the output flush. The reader takes
every frame already buffered in one loop step without waiting; what is per step rather
than per frame is done once a step: the clock is read once (every frame of the step had
arrived before it began), and after the step's first frame (delivered at once) the
changes of deltas that need nothing else are held and delivered to subscribers together
when the step ends (see :meth:`Driver.on_frame`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, Protocol

from ..errors import RealtimeConnectionError, ServerError, scrub
from ..protocol.client import REQUEST_TAG, ClientCore, Command
from ..protocol.conversation import Change, Conversation, Item
from ..protocol.conversation_view import ConversationView
from ..protocol.events import Event
from ..protocol.lifecycle import ConnectionStatus
from ..protocol.timeline import EventLog, Timelines
from ..protocol.turns import Request, State, Timing, Turn, TurnState
from .io_thread import IOThread
from .recording import record_line
from .responses import HandleOwner, ItemSnapshot, ResponseHandle, ResponseResult
from .transport import BETA_REFUSED_CODE, FrameReader, beta_refused

if TYPE_CHECKING:
    from .transport import Transport

__all__ = ["Driver", "DriverOwner", "Subscriber", "snapshot"]

log = logging.getLogger("rt_notebook")

# Server events kept in the session's event log (deltas are left out: they are many),
# bounded in count and in bytes of their frames.
EVENT_LOG_SIZE = 1000
EVENT_LOG_BYTES = 2 * 1024 * 1024
# At most this many delta changes are held back within one reader step: a long burst still
# reaches the views every few milliseconds.
HOLD_LIMIT = 64

# Called with the Session (the driver's owner) and the changes of one or more events; the
# Session is typed by the views that subscribe (this module does not depend on it).
Subscriber = Callable[[Any, Sequence[Change]], None]


class DriverOwner(HandleOwner, Protocol):
    """What the driver needs of the Session it runs (the handles it makes belong to it):
    an interface, so that the driver does not depend on the Session's module."""

    @property
    def name(self) -> str: ...

    def on_io_thread(self) -> bool: ...


def snapshot(item: Item) -> ItemSnapshot:
    """An immutable copy of a mirror item for other threads."""
    fields = {**item.as_dict(), "images": tuple(item.images)}
    return ItemSnapshot(**fields, response_id=item.response_id)


class Driver:
    """The I/O half of one Session: sockets, timers, futures; the only owner of the core.

    The public operations below (submit a turn, send a request, take a snapshot, restore
    one...) may be called from any thread: each runs on the I/O thread, then sends what
    the core queued and acts on its outcomes. The rest runs on the I/O thread only.
    :attr:`lock` guards the mirror, the logs and the observer lists for readers on other
    threads (:meth:`reading` takes it and hands out the mirror, read-only).
    """

    def __init__(self, session: DriverOwner, transport: Transport, timing: Timing | None) -> None:
        self.session = session
        self.transport = transport
        self._core = ClientCore(transport.endpoint.dialect, timing)
        self._io = IOThread.get()
        self.lock = threading.RLock()
        self.events = EventLog(EVENT_LOG_SIZE, EVENT_LOG_BYTES)
        self.timelines = Timelines()  # every event, sent and received, by turn
        self.subscribers: list[Subscriber] = []
        self.listeners: list[Callable[[Event], None]] = []  # raw events (session.connection)
        self.handles: dict[str, Any] = {}  # turn tag -> ResponseHandle, until finished
        # Called with the handle of each response the server starts (session.on_server_response).
        self.server_response_callbacks: list[Callable[[ResponseHandle], None]] = []
        self._socket: Any = None  # the SDK's AsyncRealtimeConnection
        self._outbox: asyncio.Queue[str] | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # opening, reading, writing
        self._closers: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._ready: list[concurrent.futures.Future[None]] = []
        self._recorder: IO[bytes] | None = None
        self._record_raw = False  # keys left in the recorded frames (record(raw=True))
        self._fresh = True  # the next start() begins an empty conversation
        # The reader's step (see on_frame): its clock, and the delta changes held back
        # with the subscribers they go to.
        self._step_clock: tuple[float, float] | None = None
        self._held: list[Change] = []
        self._held_for: list[Subscriber] = self.subscribers

    # Public operations for the Session (any thread) -----------------------------------

    def submit(
        self, handle: ResponseHandle, first: bool = False
    ) -> concurrent.futures.Future[None]:
        """Queue ``handle``'s turn (``first``: at the head of the queue)."""
        return self._io.call(self._submit, handle, first)

    def send(self, request: Request, first: bool = False) -> concurrent.futures.Future[None]:
        """Send a request: an item (it waits its turn while a turn runs; ``first``: at the
        head of the queue), or a delete, retrieve, truncate or ``session.update``.
        ``request.owner`` (a future) resolves with the acknowledgement."""
        if request.kind == "item":
            return self._io.call(self._act, self._core.add_item, request, time.time(), first)
        return self._io.call(self._act, self._core.request, request, time.time())

    def restore(
        self, conversation: Conversation, why: str = "restored"
    ) -> concurrent.futures.Future[None]:
        """Carry ``conversation`` (one loaded from elsewhere: a snapshot) onto a new
        connection with the accepted settings, through the restore every reconnect uses;
        the conversation held now is replaced. A future that resolves once the server has
        it (or fails with :class:`RealtimeConnectionError`)."""
        return self._io.call(self._restore, conversation, why).result()

    def commit_audio(
        self, request: Request, handle: ResponseHandle | None
    ) -> concurrent.futures.Future[None]:
        """Commit the input audio now; ``handle`` (if any) then asks for the answer."""
        return self._io.call(self._commit_audio, request, handle)

    def append_audio(self, events: list[Event], size: int) -> concurrent.futures.Future[None]:
        """Send ``input_audio_buffer.append`` events (``size`` PCM bytes) in call order."""
        return self._io.call(self._append_audio, events, size)

    def clear_audio(self) -> concurrent.futures.Future[None]:
        return self._io.call(self._act, self._core.clear_audio)

    def cancel(self, turn: Turn) -> concurrent.futures.Future[None]:
        """Cancel a turn (see ``ClientCore.cancel``)."""
        return self._io.call(self._act, self._core.cancel, turn, time.time())

    def abandon(self, turn: Turn) -> concurrent.futures.Future[None]:
        """Finish a turn as cancelled now, confirmed or not (see ``ClientCore.abandon``)."""
        return self._io.call(self._act, self._core.abandon, turn, time.time())

    def cancel_all(self) -> concurrent.futures.Future[None]:
        return self._io.call(self._act, self._core.cancel_all, time.time())

    def renew(self) -> concurrent.futures.Future[None]:
        """Move the conversation to a new connection now."""
        return self._io.call(self._act, self._core.renew, time.time())

    def assume_ready(self, ready: bool) -> None:
        """Take the connection as ready (or closed) without a socket (frames fed by hand)."""
        with self.lock:
            self._core.assume_ready(ready)

    # Public methods for reading (any thread) ------------------------------------------

    @contextlib.contextmanager
    def reading(self) -> Iterator[ConversationView]:
        """``with driver.reading() as conversation:``: the mirror, read-only, under the
        lock (no frame is applied meanwhile; keep it short)."""
        with self.lock:
            yield self._core.view()

    def snapshot(self) -> list[ItemSnapshot]:
        """Immutable copies of the conversation's items, in order."""
        with self.lock:
            return [snapshot(item) for item in self._core.view().items]

    @property
    def state(self) -> State:
        return self._core.state

    def status(self) -> ConnectionStatus:
        return self._core.status()

    def pending(self) -> int:
        """Turns not finished (queued or running)."""
        with self.lock:
            return self._core.pending()

    def audio_dropped(self) -> int:
        return self._core.audio_dropped()

    def accepted_settings(self) -> dict[str, Any]:
        with self.lock:
            return self._core.accepted_settings()

    def pending_settings(self) -> list[dict[str, Any]]:
        with self.lock:
            return self._core.pending_settings()

    def settings_lost(self) -> str | None:
        with self.lock:
            lost = self._core.settings_loss()
        return None if lost is None else lost.describe()

    def tasks(self) -> set[asyncio.Task[None]]:
        """The driver's live tasks (opening, reading, writing, closing sockets)."""
        return self._io.call(lambda: {*self._tasks, *self._closers}).result()

    # The operations, on the I/O thread ------------------------------------------------

    def _act(self, method: Callable[..., None], *args: Any) -> None:
        """Call a core method with ``args``, then act on what it produced."""
        with self.lock:
            method(*args)
        self.flush()

    def _submit(self, handle: ResponseHandle, first: bool) -> None:
        turn = handle.turn
        self.handles[handle.request_id] = handle
        with self.lock:
            self.timelines.begin(turn, time.monotonic())
        self._act(self._core.submit, turn, time.time(), first)
        if turn.state is TurnState.QUEUED:
            with self.lock:
                self.timelines.queued(turn)

    def _commit_audio(self, request: Request, handle: ResponseHandle | None) -> None:
        turn: Turn | None = None
        if handle is not None:
            turn = handle.turn
            self.handles[handle.request_id] = handle
            with self.lock:
                self.timelines.begin(turn, time.monotonic())
        self._act(self._core.commit_audio, request, turn, time.time())

    def _append_audio(self, events: list[Event], size: int) -> None:
        with self.lock:
            queued = self._core.append_audio(events, size)
        if queued:
            self.flush()

    # Connecting ----------------------------------------------------------------------

    def start(self, config: dict[str, Any]) -> concurrent.futures.Future[None]:
        """A future that resolves once the Session is ready (opens the first socket, with
        ``config`` as its settings, if closed). Runs on the I/O thread, so concurrent
        connect() calls share one socket."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        if self._core.state is State.READY:
            future.set_result(None)
            return future
        if self._core.state is State.CLOSED:
            with self.lock:
                if self._fresh:  # connect() after close(): a fresh conversation
                    self._core.start_fresh(config)
                    self.events.clear()
                # After reconnecting gave up, the next connect restores the conversation
                # and the settings as they were.
                self._fresh = False
            self._core.open(time.time())
        self._ready.append(future)
        self.flush()
        return future

    def give_up_waiting(self, future: concurrent.futures.Future[None], why: str) -> None:
        """A connect() timed out: without other waiters, a first connect is abandoned
        (no socket, no task left); a reconnect goes on (each of its attempts has its own
        deadline, ``Timing.restore_timeout``, and the attempts are bounded)."""
        if future in self._ready:
            self._ready.remove(future)
        if not self._ready and self._core.state is State.CONNECTING:
            self._core.close(why)
            self.flush()

    def move(self, transport: Transport) -> concurrent.futures.Future[None]:
        """Carry the conversation to ``transport``'s endpoint (the restore reconnects use);
        a future that resolves once it is restored there."""
        self.transport = transport
        return self._restore(None, f"moved to {transport.endpoint.describe()}")

    def _restore(
        self, conversation: Conversation | None, why: str
    ) -> concurrent.futures.Future[None]:
        self._fresh = False  # the conversation goes along, even after close()
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._ready.append(future)
        with self.lock:
            self._core.restore_snapshot(time.time(), conversation, why)
        self.flush()
        return future

    def close(self, reason: str = "the session was closed") -> None:
        self._fresh = True
        self._core.close(reason)
        self.flush()
        self.set_recorder(None)

    async def _open(self, generation: int) -> None:
        endpoint = self.transport.endpoint
        try:
            connection = await self.transport.connection_manager().enter()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = f"could not connect to {endpoint.describe()}: {exc}"
            self._core.socket_closed(generation, scrub(reason), time.time())
            self.flush()
            return
        if generation != self._core.generation:  # closed or superseded while opening
            with contextlib.suppress(Exception):
                await connection.close()
            return
        self._socket = connection
        outbox: asyncio.Queue[str] = asyncio.Queue()
        self._outbox = outbox
        self._core.socket_opened(generation, time.time())
        self._spawn(self._read(connection, generation))
        self._spawn(self._write(connection, outbox))
        self.flush()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _drop_socket(self) -> None:
        """Close the current socket and stop its tasks (the core moved on already)."""
        connection, self._socket = self._socket, None
        self._outbox = None
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        if connection is not None:
            # Not in _tasks: a later drop must not cancel this close half-way.
            closer = asyncio.get_running_loop().create_task(_close_quietly(connection))
            self._closers.add(closer)
            closer.add_done_callback(self._closers.discard)

    # Receiving -----------------------------------------------------------------------

    async def _read(self, connection: Any, generation: int) -> None:
        frames = FrameReader(connection)
        recv, take_buffered, binary_frames = frames.recv, frames.take_buffered, frames.binary_frames
        try:
            while True:
                # No wait while frames are buffered: a burst is one loop step.
                frame = await recv()
                binary = binary_frames and type(frame) is bytes
                self.on_frame(frame, generation, binary=binary, batched=True)
                while (text := take_buffered()) is not None:  # the rest of a burst
                    self.on_frame(text, generation, batched=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # websockets.ConnectionClosed and friends
            self._core.socket_closed(generation, self._describe_close(exc), time.time())
            self.flush()

    def on_frame(
        self,
        raw: str | bytes,
        generation: int | None = None,
        *,
        binary: bool = False,
        batched: bool = False,
    ) -> None:
        """Feed one frame to the core, then views; the hot path.

        ``batched`` (the reader, on the I/O loop): the frame is one of a loop step's. The
        first frame of a step reads the clock, schedules :meth:`_end_step` (it runs as
        soon as the reader waits, before any later frame) and goes out at once, as a lone
        frame does; a later delta of the step needing nothing else holds its changes for
        one delivery. Anything else delivers what is held first, so subscribers see every
        change once, in order, before any future resolves.
        """
        core = self._core
        clock = self._step_clock if batched else None
        if clock is None:
            clock = self._read_clock(batched)
            batched = False  # the step's first frame: delivered at once (no added latency)
        wall, now = clock
        with self.lock:
            event, changes = core.receive(
                raw,
                core.generation if generation is None else generation,
                wall,
                binary=binary,
            )
            if event is None:
                tag, delta = None, False
            else:
                size = len(raw)
                tag = self.timelines.received(event, size, now)
                delta = event["type"].endswith(".delta")
                if not delta:
                    self.events.append(event, size)
            if self._recorder is not None or self.listeners:
                self._observe(raw, event, tag, now)
            subscribers = self.subscribers  # as of this change (see ResponseHandle._watch)
        if delta and batched:  # a delta queues, starts and ends nothing: no output to act on
            if changes:
                if subscribers is not self._held_for or len(self._held) >= HOLD_LIMIT:
                    self._release()
                    self._held_for = subscribers
                self._held += changes
            return
        if event is None or self._ready or core.has_output():
            self.flush()  # delivers what is held first
        elif not delta:
            self._release()
            self._schedule()
        if changes:
            self._notify(subscribers, changes)

    def _read_clock(self, batched: bool) -> tuple[float, float]:
        """Wall and monotonic time now; for a reader step, kept until the step ends."""
        clock = time.time(), time.monotonic()
        if batched:
            self._step_clock = clock
            asyncio.get_running_loop().call_soon(self._end_step)
        return clock

    def _observe(self, raw: str | bytes, event: Event | None, tag: str | None, now: float) -> None:
        """Record a received frame, show its event to the raw listeners (under the lock)."""
        if self._recorder is not None:
            self._record("received", raw, tag, now)
        if event is not None:
            for listener in self.listeners:
                listener(event)

    def _end_step(self) -> None:
        """The reader's step is over (it waits for data): deliver what it held."""
        self._step_clock = None
        if self._core.has_output():  # a batched delta skipped the check (see on_frame)
            self.flush()
        else:
            self._release()

    def _release(self) -> None:
        """Deliver the delta changes held back (see :meth:`on_frame`)."""
        if self._held:
            changes, self._held = self._held, []
            self._notify(self._held_for, changes)

    def _notify(self, subscribers: list[Subscriber], changes: list[Change]) -> None:
        for subscriber in subscribers:
            try:
                subscriber(self.session, changes)
            except Exception:  # a broken view must not break the connection
                log.exception("rt_notebook subscriber %r failed", subscriber)

    def _describe_close(self, exc: Exception) -> str:
        rcvd = getattr(exc, "rcvd", None)
        errors = self._core.view().errors
        if errors and not errors[-1].get("event_id"):
            if errors[-1].get("code") == BETA_REFUSED_CODE:
                return beta_refused()  # says what to do, not which header to remove
            # The service sends an error just before closing (bad key, session_expired).
            return str(ServerError(errors[-1]))
        if rcvd is not None and BETA_REFUSED_CODE in str(rcvd.reason):
            return beta_refused()
        if rcvd is not None:
            return f"the server closed the connection ({rcvd.code} {rcvd.reason})".strip()
        return scrub(f"the connection failed: {exc}")

    # Acting on the core's outputs ----------------------------------------------------

    def flush(self) -> None:
        """Send what the core queued, act on its commands, resolve what it finished."""
        self._release()  # views see every delta before a future resolves
        core = self._core
        for command in core.commands_to_run():
            self._drop_socket()
            if command is Command.OPEN:
                self._spawn(self._open(core.generation))
        events = core.events_to_send()
        if events:
            self._send_events(events)
        started = core.server_started_turns()
        if started:
            self._announce_server_responses(started)
        lost = core.settings_loss_to_tell()
        if lost is not None:
            self._tell_settings_lost(lost.describe())
        for why in core.protocol_errors():
            log.warning("rt_notebook: protocol error from the server: %s", why)
            with self.lock:
                self.events.append({"type": "rt_notebook.protocol_error", "reason": why})
        for request in core.finished_requests():
            self._finish_request(request)
        for turn in core.finished_turns():
            self._finish_turn(turn)
        self._tell_waiters()
        self._schedule()

    def _send_events(self, events: list[Event]) -> None:
        now = time.monotonic()
        with self.lock:
            for event in events:
                text = json.dumps(event)  # once: for the socket, the timeline, the record
                tag = self.timelines.sent(event, len(text), now)
                if self._recorder is not None:
                    self._record("sent", text, tag, now)
                if self._outbox is not None:
                    self._outbox.put_nowait(text)

    def _tell_waiters(self) -> None:
        """Resolve the futures waiting for the connection once it is ready or closed."""
        state = self._core.state
        if state is not State.READY and state is not State.CLOSED:
            return
        waiting, self._ready = self._ready, []
        for future in waiting:
            if future.done():
                continue
            if state is State.READY:
                future.set_result(None)
            else:
                reason = self._core.status().reason
                future.set_exception(RealtimeConnectionError(reason or "closed"))

    def _announce_server_responses(self, started: list[Turn]) -> None:
        """A handle for each response the server started, before any of its deltas."""
        callbacks = self.server_response_callbacks
        for turn in started:
            handle = ResponseHandle(self.session, turn)
            self.handles[turn.tag] = handle  # finished below if it already is
            for callback in callbacks:
                try:
                    callback(handle)
                except Exception:  # a broken view must not break the connection
                    log.exception("rt_notebook server-response callback %r failed", callback)

    def _tell_settings_lost(self, why: str) -> None:
        """A restore lost settings: a warning where the user looks (the cell running now,
        or the kernel's log), then an event for ``%realtime events``; status shows it too."""
        name = self.session.name
        try:
            # One line, as "rt_notebook:1: UserWarning: Session ...": no source line of ours.
            warnings.warn_explicit(
                f"Session {name!r}: {why}", UserWarning, "rt_notebook", 1, module="rt_notebook"
            )
        except Exception:  # warnings made errors: the I/O thread must go on
            log.warning("rt_notebook: Session %r: %s", name, why)
        with self.lock:
            self.events.append({"type": "rt_notebook.settings_lost", "reason": why})

    async def _write(self, connection: Any, outbox: asyncio.Queue[str]) -> None:
        # Our events are plain JSON already: send_raw skips the SDK's per-event transform.
        send_raw = getattr(connection, "send_raw", None)
        while True:
            text = await outbox.get()
            try:
                if send_raw is not None:
                    await send_raw(text)
                else:
                    await connection.send(json.loads(text))
            except Exception as exc:  # the reader sees the close and reconnects
                log.debug("rt_notebook: send failed: %s", scrub(str(exc)))

    def _schedule(self) -> None:
        if not self.session.on_io_thread():
            return  # events fed by hand (tests): no timers
        deadline = self._core.next_deadline()
        if self._timer is not None:
            if deadline is not None and self._timer.when() <= _loop_time(deadline):
                return  # the timer fires first and reschedules
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            self._timer = asyncio.get_running_loop().call_at(_loop_time(deadline), self._tick)

    def _tick(self) -> None:
        self._timer = None
        with self.lock:
            self._core.tick(time.time())
        self.flush()

    # Finishing -------------------------------------------------------------------------

    def _finish_request(self, request: Request) -> None:
        future = request.owner
        if future is None or future.done():
            return
        if request.error is not None:
            future.set_exception(request.error)
        else:
            future.set_result(request.result)

    def _finish_turn(self, turn: Turn) -> None:
        with self.lock:
            self.timelines.end(turn)
        handle = self.handles.pop(turn.tag, None)
        if handle is not None:
            self._finish_handle(handle, turn)

    def _finish_handle(self, handle: ResponseHandle, turn: Turn) -> None:
        if handle.done():
            return
        if turn.error is not None:
            handle.settle(turn.error)
            return
        handle.settle(self.result(turn))

    def result(self, turn: Turn) -> ResponseResult:
        """The frozen result of a finished turn, read from the mirror."""
        with self.lock:
            conversation = self._core.view()
            response = conversation.responses.get(turn.response_id or "")
            metadata = dict((response.metadata if response else None) or {})
            metadata.pop(REQUEST_TAG, None)
            items = (
                ()
                if response is None
                else tuple(snapshot(item) for item in conversation.response_items(response.id))
            )
            voiced = (
                []
                if response is None
                else [i for i in conversation.response_items(response.id) if i.type == "message"]
            )
            now = time.time()
            return ResponseResult(
                id=turn.response_id,
                status=turn.status or "failed",
                status_details=(
                    dict(response.status_details or {}) or None
                    if response is not None
                    else {"type": "cancelled", "reason": "client_cancelled_before_sending"}
                ),
                usage=dict(response.usage) if response and response.usage else None,
                text=conversation.response_text(response.id) if response else "",
                items=items,
                metadata=metadata or None,
                model=str(conversation.session.get("model") or self.transport.endpoint.model),
                out_of_band=turn.out_of_band,
                time_to_first_delta=(
                    None if turn.first_delta_at is None else turn.first_delta_at - turn.created_at
                ),
                elapsed=now - turn.created_at,
                audio=b"".join(item.audio for item in voiced),
                audio_dropped=sum(item.audio_dropped for item in voiced),
            )

    # Recording -----------------------------------------------------------------------

    def set_recorder(self, stream: IO[bytes] | None, raw: bool = False) -> None:
        if self._recorder is not None:
            self._recorder.close()
        self._recorder = stream
        self._record_raw = raw

    def _record(self, direction: str, frame: str | bytes, turn: str | None, now: float) -> None:
        """One valid JSON line (see :mod:`rt_notebook.client.recording`); keys scrubbed
        unless raw."""
        assert self._recorder is not None
        self._recorder.write(record_line(direction, frame, turn, now, raw=self._record_raw))


def _loop_time(wall: float) -> float:
    """A ``time.time()`` deadline on the running loop's clock."""
    loop = asyncio.get_running_loop()
    return loop.time() + max(0.0, wall - time.time())


async def _close_quietly(connection: Any) -> None:
    with contextlib.suppress(Exception):
        await connection.close()
