"""Client layer: a Session's line to its driver on the I/O thread (connect, move, close, and
requests that block until the server acknowledges them).

One of the parts a :class:`~rt_notebook.client.session.Session` is composed of. Every method may be
called from any thread: the work is handed to the I/O thread (:mod:`rt_notebook.client.io_thread`),
where the driver owns the client core; only the waiting happens on the caller's thread.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, RealtimeConnectionError, RealtimeError
from ..protocol.turns import Request, State
from .responses import SessionStatus
from .transport import Transport, resolve_endpoint

if TYPE_CHECKING:
    from ..protocol.conversation import Conversation
    from ..redaction import Secret
    from .driver import Driver
    from .io_thread import IOThread
    from .transport import Endpoint

__all__ = ["Link"]


class Link:
    """Connects, moves and closes one driver's connection, and hands it requests whose
    acknowledgement it waits for (``wait``).

    ``connect_settings`` gives the settings a fresh connection asks for (read when a
    connection is opened, on the caller's thread).
    """

    def __init__(
        self,
        io: IOThread,
        driver: Driver,
        endpoint: Endpoint,
        connect_settings: Callable[[], dict[str, Any]],
    ) -> None:
        self._io = io
        self._driver = driver
        self._connect_settings = connect_settings
        self.endpoint = endpoint  # where the connection goes (move() changes it)

    @property
    def state(self) -> State:
        return self._driver.state

    def status(self) -> SessionStatus:
        status = self._driver.status()
        return SessionStatus(
            status.state.value, status.attempt, status.restored, status.renewed_at, status.reason
        )

    def in_io_thread(self) -> bool:
        return self._io.in_thread()

    def refuse_on_io_thread(self, what: str) -> None:
        if self._io.in_thread():
            raise RealtimeError(
                f"{what} blocks, so it cannot run on the I/O thread (inside a subscriber)"
            )

    # Connecting --------------------------------------------------------------------------

    def connect(self, timeout: float) -> None:
        """Open the connection and wait until ready; no-op when ready."""
        self.refuse_on_io_thread("connect")
        if self._driver.state is State.READY:
            return
        future = self._io.call(self._driver.start, self._connect_settings()).result()
        self._await_ready(future, self.endpoint, timeout)

    def ensure_connected(self) -> None:
        if self._driver.state is State.CLOSED:
            self.connect(30.0)

    def move(
        self,
        *,
        websocket_base_url: str | None,
        base_url: str | None,
        api_key: Secret | None,
        timeout: float,
    ) -> None:
        """Carry the conversation to another endpoint (same model and dialect); wait until
        it is restored there."""
        self.refuse_on_io_thread("move")
        if websocket_base_url is None and base_url is None and api_key is None:
            raise ConfigurationError("move() needs websocket_base_url, base_url or api_key")
        transport = Transport(
            *resolve_endpoint(
                model=self.endpoint.model,
                api_key=api_key,
                base_url=base_url,
                websocket_base_url=websocket_base_url,
                dialect=self.endpoint.dialect,
            )
        )
        self.endpoint = transport.endpoint
        future = self._io.call(self._driver.move, transport).result()
        self._await_ready(future, transport.endpoint, timeout)

    def restore(self, conversation: Conversation, timeout: float) -> None:
        """Put ``conversation`` in place of the one held now and restore it on a new
        connection, as a reconnect does; wait until the server has it."""
        self.refuse_on_io_thread("restore")
        future = self._driver.restore(conversation, "resumed")
        try:
            future.result(timeout)
        except concurrent.futures.TimeoutError:
            why = f"the resumed conversation was not restored within {timeout} s"
            self._io.call(self._driver.give_up_waiting, future, why).result()
            raise RealtimeConnectionError(why) from None

    def _await_ready(
        self, future: concurrent.futures.Future[None], endpoint: Endpoint, timeout: float
    ) -> None:
        try:
            future.result(timeout)
        except concurrent.futures.TimeoutError:
            why = f"no session.created from {endpoint.describe()} within {timeout} s"
            self._io.call(self._driver.give_up_waiting, future, why).result()
            raise RealtimeConnectionError(why) from None

    def close(self) -> None:
        self.refuse_on_io_thread("close")
        self._io.call(self._driver.close).result(10)

    # Requests ---------------------------------------------------------------------------

    def wait(self, request: Request, timeout: float, first: bool = False) -> Any:
        """Hand ``request`` to the driver (:meth:`Driver.send`); block until it is
        acknowledged (its result) or refused (raised). ``first``: an item at the head of
        the queue."""
        self.refuse_on_io_thread(request.event["type"])
        self.ensure_connected()
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        request.owner = future
        self._driver.send(request, first).result()
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(
                f"no acknowledgement of {request.event['type']} within {timeout} s"
            ) from None
