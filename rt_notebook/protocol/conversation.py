"""Sans-I/O conversation mirror: server events in, typed changes out.

:class:`Conversation` folds the server events of one Realtime connection (either dialect;
beta names are translated by :func:`~rt_notebook.protocol.events.to_ga`) into the state a
user cares about: the items in server order, their text accumulated from deltas, and the
responses with status and usage. :meth:`Conversation.apply` returns a list of small immutable
:class:`Change` records so that views can update exactly what changed.

It never raises on a surprising event: the service has quirks (``previous_item_id: null``
on ``conversation.item.done``, errors that overtake earlier acknowledgements,
``rate_limits.updated`` after ``response.done``) and a mirror that stopped on them would
lose the conversation. Unknown event types produce no change.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .events import Event, to_ga
from .images import ImagePart, image_parts
from .mcp import MCP_EVENT_STATUS, MCP_ITEM_TYPES, absorb_mcp, mark_status
from .numbers import clean_usage

__all__ = [
    "AUDIO_BYTES_PER_MS",
    "DEFAULT_AUDIO_CAP_BYTES",
    "AudioDelta",
    "Change",
    "Conversation",
    "ErrorReceived",
    "Item",
    "ItemAdded",
    "ItemDeleted",
    "ItemDelta",
    "ItemDone",
    "ItemUpdated",
    "Response",
    "ResponseCreated",
    "ResponseDone",
    "SessionChanged",
]


# Output audio is PCM16, 24 kHz, mono: 48 bytes per millisecond.
AUDIO_BYTES_PER_MS = 48
# The mirror keeps at most ten minutes of audio per item (about 29 MB); the rest is counted.
DEFAULT_AUDIO_CAP_BYTES = 10 * 60 * 1000 * AUDIO_BYTES_PER_MS

# Items and responses ------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class Item:
    """One conversation item as the mirror knows it."""

    id: str
    type: str  # "message", "function_call", "function_call_output" or an MCP type (.mcp)
    role: str | None = None  # messages only: "user", "assistant" or "system"
    status: str | None = None  # "in_progress", "completed" or "incomplete"
    response_id: str | None = None  # the response that produced it, if any
    # function_call and function_call_output; the answered approval request's id for
    # mcp_call and mcp_approval_response
    call_id: str | None = None
    name: str | None = None  # function_call, mcp_call and mcp_approval_request: the tool
    output: str | None = None  # function_call_output, mcp_call; an approval's decision
    # Remote MCP items (see .mcp): the server's label, the call's or listing's error, the
    # tools a listing found ({"name", "description"} each).
    server_label: str | None = None
    error: str | None = None
    tools: tuple[dict[str, str], ...] = ()
    # Streamed text (message text or audio transcript) and function arguments are kept
    # as chunk lists: appending is O(1) on the delta hot path, joining happens on read.
    text_chunks: list[str] = field(default_factory=list)
    arguments_chunks: list[str] = field(default_factory=list)
    # Output audio, decoded once as it arrives: PCM16 24 kHz mono, up to the mirror's cap.
    audio_chunks: list[bytes] = field(default_factory=list)
    audio_bytes: int = 0  # PCM bytes received, kept or not
    audio_dropped: int = 0  # PCM bytes past the cap, not kept
    in_conversation: bool = False  # False for out-of-band response output
    # A user message's input_image parts, with their bytes (a reconnect re-sends them).
    images: list[ImagePart] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The message text or audio transcript accumulated so far."""
        if len(self.text_chunks) > 1:
            self.text_chunks[:] = ["".join(self.text_chunks)]
        return self.text_chunks[0] if self.text_chunks else ""

    @property
    def audio(self) -> bytes:
        """The output audio kept so far (PCM16, 24 kHz, mono)."""
        if len(self.audio_chunks) > 1:
            self.audio_chunks[:] = [b"".join(self.audio_chunks)]
        return self.audio_chunks[0] if self.audio_chunks else b""

    @property
    def arguments(self) -> str:
        """The function-call arguments (a JSON string) accumulated so far."""
        if len(self.arguments_chunks) > 1:
            self.arguments_chunks[:] = ["".join(self.arguments_chunks)]
        return self.arguments_chunks[0] if self.arguments_chunks else ""

    def as_dict(self) -> dict[str, Any]:
        """The item as plain data (the JSON transcript format)."""
        return {
            "id": self.id,
            "type": self.type,
            "role": self.role,
            "status": self.status,
            "text": self.text,
            "call_id": self.call_id,
            "name": self.name,
            "arguments": self.arguments if self.type in _WITH_ARGUMENTS else None,
            "output": self.output,
            "server_label": self.server_label,
            "error": self.error,
            "tools": [dict(tool) for tool in self.tools],
            # Described, never the bytes: this is what transcripts and exports write.
            "images": [image.summary() for image in self.images],
        }

    def _absorb(self, wire: Event) -> None:
        """Take what a full item snapshot from the server says (added/done/retrieved)."""
        # Only string values count: a frame with odd fields must not break later reads.
        self.type = _text(wire.get("type")) or self.type
        self.role = _text(wire.get("role")) or self.role
        self.status = _text(wire.get("status")) or self.status
        self.call_id = _text(wire.get("call_id")) or self.call_id
        self.name = _text(wire.get("name")) or self.name
        if "output" in wire:
            self.output = _text(wire["output"])
        arguments = _text(wire.get("arguments"))
        if arguments:  # "" while streaming: keep what the deltas built
            self.arguments_chunks[:] = [arguments]
        text = _content_text(wire.get("content"))
        if text:
            self.text_chunks[:] = [text]
        images = image_parts(wire.get("content"))
        if images:
            self.images[:] = images
        if self.type in MCP_ITEM_TYPES:
            absorb_mcp(self, wire)


# Item types whose arguments the transcript format keeps.
_WITH_ARGUMENTS = frozenset({"function_call", "mcp_call", "mcp_approval_request"})


def _text(value: object) -> str | None:
    """``value`` if it is a string, else ``None``."""
    return value if isinstance(value, str) else None


def _content_text(content: object) -> str:
    """The text (or transcript) of an item's content parts, joined."""
    if not isinstance(content, list):
        return ""
    pieces = []
    for part in content:
        if isinstance(part, dict):
            piece = part.get("text") or part.get("transcript")
            if piece and isinstance(piece, str):
                pieces.append(piece)
    return "".join(pieces)


@dataclass(eq=False, slots=True)
class Response:
    """One response as the mirror knows it."""

    id: str
    status: str = "in_progress"  # then "completed", "cancelled", "failed" or "incomplete"
    status_details: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    conversation_id: str | None = None  # None for out-of-band responses
    output_modalities: list[str] | None = None
    output_item_ids: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        """Whether ``response.done`` has arrived."""
        return self.status != "in_progress"

    def as_dict(self) -> dict[str, Any]:
        """The response as plain data (the JSON transcript format)."""
        return {
            "id": self.id,
            "status": self.status,
            "status_details": self.status_details,
            "usage": self.usage,
            "metadata": self.metadata,
            "output_item_ids": list(self.output_item_ids),
        }


# Changes ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionChanged:
    """``session.created`` or ``session.updated``: the session configuration changed."""

    session: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ItemAdded:
    """A new item is known (in the conversation at ``index``, or out of band: ``None``)."""

    item_id: str
    index: int | None


# The two changes made once per delta frame (most of the traffic) are named tuples: as
# immutable as the frozen dataclasses, but built without a frozen dataclass's
# ``object.__setattr__`` call per field (about half the cost of applying a text delta).
# The delta handlers build them with ``tuple.__new__``, one C call, rather than through
# the named tuple's own ``__new__``, a Python function around that same call.


_tuple = tuple.__new__


class ItemDelta(NamedTuple):
    """Text, transcript or arguments of an item grew by ``delta``."""

    item_id: str
    response_id: str | None
    field: str  # "text" or "arguments"
    delta: str


class AudioDelta(NamedTuple):
    """An item's output audio grew by ``pcm`` (decoded PCM16, passed on even past the cap)."""

    item_id: str
    response_id: str | None
    pcm: bytes


@dataclass(frozen=True, slots=True)
class ItemUpdated:
    """An item's status or content changed without a delta (a ``.done`` with final text)."""

    item_id: str


@dataclass(frozen=True, slots=True)
class ItemDone:
    """The server says an item is complete (``conversation.item.done`` / output_item.done)."""

    item_id: str


@dataclass(frozen=True, slots=True)
class ItemDeleted:
    """An item left the conversation."""

    item_id: str


@dataclass(frozen=True, slots=True)
class ResponseCreated:
    """A response started."""

    response_id: str


@dataclass(frozen=True, slots=True)
class ResponseDone:
    """A response ended; ``status`` says how."""

    response_id: str
    status: str


@dataclass(frozen=True, slots=True)
class ErrorReceived:
    """The server sent an ``error`` event; ``client_event_id`` names the event it answers."""

    error: dict[str, Any]
    client_event_id: str | None


Change = (
    SessionChanged
    | ItemAdded
    | ItemDelta
    | AudioDelta
    | ItemUpdated
    | ItemDone
    | ItemDeleted
    | ResponseCreated
    | ResponseDone
    | ErrorReceived
)


# The mirror ---------------------------------------------------------------------------

_TEXT_DELTAS = frozenset({"response.output_text.delta", "response.output_audio_transcript.delta"})
_STREAMED_GA = frozenset(
    {*_TEXT_DELTAS, "response.output_audio.delta", "response.function_call_arguments.delta"}
)


class Conversation:
    """The client-side mirror of one Realtime conversation.

    Feed it every server event with :meth:`apply`; read :attr:`items`, :meth:`item`,
    :attr:`responses` and :attr:`active_response_id`. Not thread-safe: one owner (the
    Session's I/O thread) applies events; others read snapshots through the Session.
    """

    def __init__(self, *, audio_cap_bytes: int = DEFAULT_AUDIO_CAP_BYTES) -> None:
        # Output audio kept per item at most (bytes of PCM16); the rest is only counted.
        self.audio_cap_bytes = audio_cap_bytes
        # Every item seen, by id, including out-of-band response output.
        self._items: dict[str, Item] = {}
        # Ids of the items in the default conversation, in server order, and where each
        # one stands: every turn places items after an anchor (usually the last item), so
        # finding it must not scan a long conversation. Appends keep the positions; any
        # other move marks them stale, and the next lookup rebuilds them.
        self._order: list[str] = []
        self._positions: dict[str, int] = {}
        self._positions_stale = False
        self.position_rebuilds = 0  # how often the positions were rebuilt (for tests)
        # Every response seen, by id, in creation order (dicts keep insertion order).
        self.responses: dict[str, Response] = {}
        # The in-conversation response now running, if any (at most one at a time).
        self.active_response_id: str | None = None
        # The last session configuration the server reported.
        self.session: dict[str, Any] = {}
        # The last ``rate_limits.updated`` payload.
        self.rate_limits: list[dict[str, Any]] = []
        # Server errors in arrival order.
        self.errors: list[dict[str, Any]] = []
        self._handlers: dict[str, Callable[[Event], list[Change]]] = {
            "session.created": self._on_session,
            "session.updated": self._on_session,
            "conversation.item.added": self._on_item_added,
            "conversation.item.done": self._on_item_done,
            "conversation.item.retrieved": self._on_item_done,
            "conversation.item.deleted": self._on_item_deleted,
            "conversation.item.truncated": self._on_item_truncated,
            "conversation.item.input_audio_transcription.completed": self._on_transcription,
            "response.created": self._on_response_created,
            "response.done": self._on_response_done,
            "response.output_item.added": self._on_output_item,
            "response.output_item.done": self._on_output_item_done,
            "response.output_text.delta": self._on_text_delta,
            "response.output_audio_transcript.delta": self._on_text_delta,
            "response.output_text.done": self._on_text_done,
            "response.output_audio_transcript.done": self._on_text_done,
            "response.output_audio.delta": self._on_audio_delta,
            "response.function_call_arguments.delta": self._on_arguments_delta,
            "response.function_call_arguments.done": self._on_arguments_done,
            "rate_limits.updated": self._on_rate_limits,
            "error": self._on_error,
            # Remote MCP listings and calls (what they mean: .mcp).
            **dict.fromkeys(MCP_EVENT_STATUS, self._on_mcp_status),
            "response.mcp_call_arguments.delta": self._on_arguments_delta,
            "response.mcp_call_arguments.done": self._on_mcp_arguments_done,
        }

    # Public methods for reading -------------------------------------------------------

    @property
    def event_types(self) -> frozenset[str]:
        """The GA server event types the mirror folds in (beta names are renamed first)."""
        return frozenset(self._handlers)

    @property
    def items(self) -> list[Item]:
        """The items of the default conversation, in server order."""
        return [self._items[item_id] for item_id in self._order]

    def item_ids(self) -> tuple[str, ...]:
        """The ids of the default conversation's items, in server order (nothing copied
        but the ids: what a cell needs each turn, at any length of conversation)."""
        return tuple(self._order)

    @property
    def item_count(self) -> int:
        """How many items the default conversation holds."""
        return len(self._order)

    def item(self, item_id: str) -> Item | None:
        """Any known item by id (conversation or out-of-band), or ``None``."""
        return self._items.get(item_id)

    def index_of(self, item_id: str) -> int | None:
        """The position of an item in the conversation, or ``None`` if not in it."""
        if self._positions_stale:
            self._positions = {known: index for index, known in enumerate(self._order)}
            self._positions_stale = False
            self.position_rebuilds += 1
        return self._positions.get(item_id)

    def response_items(self, response_id: str) -> Iterator[Item]:
        """The output items of a response, in output order."""
        response = self.responses.get(response_id)
        if response is None:
            return
        for item_id in response.output_item_ids:
            item = self._items.get(item_id)
            if item is not None:
                yield item

    def response_text(self, response_id: str) -> str:
        """The text (or transcript) of a response's message items, joined by blank lines."""
        texts = [item.text for item in self.response_items(response_id) if item.type == "message"]
        return "\n\n".join(text for text in texts if text)

    def forget(self, item_id: str) -> None:
        """Drop an item the client knows will never complete (a dropped response's output)."""
        self._unplace(item_id)
        self._items.pop(item_id, None)

    # Public methods for applying events -----------------------------------------------

    def apply(self, event: Event) -> list[Change]:
        """Fold one server event (either dialect) into the mirror; return what changed."""
        kind = event.get("type", "")
        handler = self._handlers.get(kind)
        if handler is None:
            event = to_ga(event)
            handler = self._handlers.get(event.get("type", ""))
            if handler is None:
                return []
        # Items and responses carry dialect-specific names too (beta "text" parts); deltas
        # (most events) carry neither, and skip the look.
        elif kind not in _STREAMED_GA and ("item" in event or "response" in event):
            event = to_ga(event)
        return handler(event)

    # Handlers ------------------------------------------------------------------------

    def _on_session(self, event: Event) -> list[Change]:
        self.session = event.get("session") or {}
        return [SessionChanged(self.session)]

    def _ensure_item(self, wire: Event) -> tuple[Item, bool]:
        item_id = wire["id"]
        item = self._items.get(item_id)
        if item is not None:
            return item, False
        item = Item(id=item_id, type=_text(wire.get("type")) or "message")
        self._items[item_id] = item
        return item, True

    def _on_item_added(self, event: Event) -> list[Change]:
        wire = event.get("item") or {}
        if "id" not in wire:
            return []
        item, _ = self._ensure_item(wire)
        item._absorb(wire)
        previous_item_id = event.get("previous_item_id")
        if item.in_conversation:
            # Known already (a restore re-creates every item on a new connection): it
            # stays where it is unless the server put it elsewhere.
            current = self.index_of(item.id)
            if current is not None:
                return [ItemAdded(item.id, self._move(current, previous_item_id))]
        item.in_conversation = True
        index = self._place(item.id, previous_item_id)
        return [ItemAdded(item.id, index)]

    def _place(self, item_id: str, previous_item_id: str | None) -> int:
        if previous_item_id is None:
            index = 0  # first item, or inserted at "root"
        else:
            anchor = self.index_of(previous_item_id)
            # An unknown anchor: keep the item (at the end) rather than drop it.
            index = len(self._order) if anchor is None else anchor + 1
        if index == len(self._order):
            self._positions[item_id] = index  # appended: every other position holds
        else:
            self._positions_stale = True
        self._order.insert(index, item_id)
        return index

    def _move(self, current: int, previous_item_id: str | None) -> int:
        """Put the item at ``current`` right after ``previous_item_id``; its new index.

        Only the positions between the old and the new place change, so a restore (every
        item re-announced in order, each one already in place) costs O(1) per item, and
        one left out of it (an unfinished item) moves back one place per item: no rebuild.
        """
        order = self._order
        if previous_item_id is None:
            target = 0
        else:
            anchor = self.index_of(previous_item_id)
            if anchor is None or anchor == current:
                target = len(order) - 1  # an unknown anchor: at the end, as _place does
            else:
                target = anchor + 1 if anchor < current else anchor
        if target == current:
            return current
        item_id = order.pop(current)
        order.insert(target, item_id)
        if not self._positions_stale:
            positions = self._positions
            for index in range(min(current, target), max(current, target) + 1):
                positions[order[index]] = index
        return target

    def _unplace(self, item_id: str) -> None:
        """Take an item out of the conversation's order (if it is there)."""
        index = self.index_of(item_id)
        if index is None:
            return
        del self._order[index]
        del self._positions[item_id]
        if index != len(self._order):  # not the last one: those after it moved up
            self._positions_stale = True

    def _on_item_done(self, event: Event) -> list[Change]:
        # previous_item_id is deliberately ignored here: the service often sends null on
        # .done for items whose .added had an anchor (seen in tests/conformance/).
        wire = event.get("item") or {}
        if "id" not in wire:
            return []
        item, created = self._ensure_item(wire)
        item._absorb(wire)
        changes: list[Change] = []
        if not item.in_conversation and event["type"] != "conversation.item.retrieved":
            item.in_conversation = True
            changes.append(ItemAdded(item.id, self._place(item.id, event.get("previous_item_id"))))
        elif created:
            changes.append(ItemAdded(item.id, None))
        changes.append(ItemDone(item.id))
        return changes

    def _on_item_deleted(self, event: Event) -> list[Change]:
        item_id = event.get("item_id", "")
        self._unplace(item_id)
        item = self._items.get(item_id)
        if item is None:
            return []
        item.in_conversation = False
        return [ItemDeleted(item_id)]

    def _on_item_truncated(self, event: Event) -> list[Change]:
        item = self._items.get(event.get("item_id", ""))
        if item is None:
            return []
        # The server drops the transcript of audio the user never heard, and the audio.
        item.text_chunks.clear()
        end_ms = event.get("audio_end_ms")
        if type(end_ms) is int and end_ms >= 0:
            kept = item.audio[: end_ms * AUDIO_BYTES_PER_MS]
            item.audio_chunks[:] = [kept] if kept else []
        item.status = "incomplete"
        return [ItemUpdated(item.id)]

    def _on_transcription(self, event: Event) -> list[Change]:
        item = self._items.get(event.get("item_id", ""))
        if item is None:
            return []
        item.text_chunks[:] = [_text(event.get("transcript")) or ""]
        return [ItemUpdated(item.id)]

    def _on_response_created(self, event: Event) -> list[Change]:
        wire = event.get("response") or {}
        known = self.responses.get(wire.get("id", ""))
        if known is not None and known.done:
            return []  # a late duplicate must not bring a finished response back to life
        response = self._response(wire.get("id", ""))
        response.status = wire.get("status") or "in_progress"
        response.metadata = wire.get("metadata")
        response.conversation_id = wire.get("conversation_id")
        response.output_modalities = wire.get("output_modalities")
        if response.conversation_id is not None and not response.done:
            self.active_response_id = response.id
        return [ResponseCreated(response.id)]

    def _response(self, response_id: str) -> Response:
        response = self.responses.get(response_id)
        if response is None:
            response = self.responses[response_id] = Response(id=response_id)
        return response

    def _on_response_done(self, event: Event) -> list[Change]:
        wire = event.get("response") or {}
        response = self._response(wire.get("id", ""))
        response.status = wire.get("status") or "completed"
        response.status_details = wire.get("status_details")
        response.usage = clean_usage(wire.get("usage"))  # counts checked where they enter
        if wire.get("metadata") is not None:
            response.metadata = wire["metadata"]
        changes: list[Change] = []
        # The full output is authoritative: it fills in anything a lost delta left out.
        for wire_item in wire.get("output") or []:
            if not isinstance(wire_item, dict) or "id" not in wire_item:
                continue
            item, created = self._ensure_item(wire_item)
            item._absorb(wire_item)
            item.response_id = response.id
            if item.id not in response.output_item_ids:
                response.output_item_ids.append(item.id)
            changes.append(ItemAdded(item.id, None) if created else ItemUpdated(item.id))
        if self.active_response_id == response.id:
            self.active_response_id = None
        changes.append(ResponseDone(response.id, response.status))
        return changes

    def _on_output_item(self, event: Event) -> list[Change]:
        wire = event.get("item") or {}
        if "id" not in wire:
            return []
        item, created = self._ensure_item(wire)
        item._absorb(wire)
        response_id = event.get("response_id")
        item.response_id = response_id
        if response_id is not None:
            output = self._response(response_id).output_item_ids
            if item.id not in output:
                output.append(item.id)
        return [ItemAdded(item.id, None)] if created else []

    def _on_output_item_done(self, event: Event) -> list[Change]:
        wire = event.get("item") or {}
        if "id" not in wire:
            return []
        changes = self._on_output_item(event)
        return [*changes, ItemDone(wire["id"])]

    def _on_text_delta(self, event: Event) -> list[Change]:
        item = self._items.get(event.get("item_id", ""))
        if item is None:
            return []
        delta = event.get("delta")
        if type(delta) is not str:
            return []
        item.text_chunks.append(delta)
        return [_tuple(ItemDelta, (item.id, event.get("response_id"), "text", delta))]

    def _on_text_done(self, event: Event) -> list[Change]:
        item = self._items.get(event.get("item_id", ""))
        if item is None:
            return []
        final = _text(event.get("text"))
        if final is None:
            final = _text(event.get("transcript")) or ""
        item.text_chunks[:] = [final]
        return [ItemUpdated(item.id)]

    def _on_audio_delta(self, event: Event) -> list[Change]:
        item = self._items.get(event.get("item_id", ""))
        delta = event.get("delta")
        if item is None or type(delta) is not str:
            return []
        try:
            pcm = base64.b64decode(delta, validate=True)
        except (binascii.Error, ValueError):
            return []  # garbage from the server: nothing playable
        if not pcm:
            return []
        room = max(0, self.audio_cap_bytes - (item.audio_bytes - item.audio_dropped))
        if len(pcm) <= room:
            item.audio_chunks.append(pcm)
        else:
            # Keep whole samples: a cut inside one would shift every later byte.
            keep = room - room % 2
            if keep:
                item.audio_chunks.append(pcm[:keep])
            item.audio_dropped += len(pcm) - keep
        item.audio_bytes += len(pcm)
        return [_tuple(AudioDelta, (item.id, event.get("response_id"), pcm))]

    def _on_arguments_delta(self, event: Event) -> list[Change]:
        item = self._items.get(event.get("item_id", ""))
        if item is None:
            return []
        delta = event.get("delta")
        if type(delta) is not str:
            return []
        item.arguments_chunks.append(delta)
        return [_tuple(ItemDelta, (item.id, event.get("response_id"), "arguments", delta))]

    def _on_arguments_done(self, event: Event) -> list[Change]:
        item = self._items.get(event.get("item_id", ""))
        if item is None:
            return []
        item.arguments_chunks[:] = [_text(event.get("arguments")) or ""]
        if _text(event.get("name")):
            item.name = event["name"]
        return [ItemUpdated(item.id)]

    def _on_mcp_status(self, event: Event) -> list[Change]:
        item = self._items.get(event.get("item_id", ""))
        if item is None:
            return []
        mark_status(item, str(event.get("type")))
        return [ItemUpdated(item.id)]

    def _on_mcp_arguments_done(self, event: Event) -> list[Change]:
        item = self._items.get(event.get("item_id", ""))
        arguments = _text(event.get("arguments"))
        if item is None or arguments is None:
            return []
        item.arguments_chunks[:] = [arguments]
        return [ItemUpdated(item.id)]

    def _on_rate_limits(self, event: Event) -> list[Change]:
        self.rate_limits = event.get("rate_limits") or []
        return []

    def _on_error(self, event: Event) -> list[Change]:
        error = event.get("error") or {}
        self.errors.append(error)
        return [ErrorReceived(error, error.get("event_id"))]
