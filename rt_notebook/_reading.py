"""Read side of a Session: thread-safe snapshots of the conversation mirror and logs.

A mixin of :class:`~rt_notebook.session.Session`: every reader takes the driver's lock and
returns copies, so other threads never see the mirror half-updated, and anything that came
from the server passes :func:`~rt_notebook.errors.scrub` (no key in a log or a repr).
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

from ._driver import snapshot
from .errors import scrub
from .protocol.events import Event
from .responses import ItemSnapshot

if TYPE_CHECKING:
    from ._driver import Driver

__all__ = ["ConversationReader"]


class ConversationReader:
    """The Session's read-only properties (see :class:`~rt_notebook.session.Session`)."""

    _driver: Driver

    @property
    def items(self) -> list[ItemSnapshot]:
        """The conversation's items in server order."""
        with self._driver.lock:
            return [snapshot(item) for item in self._driver.core.conversation.items]

    def item(self, item_id: str) -> ItemSnapshot | None:
        """One item (in the conversation or out of band), or ``None``."""
        with self._driver.lock:
            item = self._driver.core.conversation.item(item_id)
            return None if item is None else snapshot(item)

    def item_index(self, item_id: str) -> int | None:
        """An item's position in the conversation, or ``None``."""
        with self._driver.lock:
            return self._driver.core.conversation.index_of(item_id)

    def response_text(self, response_id: str) -> str:
        """The text (or transcript) of a response so far."""
        with self._driver.lock:
            return self._driver.core.conversation.response_text(response_id)

    def response_items(self, response_id: str) -> list[ItemSnapshot]:
        """The output items of a response so far."""
        with self._driver.lock:
            conversation = self._driver.core.conversation
            return [snapshot(item) for item in conversation.response_items(response_id)]

    def item_audio_bytes(self, item_id: str) -> int:
        """Bytes of output audio (PCM16 24 kHz mono) the mirror keeps for an item."""
        with self._driver.lock:
            item = self._driver.core.conversation.item(item_id)
            return 0 if item is None else sum(len(chunk) for chunk in item.audio_chunks)

    def response_info(self, response_id: str) -> dict[str, Any] | None:
        """Status, usage and metadata of a response, or ``None`` if unknown."""
        with self._driver.lock:
            response = self._driver.core.conversation.responses.get(response_id)
            return None if response is None else copy.deepcopy(response.as_dict())

    @property
    def active_response_id(self) -> str | None:
        """The in-conversation response now running, if any."""
        with self._driver.lock:
            return self._driver.core.conversation.active_response_id

    @property
    def pending_responses(self) -> int:
        """Requested responses not yet finished (queued or running)."""
        with self._driver.lock:
            return self._driver.core.pending

    @property
    def events(self) -> list[Event]:
        """Recent server events (deltas left out) and protocol errors, oldest first."""
        with self._driver.lock:
            events = list(self._driver.events)
        return list(_scrubbed(events))

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Every server error received, oldest first."""
        with self._driver.lock:
            errors = list(self._driver.core.conversation.errors)
        return list(_scrubbed(errors))

    @property
    def session_config(self) -> dict[str, Any]:
        """The session configuration the server last reported."""
        with self._driver.lock:
            config = self._driver.core.conversation.session
        return dict(_scrubbed(config))


def _scrubbed(data: Any) -> Any:
    """A deep copy of JSON data with every registered secret replaced."""
    try:
        return json.loads(scrub(json.dumps(data)))
    except (TypeError, ValueError):  # not JSON (never from the wire): copy as is
        return copy.deepcopy(data)
