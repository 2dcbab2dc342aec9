"""Sans-I/O read-only interface of the conversation mirror, as the client core hands it out.

:meth:`~rt_notebook.protocol.client.ClientCore.view` returns the core's
:class:`~rt_notebook.protocol.conversation.Conversation` typed as :class:`ConversationView`:
readers (the Session's, under the driver's lock) can look at every item and response but
change nothing; only frames fed to the core change the mirror.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from .conversation import Item, Response

__all__ = ["ConversationView"]


class ConversationView(Protocol):
    """What a reader may look at in the mirror (see the module docstring)."""

    @property
    def items(self) -> Sequence[Item]: ...

    @property
    def item_count(self) -> int: ...

    @property
    def responses(self) -> Mapping[str, Response]: ...

    @property
    def active_response_id(self) -> str | None: ...

    @property
    def session(self) -> Mapping[str, Any]: ...

    @property
    def errors(self) -> Sequence[dict[str, Any]]: ...

    def item_ids(self) -> tuple[str, ...]: ...

    def item(self, item_id: str) -> Item | None: ...

    def index_of(self, item_id: str) -> int | None: ...

    def response_items(self, response_id: str) -> Iterator[Item]: ...

    def response_text(self, response_id: str) -> str: ...
