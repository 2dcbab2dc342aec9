"""Pure naming rule: an MCP server's tool as a Realtime function name.

The service accepts function names matching ``^[a-zA-Z0-9_-]{1,64}$``. A tool ``TOOL`` of
the server labelled ``LABEL`` is offered as ``LABEL__TOOL`` when that fits; otherwise
(characters outside the set, or longer than 64) every other character becomes ``_``, the
name is cut to 55 characters and ``_`` plus the first 8 hex digits of the SHA-256 of
``LABEL__TOOL`` (as the server spelled it) is appended, so two tools never share a name
by being shortened alike. No I/O.
"""

from __future__ import annotations

import hashlib
import re

from ...errors import ConfigurationError

__all__ = ["LABEL_RULE", "check_label", "exposed_name"]

# Names the Realtime API accepts for functions.
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_LABEL = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
LABEL_RULE = "1-32 letters, digits, '_' or '-'"


def check_label(label: str) -> str:
    """``label`` if it may name a server, else a one-line :class:`ConfigurationError`."""
    if not isinstance(label, str) or not _LABEL.match(label):
        raise ConfigurationError(f"MCP server label {label!r} must be {LABEL_RULE}")
    return label


def exposed_name(label: str, tool: str) -> str:
    """The function name under which ``label``'s tool ``tool`` is offered to the model."""
    joined = f"{label}__{tool}"
    if _FUNCTION_NAME.match(joined):
        return joined
    digest = hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{_UNSAFE.sub('_', joined)[:55]}_{digest}"
