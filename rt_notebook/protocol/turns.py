"""Sans-I/O records of the client core: connection states, timings, turns and requests.

A :class:`Turn` is the items it adds plus (unless ``params`` is ``None``) its response
request; a :class:`Request` is one client event waiting for its acknowledgement. The core
(:mod:`.client`) moves them through their states; the Session hangs its futures on
``owner``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from ..errors import RealtimeError
from .events import Event, new_id

__all__ = ["Request", "State", "Timing", "Turn", "TurnState"]


class State(enum.Enum):
    """Where the connection stands."""

    CONNECTING = "connecting"  # first connection: socket opening, restore of settings
    READY = "ready"
    RECONNECTING = "reconnecting"  # a drop or a renewal: new socket, restore in progress
    CLOSED = "closed"


class TurnState(enum.Enum):
    QUEUED = "queued"  # nothing sent (or the retry waits for the conversation to be free)
    ADDING = "adding"  # its items are sent, their acknowledgements awaited
    REQUESTED = "requested"  # response.create sent, no response.created yet
    ACTIVE = "active"  # response.created matched
    DONE = "done"


@dataclass
class Timing:
    """Timeouts and backoff in seconds; tests scale them with one time unit."""

    cancel_timeout: float = 10.0  # response.cancel sent, no response.done: give up
    idle_timeout: float = 120.0  # no frame at all while a response is awaited: give up
    backoff_initial: float = 0.5
    backoff_max: float = 15.0
    max_attempts: int = 8  # reconnect attempts before the Session gives up
    # A connection attempt (socket, session.created, the restore acknowledged) not done
    # within this long is abandoned: the socket is closed and another attempt made.
    restore_timeout: float = 30.0
    # session_expired this many times in a row with no answer completed: give up.
    max_expiries: int = 3
    renew_margin: float = 120.0  # renew this long before the server's expires_at
    max_age: float | None = None  # renew after this long even without expires_at
    renew_before_expiry: bool = True  # False: only max_age renews (the server's end drops)


@dataclass(eq=False)
class Request:
    """One client event that waits for its acknowledgement (item, update, delete…)."""

    kind: str  # "item", "update", "delete", "retrieve", "truncate", "commit"
    event: Event
    key: str | None = None  # the item id an acknowledgement names (a commit: once known)
    owner: Any = None  # the driver's future
    result: Any = None
    error: RealtimeError | None = None
    sent: bool = False
    sent_at: float = 0.0  # the core's clock when it was last sent


@dataclass(eq=False)
class Turn:
    """Items to add, then (unless ``params`` is ``None``) a response to request."""

    items: list[Request]
    params: dict[str, Any] | None
    out_of_band: bool = False
    by_server: bool = False  # a response the server started (VAD): watched, never requested
    tag: str = field(default_factory=lambda: new_id("req", 12))
    owner: Any = None  # the driver's handle
    state: TurnState = TurnState.QUEUED
    event_id: str | None = None  # of the last response.create sent
    response_id: str | None = None
    cancel_requested: bool = False
    cancel_sent_at: float | None = None
    sent_at: float | None = None
    created_at: float = 0.0  # when it was submitted (the core's clock)
    first_delta_at: float | None = None
    restarts: int = 0
    tool_ran: bool = False
    status: str | None = None  # final: "completed", "cancelled", … or None when failed
    error: RealtimeError | None = None
