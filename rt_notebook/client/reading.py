"""Client layer, a Session's read side: thread-safe snapshots of the conversation mirror and
logs, and the observers (subscribers, raw-event listeners, ``connection()``, recording).

One of the parts a :class:`~rt_notebook.client.session.Session` is composed of: every reader takes
the driver's lock and returns copies, so other threads never see the mirror half-updated,
and anything that came from the server passes :func:`~rt_notebook.errors.scrub` (no key in
a log or a repr).
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import scrub
from ..protocol.events import Event
from .driver import Subscriber, snapshot
from .responses import ItemSnapshot, ResponseHandle

if TYPE_CHECKING:
    from ..protocol.timeline import Timeline
    from .driver import Driver
    from .io_thread import IOThread

__all__ = ["ConversationReader"]


class ConversationReader:
    """Reads one driver's mirror and logs, and registers observers with it (the
    Session's read side; see :class:`~rt_notebook.client.session.Session`)."""

    def __init__(self, driver: Driver, io: IOThread) -> None:
        self._driver = driver
        self._io = io

    @property
    def items(self) -> list[ItemSnapshot]:
        """The conversation's items in server order."""
        return self._driver.snapshot()

    def item_ids(self) -> tuple[str, ...]:
        """The ids of the conversation's items in server order (cheap: no item copied)."""
        with self._driver.reading() as conversation:
            return conversation.item_ids()

    def outputs_answering(self, item_ids: Iterable[str]) -> tuple[str, ...]:
        """The ids of the ``function_call_output`` items (in conversation order) that answer
        the function calls among ``item_ids`` (no item copied)."""
        with self._driver.reading() as conversation:
            calls = set()
            for item_id in item_ids:
                item = conversation.item(item_id)
                if item is not None and item.type == "function_call" and item.call_id:
                    calls.add(item.call_id)
            if not calls:
                return ()
            return tuple(
                item.id
                for item in conversation.items
                if item.type == "function_call_output" and item.call_id in calls
            )

    @property
    def item_count(self) -> int:
        """How many items the conversation holds."""
        with self._driver.reading() as conversation:
            return conversation.item_count

    def item(self, item_id: str) -> ItemSnapshot | None:
        """One item (in the conversation or out of band), or ``None``."""
        with self._driver.reading() as conversation:
            item = conversation.item(item_id)
            return None if item is None else snapshot(item)

    def item_index(self, item_id: str) -> int | None:
        """An item's position in the conversation, or ``None``."""
        with self._driver.reading() as conversation:
            return conversation.index_of(item_id)

    def response_text(self, response_id: str) -> str:
        """The text (or transcript) of a response so far."""
        with self._driver.reading() as conversation:
            return conversation.response_text(response_id)

    def response_items(self, response_id: str) -> list[ItemSnapshot]:
        """The output items of a response so far."""
        with self._driver.reading() as conversation:
            return [snapshot(item) for item in conversation.response_items(response_id)]

    def item_audio_bytes(self, item_id: str) -> int:
        """Bytes of output audio (PCM16 24 kHz mono) the mirror keeps for an item."""
        with self._driver.reading() as conversation:
            item = conversation.item(item_id)
            return 0 if item is None else sum(len(chunk) for chunk in item.audio_chunks)

    def response_info(self, response_id: str) -> dict[str, Any] | None:
        """Status, usage and metadata of a response, or ``None`` if unknown."""
        with self._driver.reading() as conversation:
            response = conversation.responses.get(response_id)
            return None if response is None else copy.deepcopy(response.as_dict())

    @property
    def active_response_id(self) -> str | None:
        """The in-conversation response now running, if any."""
        with self._driver.reading() as conversation:
            return conversation.active_response_id

    @property
    def pending_responses(self) -> int:
        """Requested responses not yet finished (queued or running)."""
        return self._driver.pending()

    @property
    def events(self) -> list[Event]:
        """Recent server events (deltas left out) and protocol errors, oldest first."""
        with self._driver.lock:
            events = list(self._driver.events)
        return list(_scrubbed(events))

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Every server error received, oldest first."""
        with self._driver.reading() as conversation:
            errors = list(conversation.errors)
        return list(_scrubbed(errors))

    @property
    def session_config(self) -> dict[str, Any]:
        """The session configuration the server last reported."""
        with self._driver.reading() as conversation:
            config = conversation.session
        return dict(_scrubbed(config))

    # Observers ----------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(session, changes)`` on the I/O thread after each server event.

        Deltas that arrive together (read from the socket in one go) come in one call (up
        to 64; the first of them at once, alone), as soon as the reader has taken them;
        every change comes once and in order, and before any response waiting on it
        finishes. Callbacks must be quick (mark something dirty, wake a thread): they run
        on the I/O thread. Returns a function that unsubscribes.
        """
        driver = self._driver
        with driver.lock:
            driver.subscribers = [*driver.subscribers, callback]

        def unsubscribe() -> None:
            with driver.lock:
                driver.subscribers = [s for s in driver.subscribers if s is not callback]

        return unsubscribe

    def subscribe_audio(
        self, handle: ResponseHandle, callback: Callable[[bytes], None]
    ) -> Callable[[], None]:
        """Call ``callback(pcm)`` with each piece of ``handle``'s output audio (PCM16
        24 kHz mono), in order, starting with any that already arrived; on the I/O thread
        (the catch-up on this one). Must be quick. Returns a function that unsubscribes.
        """
        from ..protocol.conversation import AudioDelta

        def on_changes(session: Any, changes: Sequence[Any]) -> None:
            response_id = handle.response_id
            for change in changes:
                if type(change) is AudioDelta and change.response_id == response_id:
                    callback(change.pcm)

        driver = self._driver
        # One critical section: every delta applied before it is in the catch-up, every
        # one after reaches ``on_changes`` (the driver reads its subscribers with the event).
        with driver.reading() as conversation:
            response_id = handle.response_id
            if response_id is not None:
                items = conversation.response_items(response_id)
                so_far = b"".join(item.audio for item in items if item.type == "message")
                if so_far:
                    callback(so_far)
            driver.subscribers = [*driver.subscribers, on_changes]

        def unsubscribe() -> None:
            with driver.lock:
                driver.subscribers = [s for s in driver.subscribers if s is not on_changes]

        return unsubscribe

    def listen(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` on the I/O thread with every server event as received
        (must be quick). Returns a function that stops it."""
        driver = self._driver
        with driver.lock:
            driver.listeners = [*driver.listeners, callback]

        def stop() -> None:
            with driver.lock:
                driver.listeners = [c for c in driver.listeners if c is not callback]

        return stop

    def record(self, path: str | Path, *, raw: bool = False) -> None:
        """Write every frame, sent and received, to ``path`` as JSON lines from now on
        (each with the tag of the turn it belongs to and its monotonic time; see
        :mod:`rt_notebook.client.recording`). Registered keys are replaced by ``***`` unless
        ``raw``: then the frames are kept as they were, keys included (with a warning)."""
        if raw:
            warnings.warn(
                f"recording raw frames to {path}: any API key a frame carries is kept "
                "in the file (record without raw to replace keys by ***)",
                UserWarning,
                stacklevel=3,  # the user's call of Session.record
            )
        stream = Path(path).open("ab")  # noqa: SIM115 - closed by stop_recording/close
        self._io.call(self._driver.set_recorder, stream, raw).result()

    def stop_recording(self) -> None:
        """Stop :meth:`record`."""
        self._io.call(self._driver.set_recorder, None).result()

    def timeline(self, key: str | None = None) -> Timeline | None:
        """A copy of the events, sent and received, of the last turn, or of the turn a
        request tag, response id or item id names (``None``: unknown or forgotten)."""
        with self._driver.lock:
            return self._driver.timelines.find(key)

    def session_timeline(self) -> Timeline:
        """A copy of the recent events that belong to no turn (rate limits, settings,
        responses the server started, errors naming no request)."""
        with self._driver.lock:
            return self._driver.timelines.copy_session()

    def usages(self) -> list[tuple[str, dict[str, Any]]]:
        """``(response id, usage)`` of every response of the conversation that has one."""
        with self._driver.reading() as conversation:
            responses = list(conversation.responses.values())
            return [(r.id, dict(r.usage)) for r in responses if r.usage]


def _scrubbed(data: Any) -> Any:
    """A deep copy of JSON data with every registered secret replaced."""
    try:
        return json.loads(scrub(json.dumps(data)))
    except (TypeError, ValueError):  # not JSON (never from the wire): copy as is
        return copy.deepcopy(data)
