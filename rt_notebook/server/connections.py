""":mod:`asyncio` registry of a server's open connections: counts and network-drop faults.

Tests of reconnection need to break connections the way a network does: without a closing
handshake. :class:`ConnectionRegistry` keeps every open websocket of one server so that
:meth:`~ConnectionRegistry.abort_all` can abort their transports at once, and holds the
drop that :meth:`~ConnectionRegistry.schedule_drop` arms for the next streamed response
(the driver claims it when it sends ``response.created``).

The counters and the armed drop are read and written from any thread under one lock; the
set of connections is only touched on the server's event loop.
"""

from __future__ import annotations

import json
import threading

from websockets.asyncio.server import ServerConnection

__all__ = ["ConnectionRegistry"]


class ConnectionRegistry:
    """Open connections of one server, how many were accepted, and an armed drop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._opened = 0
        self._open: set[ServerConnection] = set()  # event loop only
        self._open_count = 0  # len(self._open), readable from any thread
        self._drop_after: int | None = None  # deltas before the next response's drop
        # Client event types read and left unanswered ("*": all); swapped whole, so the
        # event loop reads it without the lock.
        self._ignored: frozenset[str] = frozenset()

    # Counters (any thread)

    @property
    def opened(self) -> int:
        """WebSocket connections accepted since the server started."""
        with self._lock:
            return self._opened

    @property
    def open(self) -> int:
        """WebSocket connections open now."""
        with self._lock:
            return self._open_count

    # Connections (event loop)

    def add(self, connection: ServerConnection) -> None:
        self._open.add(connection)
        with self._lock:
            self._opened += 1
            self._open_count = len(self._open)

    def discard(self, connection: ServerConnection) -> None:
        self._open.discard(connection)
        with self._lock:
            self._open_count = len(self._open)

    def abort_all(self) -> int:
        """Abort every open connection's transport (no close frame); return how many."""
        connections = list(self._open)
        for connection in connections:
            self.abort(connection)
        return len(connections)

    def abort(self, connection: ServerConnection) -> None:
        """Abort one connection like a network failure; it counts as closed at once."""
        connection.transport.abort()
        self.discard(connection)

    # The armed drop (any thread)

    def schedule_drop(self, after_deltas: int) -> None:
        """The next response to start streaming is dropped after ``after_deltas`` deltas."""
        if after_deltas < 0:
            raise ValueError(f"after_deltas must be >= 0, not {after_deltas}")
        with self._lock:
            self._drop_after = after_deltas

    def ignore_client_events(self, types: frozenset[str]) -> None:
        """From now on, client events of these types ("*": every one) go unanswered."""
        self._ignored = types

    def ignores(self, message: str | bytes) -> bool:
        """Whether this client frame is to be dropped unread (see ignore_client_events)."""
        ignored = self._ignored
        if not ignored:
            return False
        if "*" in ignored:
            return True
        try:
            kind = json.loads(message).get("type")
        except (ValueError, AttributeError, RecursionError):
            return False
        return kind in ignored

    def claim_drop(self) -> int | None:
        """Take the armed drop, if any: the number of deltas to send before aborting."""
        with self._lock:
            after, self._drop_after = self._drop_after, None
            return after
