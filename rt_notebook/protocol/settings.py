"""Sans-I/O session settings, a part of the client core: what the server accepted, and the
one update on its way.

A ``session.update`` changes nothing here until the server acknowledges it: a requested
update is *pending* until its ``session.updated`` arrives (updates go one at a time, so the
acknowledgement is matched by order; a refusal names the update's ``event_id``). Only then
do its fields join the *accepted* settings, which are the Session's settings and what a new
connection restores. A refused update leaves the accepted settings as they were, so a
restore never carries a field the server refused. A ``session.updated`` that answers no
update of ours (the server changed something itself) updates the accepted fields it
changed.

All bodies are plain ``session`` objects in the connection's dialect; the core sends them
and routes the server's answers here (:class:`~rt_notebook.protocol.client.ClientCore`).
"""

from __future__ import annotations

import copy
import dataclasses
from collections import deque
from typing import Any

from .turns import Request

__all__ = ["SessionSettings", "SettingsLost", "merge_settings"]

# Settings replaced as a whole: a new turn detection mode (tool choice, truncation, audio
# format...) must not keep the old one's fields.
REPLACED = frozenset(
    {
        "turn_detection",
        "transcription",
        "input_audio_transcription",
        "noise_reduction",
        "input_audio_noise_reduction",
        "tool_choice",
        "truncation",
        "tracing",
        "prompt",
        "format",
    }
)
# Fields of a reported session that describe it rather than set it: never restored.
REPORTED_ONLY = frozenset({"id", "object", "expires_at", "client_secret", "model"})


@dataclasses.dataclass(frozen=True)
class SettingsLost:
    """A new connection refused the settings it was restoring: they are the server's
    defaults now. ``names`` are the fields lost; ``message`` is the server's."""

    names: tuple[str, ...]
    message: str

    def describe(self) -> str:
        return (
            f"the server refused the session settings sent on the new connection, so "
            f"{', '.join(self.names)} {'is' if len(self.names) == 1 else 'are'} back to the "
            f"server's defaults ({self.message})"
        )


class SessionSettings:
    """The accepted settings and the queue of updates (see the module docstring).

    Fed by the core: :meth:`ask`, :meth:`begin`, :meth:`acknowledged`, :meth:`refused`,
    :meth:`dropped`; drained with :meth:`next_update`, :meth:`restore_update`,
    :meth:`expired`, :meth:`take_lost` and :meth:`fail_all`.
    """

    def __init__(self) -> None:
        self._accepted: dict[str, Any] = {}
        self._reported: dict[str, Any] = {}  # the session the server last reported
        self._waiting: deque[Request] = deque()
        self._inflight: Request | None = None
        self._restoring: Request | None = None
        self._first: dict[str, Any] | None = None  # what the first connection asks for
        self.lost: SettingsLost | None = None
        # A loss the driver has not taken yet (an attribute: read on every frame).
        self.untold: SettingsLost | None = None

    # Reading -------------------------------------------------------------------------

    def accepted(self) -> dict[str, Any]:
        """A copy of the settings the server accepted (a restore sends these)."""
        return copy.deepcopy(self._accepted)

    def pending(self) -> list[dict[str, Any]]:
        """Copies of the updates not acknowledged yet, oldest first."""
        requests = [self._inflight, *self._waiting] if self._inflight else list(self._waiting)
        return [copy.deepcopy(r.event["session"]) for r in requests]

    @property
    def inflight(self) -> Request | None:
        """The update sent and not answered yet."""
        return self._inflight

    @property
    def restoring(self) -> Request | None:
        """The restore update sent on the new connection and not answered yet."""
        return self._restoring

    def take_lost(self) -> SettingsLost | None:
        """The loss of settings to tell the user of, once."""
        lost, self.untold = self.untold, None
        return lost

    # Fed by the core -------------------------------------------------------------------

    def ask(self, request: Request) -> None:
        """Queue a ``session.update`` request (sent after the one in flight)."""
        self._waiting.append(request)

    def begin(self, settings: dict[str, Any]) -> None:
        """A connection starts from nothing (connect): it asks for ``settings``, which
        replace the accepted ones once acknowledged."""
        self._first = copy.deepcopy(settings)

    def restore_update(self) -> Request | None:
        """The update a new connection sends first (``None``: nothing to restore)."""
        body = self._first if self._first is not None else self._accepted
        if not body:
            self._first = None
            return None
        self._restoring = Request(
            "update", {"type": "session.update", "session": copy.deepcopy(body)}
        )
        return self._restoring

    def next_update(self) -> Request | None:
        """The next update to send now, if none is in flight."""
        if self._inflight is None and self._waiting:
            self._inflight = self._waiting.popleft()
            return self._inflight
        return None

    def acknowledged(self, session: dict[str, Any]) -> Request | None:
        """A ``session.updated`` arrived: return the update of ours it acknowledges (the
        restore, else the one in flight), or take what the server changed by itself."""
        previous, self._reported = self._reported, session
        if self._restoring is not None:
            done, self._restoring = self._restoring, None
            self._accepted = copy.deepcopy(done.event["session"])
            self._first = None
            self.lost = None
            return done
        if self._inflight is not None:
            done, self._inflight = self._inflight, None
            merge_settings(self._accepted, done.event["session"])
            return done
        # Nobody asked: the server changed something itself. Keep what it changed.
        merge_settings(self._accepted, _changed(previous, session))
        return None

    def created(self, session: dict[str, Any]) -> None:
        """A new connection's ``session.created``: the server's defaults, not ours."""
        self._reported = session

    def refused(self, request: Request, message: str) -> bool:
        """An error names ``request``; ``True`` when it was one of ours (it changes
        nothing accepted; a refused restore loses the settings it carried)."""
        if request is self._restoring:
            self._restoring = None
            names = tuple(sorted(k for k in request.event["session"] if k != "type"))
            self.lost = self.untold = SettingsLost(names, message)
            self._accepted = {}
            self._first = None
            return True
        if request is self._inflight:
            self._inflight = None
            return True
        return False

    def expired(self, now: float, timeout: float) -> Request | None:
        """The update in flight, if unanswered for ``timeout`` s (it is given up)."""
        request = self._inflight
        if request is not None and now >= request.sent_at + timeout:
            self._inflight = None
            return request
        return None

    def dropped(self) -> None:
        """The connection dropped: the update in flight goes again after the restore."""
        self._restoring = None
        if self._inflight is not None:
            self._waiting.appendleft(self._inflight)
            self._inflight = None

    def fail_all(self) -> list[Request]:
        """Closed for good: every pending update, to fail (accepted settings are kept)."""
        requests = [self._inflight, *self._waiting] if self._inflight else list(self._waiting)
        self._inflight = None
        self._restoring = None
        self._waiting.clear()
        return requests


def merge_settings(into: dict[str, Any], changes: dict[str, Any]) -> None:
    """Merge a ``session.update`` body into settings (objects recursively, but the
    settings of :data:`REPLACED` as a whole)."""
    for key, value in changes.items():
        if key in REPLACED:
            into[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            merge_settings(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def _changed(old: dict[str, Any], new: dict[str, Any], top: bool = True) -> dict[str, Any]:
    """The fields of ``new`` that differ from ``old`` (a body :func:`merge_settings` takes)."""
    changes: dict[str, Any] = {}
    for key, value in new.items():
        if top and key in REPORTED_ONLY:
            continue
        before = old.get(key)
        if value == before:
            continue
        if isinstance(value, dict) and isinstance(before, dict) and key not in REPLACED:
            changes[key] = _changed(before, value, top=False)
        else:
            changes[key] = value
    return changes
