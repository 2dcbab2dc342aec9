"""Base layer: the exceptions rt_notebook raises.

::

    RealtimeError                 base of everything below
    ├── ServerError               the server answered a request with an ``error`` event
    ├── RealtimeConnectionError          could not connect, or the connection closed under a request
    └── ConfigurationError        bad arguments or settings, detected before any I/O

Messages never contain an API key: anything that came from outside passes through
:func:`~rt_notebook.redaction.scrub` first.
"""

from __future__ import annotations

from typing import Any

from .redaction import register_secret, scrub

__all__ = [
    "ConfigurationError",
    "RealtimeConnectionError",
    "RealtimeError",
    "ServerError",
    "register_secret",
    "scrub",
]


class RealtimeError(Exception):
    """Base class of rt_notebook's errors."""


class ServerError(RealtimeError):
    """The Realtime server rejected a request (an ``error`` event answered it)."""

    def __init__(self, error: dict[str, Any]) -> None:
        self.error = {
            key: scrub(value) if isinstance(value, str) else value for key, value in error.items()
        }
        self.code: str | None = self.error.get("code")
        self.type: str | None = self.error.get("type")
        self.param: str | None = self.error.get("param")
        self.message: str = self.error.get("message") or "unknown server error"
        label = self.code or self.type or "error"
        where = f" (param {self.param})" if self.param else ""
        super().__init__(f"{label}: {self.message}{where}")


class RealtimeConnectionError(RealtimeError):
    """The connection could not be opened, or closed while a request was waiting."""

    def __init__(self, message: str) -> None:
        super().__init__(scrub(message))


class ConfigurationError(RealtimeError, ValueError):
    """Invalid arguments or settings, found before anything was sent."""
