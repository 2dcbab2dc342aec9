"""Opt-in built-in function tools that let the model read this kernel's notebook state.

:func:`enable` registers four read-only tools on a Session (or on every Session):

* ``read_variable(name)``: a variable's repr, truncated;
* ``describe_dataframe(name, rows)``: shape, column types, a numeric summary and a few
  sampled rows of a pandas DataFrame (pandas is optional: without it no variable is one);
* ``read_cell(number)``: the source (as typed) and result (``Out[n]``) of an executed cell;
* ``read_last_error()``: the last exception raised in a cell, with its traceback.

They read the IPython user namespace and change nothing. Each is opt-in because values in
a kernel can be private: enabling them lets the model read any variable by name.
"""

from __future__ import annotations

import re
import reprlib
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import Tool, default_registry, function_tool, toolbox

if TYPE_CHECKING:
    from ..client.session import Session

__all__ = ["LIMIT", "enable", "make_tools"]

LIMIT = 4000  # characters of any one result sent to the model
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _truncate(text: str, limit: int = LIMIT) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"… [{len(text) - limit} more characters]"


def _repr(value: object) -> str:
    # reprlib keeps a huge list or dict from being formatted in full before truncation.
    short = reprlib.Repr()
    short.maxlevel = 4
    short.maxlist = short.maxtuple = short.maxset = short.maxfrozenset = short.maxdeque = 50
    short.maxdict = 30
    short.maxstring = short.maxother = LIMIT
    short.maxlong = 200
    return _truncate(short.repr(value))


class _Namespace:
    """The user namespace of the running IPython shell (``__main__`` without one)."""

    def __init__(self, shell: Any = None) -> None:
        self._shell = shell

    @property
    def shell(self) -> Any:
        if self._shell is not None:
            return self._shell
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - IPython is a dependency
            return None
        return get_ipython()

    def variables(self) -> dict[str, Any]:
        shell = self.shell
        if shell is None:
            return vars(sys.modules["__main__"])
        hidden = getattr(shell, "user_ns_hidden", {})
        return {k: v for k, v in shell.user_ns.items() if k not in hidden}

    def lookup(self, name: str) -> Any:
        variables = self.variables()
        if name not in variables or name.startswith("_"):
            public = sorted(k for k in variables if not k.startswith("_"))
            listed = ", ".join(public[:50]) + (" …" if len(public) > 50 else "")
            raise KeyError(f"no variable {name!r}; defined: {listed or 'none'}")
        return variables[name]


def make_tools(shell: Any = None) -> list[Tool]:
    """The notebook tools, reading ``shell``'s namespace (the running shell by default)."""
    namespace = _Namespace(shell)

    def read_variable(name: str) -> str:
        """Read the value (repr, truncated) of a variable defined in the notebook.

        Args:
            name: The variable's name, e.g. "df" or "results".
        """
        value = namespace.lookup(name)
        return f"{name}: {type(value).__module__}.{type(value).__qualname__} = {_repr(value)}"

    def describe_dataframe(name: str, rows: int = 5) -> str:
        """Describe a pandas DataFrame variable: shape, column types, summary, sample rows.

        Args:
            name: The DataFrame variable's name.
            rows: How many randomly sampled rows to include (at most 20).
        """
        frame = namespace.lookup(name)
        module = type(frame).__module__
        if not module.startswith("pandas") or not hasattr(frame, "dtypes"):
            hint = "" if "pandas" in sys.modules else " (pandas is not even imported)"
            raise TypeError(f"{name} is a {type(frame).__qualname__}, not a DataFrame{hint}")
        rows = max(0, min(rows, 20, len(frame)))
        sample = frame.sample(n=rows, random_state=0) if rows else frame.head(0)
        parts = [
            f"{name}: DataFrame with {frame.shape[0]} rows and {frame.shape[1]} columns",
            "column types:\n" + frame.dtypes.to_string(),
        ]
        numeric = frame.select_dtypes("number")
        if numeric.shape[1]:
            parts.append("numeric summary:\n" + numeric.describe().to_string())
        parts.append(f"{rows} sampled rows:\n" + sample.to_string(max_colwidth=60))
        return _truncate("\n\n".join(parts), 2 * LIMIT)

    def read_cell(number: int) -> dict[str, Any]:
        """Read the source code and the result of an executed notebook cell.

        Args:
            number: The cell's execution count, as in "In [3]" (3).
        """
        shell = namespace.shell
        if shell is None:
            raise LookupError("not running in IPython: there are no cells")
        # The raw history holds the cell as typed (``In`` holds it translated to Python).
        history = getattr(shell, "history_manager", None)
        inputs = getattr(history, "input_hist_raw", None) or shell.user_ns.get("In", [])
        if not 1 <= number < len(inputs):
            raise IndexError(f"no cell {number}: cells 1 to {len(inputs) - 1} have run")
        outputs = shell.user_ns.get("Out", {})
        result = _repr(outputs[number]) if number in outputs else None
        return {"number": number, "source": _truncate(inputs[number]), "result": result}

    def read_last_error() -> str:
        """Read the last error raised in the notebook, with its traceback."""
        error = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
        if error is None:
            return "no error has been raised in this kernel"
        lines = traceback.format_exception(type(error), error, error.__traceback__)
        return _truncate(_ANSI.sub("", "".join(lines)))

    functions: list[Callable[..., Any]] = [
        read_variable,
        describe_dataframe,
        read_cell,
        read_last_error,
    ]
    return [function_tool(function) for function in functions]


def enable(session: Session | None = None, *, shell: Any = None) -> list[Tool]:
    """Register the notebook tools on ``session`` (on every Session if ``None``)."""
    tools = make_tools(shell)
    for built in tools:
        if session is None:
            default_registry.add(built)
        else:
            toolbox(session).registry.add(built)
    return tools
