"""Sans-I/O input audio, a part of the client core: commits in flight, the server's own
commits (VAD), the responses the server starts, and the audio dropped while not ready.

:class:`AudioInput` keeps the bookkeeping; the core
(:class:`~rt_notebook.protocol.client.ClientCore`) decides with it:

* Appends are fire-and-forget: sent while the connection is ready, dropped (and counted,
  :meth:`AudioInput.dropped_bytes`) while it is not. The service's input buffer belongs to
  one connection: what was appended before a drop is gone with it, and audio appended
  during the reconnect would only be the tail of an utterance.
* A commit is sent at once (it takes exactly the audio appended so far) and acknowledged by
  ``input_audio_buffer.committed``, which carries no ``event_id``: commits are matched in
  order. Commits the server makes itself (server VAD: ``speech_stopped``, or
  ``timeout_triggered`` after a long silence, then ``committed``) are told apart by their
  item id, which the event before announced.
* A response in the conversation that no turn of ours requested (server VAD with
  ``create_response``, another client) becomes a :class:`~.turns.Turn` with ``by_server``
  set: it can be watched and cancelled, and it never takes a queued turn's place.
"""

from __future__ import annotations

from collections import deque

from .turns import Request, Turn, TurnState

__all__ = ["AudioInput", "Commit"]

VAD_ITEMS_KEPT = 64

# A commit sent and not acknowledged, with the turn that asks for its answer (if any).
Commit = tuple[Request, Turn | None]


class AudioInput:
    """Input audio bookkeeping (see the module docstring)."""

    def __init__(self) -> None:
        # Commits sent and not yet acknowledged, oldest first.
        self._commits: deque[Commit] = deque()
        # Item ids of the commits the server makes itself (speech_stopped named them).
        self._vad_items: dict[str, None] = {}
        # Responses the server started, by response id, until their response.done.
        self._server_turns: dict[str, Turn] = {}
        # PCM bytes given to append while the connection was not ready (not sent).
        self._dropped = 0

    # Reading -------------------------------------------------------------------------

    def dropped_bytes(self) -> int:
        return self._dropped

    def server_turns(self) -> list[Turn]:
        return list(self._server_turns.values())

    def has_server_turns(self) -> bool:
        return bool(self._server_turns)

    # Fed by the core -------------------------------------------------------------------

    def not_sent(self, size: int) -> None:
        """``size`` PCM bytes were dropped (the connection is not ready)."""
        self._dropped += size

    def commit_sent(self, request: Request, turn: Turn | None) -> None:
        self._commits.append((request, turn))

    def server_commits(self, item_id: str) -> None:
        """The server will commit ``item_id`` itself (speech ended, or a silence timeout)."""
        self._vad_items[item_id] = None
        if len(self._vad_items) > VAD_ITEMS_KEPT:  # a server that never commits them
            del self._vad_items[next(iter(self._vad_items))]

    def committed(self, item_id: str) -> Commit | None:
        """``input_audio_buffer.committed`` for ``item_id``: the commit of ours it
        acknowledges (``None``: the server's own commit, or none of ours waits)."""
        if item_id in self._vad_items:
            del self._vad_items[item_id]
            return None
        if not self._commits:
            return None
        return self._commits.popleft()

    def refused(self, request: Request) -> Commit | None:
        """The server refused the commit ``request``: it waits no more."""
        for entry in self._commits:
            if entry[0] is request:
                self._commits.remove(entry)
                return entry
        return None

    def server_started(self, response_id: str, now: float) -> Turn | None:
        """A response none of our turns requested started: its new turn (``None``:
        known already)."""
        if response_id in self._server_turns:
            return None
        turn = Turn([], None, by_server=True)
        turn.state = TurnState.ACTIVE
        turn.response_id = response_id
        turn.created_at = turn.sent_at = now
        self._server_turns[response_id] = turn
        return turn

    def server_done(self, response_id: str) -> Turn | None:
        """``response.done`` for a server-started response: its turn."""
        return self._server_turns.pop(response_id, None)

    def dropped(self) -> tuple[list[Commit], list[Turn]]:
        """The connection is gone: the commits waiting and the server's turns, to fail."""
        self._vad_items.clear()
        commits, self._commits = list(self._commits), deque()
        turns, self._server_turns = list(self._server_turns.values()), {}
        return commits, turns
