"""Sans-I/O input audio of the client core: appends, commits, and responses the server starts.

A mixin of :class:`~rt_notebook.protocol.client.ClientCore` (its state is set up by
:meth:`VoiceCore._voice_init`). Decisions, no I/O:

* Appends are fire-and-forget: queued for sending while the connection is ready, dropped
  (and counted in :attr:`VoiceCore.audio_dropped`) while it is not. The service's input
  buffer belongs to one connection: what was appended before a drop is gone with it, and
  audio appended during the reconnect would only be the tail of an utterance.
* A commit is sent at once (it takes exactly the audio appended so far) and acknowledged by
  ``input_audio_buffer.committed``, which carries no ``event_id``: commits are matched in
  order. Commits the server makes itself (server VAD: ``speech_stopped``, or
  ``timeout_triggered`` after a long silence, then ``committed``) are told apart by their
  item id, which the event before announced. The
  turn that asks for the answer to a commit waits in the queue like any other; its item is
  the committed one. A commit refused (``input_audio_buffer_commit_empty``) fails its turn.
* A response in the conversation that no turn of ours requested (server VAD with
  ``create_response``, another client) becomes a :class:`~.turns.Turn` with ``by_server``
  set, announced in :attr:`VoiceCore.server_started`: it can be watched and cancelled,
  and it never takes a queued turn's place.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from ..errors import RealtimeConnectionError, RealtimeError, ServerError
from .conversation import Conversation
from .events import Event
from .turns import Request, State, Turn, TurnState

__all__ = ["VoiceCore"]

VAD_ITEMS_KEPT = 64


class VoiceCore:
    """Input audio and server-started responses; see the module docstring."""

    state: State
    conversation: Conversation
    outbox: list[Event]
    _queue: deque[Turn]
    _current: Turn | None
    _interrupted: Turn | None
    _awaiting_delta: dict[str, Turn]
    _now: float

    if TYPE_CHECKING:  # provided by ClientCore and Lifecycle (its other bases)

        def submit(self, turn: Turn, now: float, first: bool = False) -> None: ...

        def _send(self, event: Event) -> None: ...

        def _send_tracked(self, request: Request) -> None: ...

        def _resolve(self, request: Request, result: Any) -> None: ...

        def _fail(self, request: Request, error: RealtimeError) -> None: ...

        def _fail_turn(self, turn: Turn, error: RealtimeError) -> None: ...

        def _finish_turn(self, turn: Turn, status: str) -> None: ...

        def _after_item(self, now: float) -> None: ...

        def _pump(self, now: float) -> None: ...

        def _abandon_response(self, response_id: str) -> None: ...

    def _voice_init(self) -> None:
        # Commits sent and not yet acknowledged, oldest first, with the turn answering each.
        self._commits: deque[tuple[Request, Turn | None]] = deque()
        # Item ids of the commits the server makes itself (speech_stopped named them).
        self._vad_items: dict[str, None] = {}
        # Responses the server started, by response id, until their response.done.
        self._server_turns: dict[str, Turn] = {}
        # Output: server-started turns the driver has not announced yet.
        self.server_started: list[Turn] = []
        # PCM bytes given to append_audio while the connection was not ready (not sent).
        self.audio_dropped = 0

    # Requests from the user ------------------------------------------------------------

    def append_audio(self, events: list[Event], size: int) -> bool:
        """Queue ``input_audio_buffer.append`` events carrying ``size`` PCM bytes; while
        not ready they are dropped and counted. Returns whether they were queued."""
        if self.state is not State.READY:
            self.audio_dropped += size
            return False
        self.outbox.extend(events)
        return True

    def clear_audio(self) -> None:
        """``input_audio_buffer.clear`` (not ready: the buffer went with the connection)."""
        if self.state is State.READY:
            self._send({"type": "input_audio_buffer.clear"})

    def commit_audio(self, request: Request, turn: Turn | None, now: float) -> None:
        """Commit the input audio buffer now; ``turn`` (whose only item is ``request``)
        then asks for the answer, queued like any turn."""
        self._now = now
        if self.state is not State.READY:
            error = RealtimeConnectionError(
                f"cannot commit the input audio: the connection is {self.state.value} "
                "(the audio appended before a drop is lost with the connection)"
            )
            self._fail(request, error)
            if turn is not None:
                self._fail_turn(turn, error)
            return
        self._send_tracked(request)
        self._commits.append((request, turn))
        if turn is not None:
            self.submit(turn, now)

    # Frames from the server ------------------------------------------------------------

    def _on_input_audio(self, event: Event, now: float) -> None:
        kind = event["type"]
        item_id = event.get("item_id")
        if not isinstance(item_id, str):
            return
        if kind in ("input_audio_buffer.speech_stopped", "input_audio_buffer.timeout_triggered"):
            # The server commits this item itself (speech ended, or the user stayed silent
            # for idle_timeout_ms).
            self._vad_items[item_id] = None
            if len(self._vad_items) > VAD_ITEMS_KEPT:  # a server that never commits them
                del self._vad_items[next(iter(self._vad_items))]
        elif kind == "input_audio_buffer.committed":
            if item_id in self._vad_items:
                del self._vad_items[item_id]
                return
            if not self._commits:
                return
            request, turn = self._commits.popleft()
            request.key = item_id
            self._resolve(request, item_id)
            if turn is not None and turn is self._current:
                self._after_item(now)

    def _on_commit_error(self, request: Request, error: dict[str, Any], now: float) -> None:
        for entry in self._commits:
            if entry[0] is request:
                self._commits.remove(entry)
                self._fail_commit(request, entry[1], ServerError(error))
                break
        self._pump(now)

    def _fail_commit(self, request: Request, turn: Turn | None, error: RealtimeError) -> None:
        self._fail(request, error)
        if turn is None:
            return
        if turn in self._queue:
            self._queue.remove(turn)
        if turn is self._current:
            self._current = None
        if turn is self._interrupted:
            self._interrupted = None
        self._fail_turn(turn, error)

    def _on_server_response(self, response_id: str, now: float) -> None:
        """A response in the conversation that none of our turns requested started."""
        if response_id in self._server_turns:
            return
        turn = Turn([], None, by_server=True)
        turn.state = TurnState.ACTIVE
        turn.response_id = response_id
        turn.created_at = turn.sent_at = now
        self._server_turns[response_id] = turn
        self._awaiting_delta[response_id] = turn
        self.server_started.append(turn)

    def _on_server_response_done(self, response_id: str, status: str) -> bool:
        turn = self._server_turns.pop(response_id, None)
        if turn is None:
            return False
        self._finish_turn(turn, status)
        return True

    def _drop_voice(self, reason: str) -> None:
        """The connection is gone: pending commits fail (their audio is lost with it), and
        so do the responses the server started on it."""
        self._vad_items.clear()
        commits, self._commits = list(self._commits), deque()
        for request, turn in commits:
            self._fail_commit(
                request,
                turn,
                RealtimeConnectionError(
                    f"the connection dropped before the input audio was committed ({reason})"
                ),
            )
        turns, self._server_turns = list(self._server_turns.values()), {}
        for turn in turns:
            if turn.response_id is not None:
                self._abandon_response(turn.response_id)
            self._fail_turn(
                turn,
                RealtimeConnectionError(
                    f"the connection dropped during this answer the server started ({reason})"
                ),
            )
