"""Widget layer: which kernel subshell handles a widget's messages while a cell runs.

ipykernel 7 delivers a comm's incoming messages to the shell that last published on it:
for a widget displayed by a cell that is the main shell, where a click waits behind the
blocked cell. :func:`route_to_subshell` sends a widget's messages to a subshell that
rt_notebook creates (once per kernel), whose own thread handles them while a cell blocks;
:func:`keep_frontend_subshell` keeps the subshell the front end chose (JupyterLab 4.6 sends
widget messages on one). Both use ipykernel 7 internals; where they are missing (other
kernels) nothing changes, and the widgets still work once the cell is not blocked.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import threading
from typing import Any

__all__ = ["keep_frontend_subshell", "route_to_subshell"]

log = logging.getLogger("rt_notebook")

_subshell_lock = threading.Lock()
_subshell_id: list[str] = []  # the subshell rt_notebook created, once per kernel


def keep_frontend_subshell(comm: Any) -> None:
    """Let a widget's messages (the composer's Enter and Stop) reach the kernel while a
    cell is running.

    JupyterLab 4.6 sends widget messages on a kernel subshell, but ipykernel 7 routes a
    comm's incoming messages to the subshell that last published on it, here the main
    shell that created the widget, which is busy while a cell runs: Stop could then not
    stop that cell's response. The widgets' handlers are quick and thread-safe, so keep
    the subshell the frontend chose. Kernels without that routing hook are left alone.
    """
    if comm is not None and callable(getattr(comm, "_reply_subshell_for", None)):
        comm._reply_subshell_for = lambda data, default: default


def route_to_subshell(widgets: list[Any]) -> bool:
    """Have the kernel deliver these widgets' messages on rt_notebook's own subshell.

    Returns whether it could (ipykernel 7 with subshells); otherwise nothing changes.
    """
    try:
        subshell_id = _own_subshell()
    except Exception as exc:  # not ipykernel 7, or its internals moved: degrade
        log.debug("rt_notebook: no kernel subshell for widget messages: %s", exc)
        return False
    for widget in widgets:
        comm = getattr(widget, "comm", None)
        if comm is None or not hasattr(comm, "_reply_subshell_for"):
            return False
        comm._reply_subshell_for = lambda _data, _default: subshell_id
    return True


def _own_subshell() -> str:
    with _subshell_lock:
        if _subshell_id:
            return _subshell_id[0]
        from IPython import get_ipython

        shell: Any = get_ipython()
        manager = shell.kernel.shell_channel_thread.manager
        created: concurrent.futures.Future[str] = concurrent.futures.Future()

        def create() -> None:
            # Subshells are created on the shell-channel thread.
            try:
                created.set_result(manager._create_subshell())
            except BaseException as exc:
                with contextlib.suppress(concurrent.futures.InvalidStateError):
                    created.set_exception(exc)

        manager._shell_channel_io_loop.add_callback(create)
        _subshell_id.append(created.result(10))
        return _subshell_id[0]
