"""Cell view: where a ``--background --to-cell`` answer's code goes (a "Copy code" button).

Made by the cell, in the cell's context (its output area and parent header), as an empty
output below the answer; when the answer ends (on the Session's I/O thread) the output is
replaced by a :class:`~rt_notebook.widgets.copy_code.CopyCode` button, or by one line when
the answer has no code block or did not complete. The updates run in the captured
:mod:`contextvars`, so they land in the cell that asked, whatever runs meanwhile.
"""

from __future__ import annotations

import contextvars
import logging
from typing import TYPE_CHECKING, Any

from IPython.display import DisplayHandle, display

from .code_blocks import cell_text
from .markdown import safe_inline

if TYPE_CHECKING:
    from ..client.responses import ResponseHandle

__all__ = ["CopySlot"]

log = logging.getLogger("rt_notebook")


class CopySlot:
    """An output of this cell that becomes the answer's "Copy code" button."""

    def __init__(self) -> None:
        self._context = contextvars.copy_context()
        # IPython's display() is untyped; with display_id=True it returns a handle.
        self._display: DisplayHandle | None = display(  # type: ignore[no-untyped-call]
            {"text/plain": ""}, raw=True, display_id=True
        )

    def watch(self, handle: ResponseHandle) -> None:
        """Fill the slot when ``handle`` is done."""
        handle.add_done_callback(self._done)

    def _done(self, handle: ResponseHandle) -> None:
        try:
            self._context.run(self._fill, handle.status, handle.text)
        except Exception as exc:  # the output is gone (cell cleared): nothing to show
            log.debug("rt_notebook: no copy button: %s", exc)

    def _fill(self, status: str, text: str) -> None:
        if status != "completed":
            note = f"`--to-cell`: the answer is {safe_inline(status)}, so there is no code to copy."
            self._update({"text/markdown": note, "text/plain": note})
            return
        code = cell_text(text)
        if code is None:
            note = "`--to-cell`: the answer has no code block, so there is no code to copy."
            self._update({"text/markdown": note, "text/plain": note})
            return
        from ..widgets.copy_code import CopyCode
        from ..widgets.stream import widget_bundle

        button = CopyCode(code=code)
        lines = code.count("\n") + 1
        plain = f"[Copy code: {lines} line{'' if lines == 1 else 's'}]"
        self._update({**widget_bundle(button), "text/plain": plain})

    def _update(self, bundle: dict[str, Any]) -> None:
        if self._display is not None:
            self._display.update(bundle, raw=True)  # type: ignore[no-untyped-call]
