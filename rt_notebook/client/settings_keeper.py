"""Client layer: a Session's settings, checked before anything is sent, updated through the
server, and read back as the server accepted them.

One of the parts a :class:`~rt_notebook.client.session.Session` is composed of. What the server
accepted and what is pending is kept in the client core (its settings part); this part keeps
what ``connect()`` asks for on a fresh connection and turns the user's keywords into a
checked ``session.update`` body. Thread-safe: reads ask the driver (under its lock), updates wait
for their acknowledgement through the :class:`~rt_notebook.client.link.Link`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..protocol import payloads
from ..protocol.events import Dialect
from ..protocol.sendable import check_sendable
from ..protocol.turns import Request
from ..redaction import scrub_data
from .tool_host import ToolLists

if TYPE_CHECKING:
    from .driver import Driver
    from .link import Link

__all__ = ["SettingsKeeper", "ToolLists", "check_settings"]


class SettingsKeeper:
    """Checks and sends settings updates; gives what a fresh connection asks for.

    ``connect_with`` (``connect()``'s settings) is checked here, before anything is sent.
    """

    def __init__(
        self, link: Link, driver: Driver, tools: ToolLists, connect_with: Mapping[str, Any]
    ) -> None:
        self._link = link
        self._driver = driver
        self._tools = tools
        self._connect_with = dict(connect_with)
        self.body(self._connect_with)

    @property
    def dialect(self) -> Dialect:
        return self._link.endpoint.dialect

    def accepted(self) -> dict[str, Any]:
        accepted = self._driver.accepted_settings()
        # scrubbed: a remote MCP server's headers are credentials
        return dict(scrub_data(payloads.settings_view(self.dialect, accepted)))

    def pending(self) -> list[dict[str, Any]]:
        pending = self._driver.pending_settings()
        return [payloads.settings_view(self.dialect, body) for body in pending]

    def lost(self) -> str | None:
        return self._driver.settings_lost()

    def update(self, changes: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        """Send the changes given (``None`` values: unchanged); return the confirmed session."""
        body = self.body({k: v for k, v in changes.items() if v is not None})
        if not body:
            raise ConfigurationError("update_session() was given no setting to change")
        request = Request("update", {"type": "session.update", "session": body})
        result = self._link.wait(request, timeout)
        return dict(result)

    def resend_tools(self, timeout: float) -> dict[str, Any]:
        """Send the tool list again (a tool was registered or removed): the hand-written
        definitions the server holds, as they were given (the :meth:`accepted` view is
        scrubbed: an MCP server's ``Bearer`` header would go back as ``***``), then every
        registered tool; return the confirmed session."""
        held = payloads.settings_view(self.dialect, self._driver.accepted_settings())
        return self.update({"tools": self._tools.hand_written(held.get("tools") or [])}, timeout)

    def body(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """A checked ``session.update`` body for ``config`` (``update_session``'s keywords)
        in this connection's dialect; refusals are ConfigurationErrors."""
        check_sendable(dict(config), "the session settings")
        tools = config.get("tools")
        if tools is not None:
            # Hand-written definitions plus every registered tool, always as a whole list.
            config = {**config, "tools": self._tools.session_schemas(tools)}
        return check_settings(config, self.dialect)

    def for_connect(self) -> dict[str, Any]:
        """What a fresh connection asks for: connect()'s settings, then every setting the
        server accepted since, with the tools registered now."""
        accepted = self._driver.accepted_settings()
        body = self.body(self._connect_with)
        _merge_body(body, accepted)
        if body.get("tools") is not None or len(self._tools) or self._tools.hosted:
            body["tools"] = self._tools.session_schemas(
                self._tools.hand_written(body.get("tools") or [])
            )
        if body and self.dialect is Dialect.GA:
            body["type"] = "realtime"
        return body


# update_session()'s keywords in rt_notebook's vocabulary (the rest are protocol fields).
_NAMED_SETTINGS = frozenset(
    {
        "instructions",
        "modalities",
        "voice",
        "tools",
        "tool_choice",
        "reasoning_effort",
        "truncation",
        "noise_reduction",
        "turn_detection",
        "transcription",
    }
)


def check_settings(config: Mapping[str, Any], dialect: Dialect) -> dict[str, Any]:
    """The ``session.update`` body for ``config`` (:meth:`Session.update_session`'s
    keywords), checked against the ``openai`` SDK's session type: a problem raises
    :class:`~rt_notebook.errors.ConfigurationError` with one line naming what is allowed."""
    from ..protocol.setting_checks import SettingsCheckError, check_session

    fields = {k: v for k, v in config.items() if k not in _NAMED_SETTINGS}
    try:
        body = payloads.session_settings(
            dialect,
            instructions=config.get("instructions"),
            wanted_modalities=config.get("modalities"),
            voice=config.get("voice"),
            tools=config.get("tools"),
            tool_choice=config.get("tool_choice"),
            reasoning_effort=config.get("reasoning_effort"),
            truncation=config.get("truncation"),
            noise_reduction=config.get("noise_reduction"),
            turn_detection=config.get("turn_detection"),
            fields=fields,
        )
        if "transcription" in config:
            _merge_body(body, payloads.transcription_settings(dialect, config["transcription"]))
        if body:
            check_session(body, dialect)
    except (SettingsCheckError, ValueError) as exc:
        raise ConfigurationError(str(exc)) from None
    return body


def _merge_body(into: dict[str, Any], more: dict[str, Any]) -> None:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge_body(into[key], value)
        else:
            into[key] = value
