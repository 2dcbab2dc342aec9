"""I/O layer: the kernel's Sessions by name (``rt_notebook.connect``)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .session import Session

__all__ = ["any_session", "connect", "get_session"]

log = logging.getLogger("rt_notebook")

_sessions: dict[str, Session] = {}
_sessions_lock = threading.Lock()


def _fingerprint(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the key replaced by a digest: compared, never kept."""
    shown = dict(options)
    if shown.get("api_key"):
        shown["api_key"] = (
            "sha256:" + hashlib.sha256(str(shown["api_key"]).encode()).hexdigest()[:16]
        )
    return shown


def connect(name: str = "default", *, timeout: float = 30.0, **options: Any) -> Session:
    """Return the connected Session called ``name``, creating it on first use.

    ``options`` are :class:`Session` keywords (model, api_key, base_url,
    websocket_base_url, dialect, azure_endpoint, api_version, offline, chat_base_url,
    chat_model, instructions, modalities, voice, settings, timing); ``settings`` are more
    session settings (``update_session``'s keywords and fields); ``chat_base_url`` and
    ``chat_model`` put a local model's Chat Completions endpoint behind an embedded server.
    Passing options for an existing name replaces that Session with a new connection.
    With no ``OPENAI_API_KEY`` and no URL, the embedded offline server is started in this
    process (and said so once).
    """
    from .session import Session

    fingerprint = _fingerprint(options)
    with _sessions_lock:
        session = _sessions.get(name)
        if session is not None and options and fingerprint != session.options:
            session.close()
            session = None
        if session is None:
            session = _sessions[name] = Session(name=name, **options)
            session.options = fingerprint
    session.connect(timeout)
    if session.endpoint.offline:
        _announce_offline(session)
    return session


def any_session() -> bool:
    """Whether any Session was created through :func:`connect` (cells, the panel)."""
    with _sessions_lock:
        return bool(_sessions)


def get_session(name: str = "default") -> Session | None:
    """The Session called ``name`` if one was created."""
    with _sessions_lock:
        return _sessions.get(name)


_announced = threading.Event()


def _announce_offline(session: Session) -> None:
    if _announced.is_set():
        return
    _announced.set()
    note = (
        f"no OPENAI_API_KEY and no URL, so this kernel talks to {session.endpoint.describe()}. "
        "Set OPENAI_API_KEY to use the real service."
    )
    shell = None
    if threading.current_thread() is threading.main_thread():  # a cell is running
        with contextlib.suppress(ImportError):
            from IPython import get_ipython

            shell = get_ipython()
    if shell is None:
        log.warning("rt_notebook: %s", note)
        return
    from IPython.display import display

    # A small note in the cell that connected, not an error-looking stderr box.
    bundle = {"text/markdown": f"*rt_notebook: {note}*", "text/plain": f"rt_notebook: {note}"}
    display(bundle, raw=True)  # type: ignore[no-untyped-call]
