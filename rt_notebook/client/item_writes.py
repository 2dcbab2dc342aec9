"""Client layer, a Session's write side: conversation items added, deleted, retrieved,
truncated.

One of the parts a :class:`~rt_notebook.client.session.Session` is composed of. Each method hands a
:class:`~rt_notebook.protocol.turns.Request` to the client core and blocks until the core
matched its acknowledgement (the item id the client chose) or its error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..protocol import payloads
from ..protocol.events import Dialect, Event, new_id
from ..protocol.sendable import check_sendable
from ..protocol.turns import Request
from .responses import ItemSnapshot

if TYPE_CHECKING:
    from .link import Link
    from .reading import ConversationReader

__all__ = ["ItemWriter", "item_request", "message_with_images"]


class ItemWriter:
    """Adds, deletes, retrieves and truncates items through ``link``; ``reader`` gives
    the refreshed snapshot of a retrieved item."""

    def __init__(self, link: Link, reader: ConversationReader) -> None:
        self._link = link
        self._reader = reader

    @property
    def dialect(self) -> Dialect:
        return self._link.endpoint.dialect

    def add_message(
        self,
        text: str,
        *,
        role: str = "user",
        after: str | None = None,
        timeout: float = 30.0,
        images: Sequence[Any] = (),
        image_detail: str | None = None,
    ) -> str:
        """:meth:`Session.add_message` (documented there)."""
        item = message_with_images(text, role, self.dialect, images, image_detail)
        return self.add_item(item, after=after, timeout=timeout)

    def add_function_output(
        self, call_id: str, output: str, *, after: str | None = None, timeout: float = 30.0
    ) -> str:
        """Add a ``function_call_output`` item for ``call_id``; return its id."""
        item = {"type": "function_call_output", "call_id": call_id, "output": output}
        return self.add_item(item, after=after, timeout=timeout)

    def add_item(
        self,
        item: dict[str, Any],
        *,
        after: str | None = None,
        timeout: float = 30.0,
        first: bool = False,
    ) -> str:
        """Add any conversation item (API shape); return its id once the server has it.
        While a turn runs it waits its turn (``first``: at the head of the queue)."""
        request = item_request(item, after)
        return str(self._link.wait(request, timeout, first))

    def delete_item(self, item_id: str, *, timeout: float = 30.0) -> None:
        """Delete an item from the conversation."""
        event = {"type": "conversation.item.delete", "item_id": item_id}
        self._link.wait(Request("delete", event, key=item_id), timeout)

    def retrieve_item(self, item_id: str, *, timeout: float = 30.0) -> ItemSnapshot:
        """Ask the server for an item's full state; return the refreshed snapshot."""
        event = {"type": "conversation.item.retrieve", "item_id": item_id}
        self._link.wait(Request("retrieve", event, key=item_id), timeout)
        snapshot = self._reader.item(item_id)
        assert snapshot is not None  # the acknowledgement put it in the mirror
        return snapshot

    def truncate_item(
        self, item_id: str, *, audio_end_ms: int, content_index: int = 0, timeout: float = 30.0
    ) -> None:
        """Truncate an assistant audio item so the server forgets audio never heard."""
        event = {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": content_index,
            "audio_end_ms": audio_end_ms,
        }
        self._link.wait(Request("truncate", event, key=item_id), timeout)


def message_with_images(
    text: str, role: str, dialect: Dialect, images: Sequence[Any], detail: str | None
) -> dict[str, Any]:
    """A message item with ``images`` encoded (refused in one line before anything is
    sent: see :mod:`rt_notebook.client.images`)."""
    if not images:
        if detail is not None:
            raise ConfigurationError("--image-detail applies to images: add --image")
        return payloads.message_item(text, role, dialect)
    if role != "user":
        raise ConfigurationError(f"images go in user messages, not {role} messages")
    if dialect is Dialect.BETA:
        raise ConfigurationError("images need the GA dialect (the beta one takes none)")
    from .images import image_parts

    parts = [part.wire() for part in image_parts(list(images), detail)]
    return payloads.message_item(text, role, dialect, parts)


def item_request(item: dict[str, Any], after: str | None) -> Request:
    check_sendable(item, "the item")
    item = dict(item)
    item_id = item.setdefault("id", new_id("item", 20))
    event: Event = {"type": "conversation.item.create", "item": item}
    if after is not None:
        event["previous_item_id"] = after
    return Request("item", event, key=str(item_id))
