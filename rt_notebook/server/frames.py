"""Sans-I/O parsing of a client's text frame by the embedded server: an event, or the
``error`` that answers it.

Whatever a client sends, the embedded server answers with an ``error`` event and keeps the
connection, as the service does: :func:`parse_client_frame` never raises. What it refuses
(``invalid_json``):

- text that is not JSON (``NaN`` and ``Infinity`` included: Python's extensions), and JSON
  the parser cannot hold (nested deeper than Python's
  recursion limit, an integer longer than Python's digit limit);
- text with a lone UTF-16 surrogate (``"\\ud800"`` not followed by its pair): valid JSON
  escape syntax but not Unicode, so it could never be sent back in UTF-8 (the text of a
  message is echoed, stored, relayed to a model).

An event that parses but is not an object is refused by the caller (``invalid_type``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from rt_notebook.server import errors
from rt_notebook.server.errors import ErrorInfo

__all__ = ["parse_client_frame"]

# A JSON escape of a surrogate code unit (paired ones are fine: checked after parsing).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def parse_client_frame(text: str) -> Any | ErrorInfo:
    """The JSON value of ``text``, or the :class:`ErrorInfo` that refuses it."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        return errors.invalid_json(exc.msg)
    except RecursionError:
        return errors.invalid_json("it is nested too deeply")
    except ValueError as exc:  # e.g. an integer past Python's digit limit
        return errors.invalid_json(str(exc).split(";")[0].rstrip("."))
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        return errors.invalid_json("it holds a lone surrogate (\\ud800-\\udfff), not Unicode")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _has_lone_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
