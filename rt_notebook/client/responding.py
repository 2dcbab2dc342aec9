"""Client layer: a Session's responses, each asked for as a turn (items, then
``response.create``).

One of the parts a :class:`~rt_notebook.client.session.Session` is composed of. It turns
:class:`~rt_notebook.protocol.options.ResponseOptions` into a checked ``response`` body,
makes the turn and its :class:`~rt_notebook.client.responses.ResponseHandle`, tells the tool runner
what the response asked for (a tool round's follow-up asks for the same) and hands the turn
to the driver on the I/O thread. Thread-safe: only the submission runs on the I/O thread.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..protocol import payloads
from ..protocol.options import ResponseOptions, check_response_options
from ..protocol.sendable import check_sendable
from ..protocol.turns import Request, Turn
from .item_writes import item_request, message_with_images
from .responses import ResponseHandle
from .tool_host import ToolTracker

if TYPE_CHECKING:
    from .driver import Driver
    from .link import Link

__all__ = ["Responder", "ToolTracker"]


class Responder:
    """Makes and submits the turns of a Session's responses, and cancels them all;
    ``make_handle`` gives a turn its handle (one that belongs to the Session)."""

    def __init__(
        self,
        make_handle: Callable[[Turn], ResponseHandle],
        link: Link,
        driver: Driver,
        tools: ToolTracker,
    ) -> None:
        self._make_handle = make_handle
        self._link = link
        self._driver = driver
        self._tools = tools

    def new_turn(
        self,
        options: ResponseOptions,
        items: Sequence[dict[str, Any]] = (),
        committing: Request | None = None,
    ) -> ResponseHandle:
        """The handle of a turn adding ``items`` (then the ``committing`` audio commit)
        and asking for a response with ``options``; not submitted yet."""
        check_response_options(options, "create_response")
        dialect = self._link.endpoint.dialect
        tools = options.get("tools")
        resolved: ResponseOptions = {**options}
        if tools is not None:
            resolved["tools"] = self._tools.schemas(tools)
        params = payloads.response_settings(dialect, **resolved)
        if options.get("reasoning_effort") is not None:
            from ..protocol.setting_checks import SettingsCheckError, check_response

            try:
                check_response({"reasoning": params["reasoning"]}, dialect)
            except SettingsCheckError as exc:
                raise ConfigurationError(str(exc)) from None
        params.setdefault("metadata", {})
        check_sendable(params, "the response request")
        requests = [item_request(item, None) for item in items]
        if committing is not None:
            requests.append(committing)
        out_of_band = options.get("conversation") == "none"
        handle = self._make_handle(Turn(requests, params, out_of_band))
        if not out_of_band:
            # A tool round's follow-up asks for the same as this response did.
            follow_up: ResponseOptions = {**resolved}
            follow_up.pop("conversation", None)
            follow_up.pop("input", None)
            self._tools.track(handle, follow_up)
        return handle

    def create(
        self, options: ResponseOptions, items: Sequence[dict[str, Any]], first: bool
    ) -> ResponseHandle:
        """Make the turn and submit it (queued behind the running one, or ``first``)."""
        handle = self.new_turn(options, items)
        self._link.ensure_connected()
        self.submit(handle, first).result()
        return handle

    def message(
        self, text: str, role: str, images: Sequence[Any], image_detail: str | None
    ) -> dict[str, Any]:
        """The message item ``ask`` puts before its response (images encoded here)."""
        return message_with_images(text, role, self._link.endpoint.dialect, images, image_detail)

    def submit(
        self, handle: ResponseHandle, first: bool = False
    ) -> concurrent.futures.Future[None]:
        """Hand ``handle``'s turn to the driver (queued, or ``first``: at the head);
        returns at once (``.result()`` waits until the core has it)."""
        return self._driver.submit(handle, first)

    def cancel_all(self) -> None:
        self._driver.cancel_all().result()
