"""Front end: the last error of this kernel as the message ``%realtime fix`` sends.

The error is the one IPython last reported (``sys.last_value`` and ``sys.last_traceback``,
set by IPython whenever a cell ends in an exception, ``%tb`` reads the same). Its cell is
found through the traceback: the outermost frame whose file IPython compiled for a cell
(``shell.compile._filename_map``, the same map that makes tracebacks say ``Cell In[3]``;
a ``SyntaxError`` names that file itself), and the source is that cell as typed (the raw
input history). The traceback is formatted from the cell's frame on (IPython's own frames
left out), file names of cells written ``In[N]``.

Everything sent is cleaned: ANSI colour codes stripped, credentials scrubbed
(:func:`~rt_notebook.redaction.scrub`, registered keys and anything that looks like a
credential setting), and bounded: the source to :data:`SOURCE_LIMIT` characters (its start
kept), the traceback to :data:`TRACEBACK_LIMIT` (its end kept: the error is the last line),
each with a note saying how much was left out.
"""

from __future__ import annotations

import re
import sys
import traceback
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from ..redaction import scrub
from ..render.markdown import fenced

__all__ = ["SOURCE_LIMIT", "TRACEBACK_LIMIT", "LastError", "fix_message", "last_error"]

SOURCE_LIMIT = 4000  # characters of the failing cell's source sent
TRACEBACK_LIMIT = 6000  # characters of the traceback sent (the last ones)
QUESTION = "This cell failed. Why, and how do I fix it?"
# CSI sequences (colours, cursor moves) and the two-character escapes IPython may print.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")


@dataclass(frozen=True)
class LastError:
    """The last error, cleaned: the cell it came from (if known) and its traceback."""

    number: int | None  # the execution count of the failing cell (``In[N]``)
    source: str | None  # that cell as typed, bounded
    traceback: str  # bounded


def strip_ansi(text: str) -> str:
    """``text`` without terminal colour and cursor codes."""
    return _ANSI.sub("", text)


def _head(text: str, limit: int, what: str) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… [{len(text) - limit} more characters of the {what} left out]"


def _tail(text: str, limit: int, what: str) -> str:
    if len(text) <= limit:
        return text
    return f"[{len(text) - limit} characters of the {what} left out] …\n" + text[-limit:]


def last_error(shell: Any) -> LastError | None:
    """This kernel's last error (see the module docstring), or ``None`` if none yet."""
    error = getattr(sys, "last_value", None)
    if error is None:
        return None
    cells: dict[str, int] = dict(getattr(getattr(shell, "compile", None), "_filename_map", {}))
    tb: TracebackType | None = getattr(sys, "last_traceback", None)
    start = tb
    while start is not None and start.tb_frame.f_code.co_filename not in cells:
        start = start.tb_next
    number = None
    if start is not None:
        number = cells[start.tb_frame.f_code.co_filename]
    elif isinstance(error, SyntaxError) and error.filename in cells:
        number = cells[str(error.filename)]
    text = "".join(traceback.format_exception(type(error), error, start))
    for filename, count in cells.items():
        text = text.replace(f'File "{filename}"', f"In[{count}]")
    source = _cell_source(shell, number)
    return LastError(
        number=number,
        source=None if source is None else _head(_clean(source), SOURCE_LIMIT, "cell"),
        traceback=_tail(_clean(text).rstrip("\n"), TRACEBACK_LIMIT, "traceback"),
    )


def _clean(text: str) -> str:
    return scrub(strip_ansi(text))


def _cell_source(shell: Any, number: int | None) -> str | None:
    if number is None:
        return None
    # The raw history holds the cell as typed (``In`` holds it translated to Python).
    history = getattr(shell, "history_manager", None)
    inputs = getattr(history, "input_hist_raw", None) or shell.user_ns.get("In", [])
    return str(inputs[number]) if 0 < number < len(inputs) else None


def fix_message(error: LastError) -> str:
    """The message ``%realtime fix`` sends: a question, the cell's source, the traceback
    (each fenced so that nothing in it can end its block early)."""
    parts = [QUESTION]
    if error.source is not None:
        parts.append(f"The cell (In[{error.number}]):\n\n{fenced(error.source, 'python')}")
    parts.append(f"The traceback:\n\n{fenced(error.traceback)}")
    return "\n\n".join(parts)
