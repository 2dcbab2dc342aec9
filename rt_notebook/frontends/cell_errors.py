"""Front end: rt_notebook's errors shown in the cell that raised them, as one line.

A key the server refuses, a server that cannot be reached or a ``--timeout`` that expired
is not a bug in the user's code, and a traceback through the magic machinery would bury
the one line that says what to do. So a :class:`~rt_notebook.errors.RealtimeError` that
ends a cell is shown as ``ErrorName: message``, the whole traceback only when the user
asked for tracebacks (``%xmode Verbose``, or ``%xmode Context`` typed although it is
IPython's default); ``%tb`` still shows the whole traceback.

IPython calls the handler of ``set_custom_exc`` and ignores what it returns, so the handler
publishes the error itself through ``shell._showtraceback``: ipykernel's sends the IOPub
``error`` message (what JupyterLab, Notebook 7 and nbclient draw and stop on) and keeps the
lines for the ``execute_reply``; the terminal's prints them. Every line is scrubbed, so a
verbose traceback's local variables show no key.
"""

from __future__ import annotations

import functools
from typing import Any

from ..errors import RealtimeError
from ..redaction import scrub

__all__ = ["BriefErrors"]

# Exception modes that show a traceback the user may have asked for (Plain, Minimal and
# the doctest modes get the one line).
_TRACEBACK_MODES = frozenset({"Verbose", "Context"})
_IPYTHON_DEFAULT_MODE = "Context"
_OWNER = "_rt_notebook_brief_errors"  # on the %xmode wrapper: whom it tells


class BriefErrors:
    """Shows each RealtimeError that ends a cell, in that cell (see the module docstring)."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        # Whether the user chose the exception mode (%xmode, or a profile's non-default
        # mode): IPython's default is Context, which alone must not mean "tracebacks".
        self.mode_chosen = self._mode() != _IPYTHON_DEFAULT_MODE

    def install(self) -> None:
        """Handle RealtimeError in every cell, and note each ``%xmode`` the user runs."""
        self.shell.set_custom_exc((RealtimeError,), self.handle)
        original = self.shell.find_line_magic("xmode")
        if original is None:
            return
        earlier = getattr(original, _OWNER, None)
        if earlier is not None:  # %reload_ext: the wrapper stays, and now tells this one
            self.mode_chosen = self.mode_chosen or earlier.mode_chosen
            setattr(original, _OWNER, self)
            return

        @functools.wraps(original)
        def xmode(parameter_s: str = "") -> Any:
            result = original(parameter_s)
            getattr(xmode, _OWNER).mode_chosen = True
            return result

        setattr(xmode, _OWNER, self)
        self.shell.register_magic_function(xmode, "line", "xmode")

    def handle(
        self, shell: Any, etype: type[BaseException], value: BaseException, tb: Any, **_: Any
    ) -> None:
        """IPython's custom-exception handler: publish the error; return nothing (ignored)."""
        shell._get_exc_info((etype, value, tb))  # sys.last_*: %tb and %debug find it
        if self.wants_traceback():
            stb = shell.InteractiveTB.structured_traceback(etype, value, tb)
        else:
            stb = [f"{etype.__name__}: {value}"]
        shell._showtraceback(etype, value, [scrub(line) for line in stb])

    def wants_traceback(self) -> bool:
        """Whether the user asked for tracebacks (see the module docstring)."""
        return self.mode_chosen and self._mode() in _TRACEBACK_MODES

    def _mode(self) -> str:
        return str(getattr(self.shell.InteractiveTB, "mode", _IPYTHON_DEFAULT_MODE))
