"""Sans-I/O check of what a client event carries: every string must be valid Unicode.

A lone surrogate (``"\\ud800"``, e.g. from text cut in the middle of an emoji's UTF-16 pair,
or decoded with ``surrogateescape``) cannot be encoded as UTF-8, so no server can read it:
the service refuses the event and some servers drop the connection. It is refused here,
before anything is sent, with a message that says so (rather than a dropped connection).
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError

__all__ = ["check_sendable", "sendable_text"]


def check_sendable(value: Any, what: str) -> None:
    """Raise :class:`ConfigurationError` naming the first lone surrogate in ``value`` (its
    strings, dict keys and values, list entries)."""
    found = _first_surrogate(value)
    if found is not None:
        char, index = found
        raise ConfigurationError(
            f"{what} contains a lone surrogate (U+{ord(char):04X}) at character {index}, "
            "which is not valid Unicode and cannot be sent; remove or replace it "
            "(text.encode('utf-8', 'replace').decode() replaces each with '?')"
        )


def sendable_text(text: str) -> str:
    """``text`` with each lone surrogate replaced by ``?`` (for text the model must get
    whatever it holds, such as a tool's output)."""
    if text.isascii():
        return text
    return text.encode("utf-8", "replace").decode("utf-8")


def _first_surrogate(value: Any) -> tuple[str, int] | None:
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, str):
            if current.isascii():
                continue  # the common case, without encoding anything
            try:
                current.encode("utf-8")
            except UnicodeEncodeError as exc:
                return current[exc.start], exc.start
        elif isinstance(current, dict):
            stack.extend(current.keys())
            stack.extend(current.values())
        elif isinstance(current, list | tuple):
            stack.extend(current)
    return None
