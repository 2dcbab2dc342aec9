"""Client layer: the kernel's Sessions by name (``rt_notebook.connect``)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..redaction import Secret

if TYPE_CHECKING:
    from ..protocol.events import Dialect
    from ..protocol.turns import Timing
    from .session import Session

__all__ = ["any_session", "connect", "get_session", "sessions"]

log = logging.getLogger("rt_notebook")

_sessions: dict[str, Session] = {}
_sessions_lock = threading.Lock()


def _fingerprint(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the key replaced by a digest: compared, never kept."""
    shown = dict(options)
    key = shown.get("api_key")
    if isinstance(key, Secret):
        shown["api_key"] = "sha256:" + hashlib.sha256(key.reveal().encode()).hexdigest()[:16]
    return shown


def connect(
    name: str = "default",
    *,
    timeout: float = 30.0,
    model: str | None = None,
    api_key: str | Secret | None = None,
    base_url: str | None = None,
    websocket_base_url: str | None = None,
    dialect: str | Dialect | None = None,
    azure_endpoint: str | None = None,
    api_version: str | None = None,
    offline: bool | None = None,
    chat_base_url: str | None = None,
    chat_model: str | None = None,
    instructions: str | None = None,
    modalities: Sequence[str] | None = None,
    voice: str | None = None,
    settings: Mapping[str, Any] | None = None,
    timing: Timing | None = None,
) -> Session:
    """Return the connected Session called ``name``, creating it on first use.

    The keywords are :class:`Session` keywords (``None``: the Session's default);
    ``settings`` are more session settings (``update_session``'s keywords and fields);
    ``chat_base_url`` and ``chat_model`` put a local model's Chat Completions endpoint
    behind an embedded server. Passing options for an existing name replaces that Session
    with a new connection. With no ``OPENAI_API_KEY`` and no URL, the embedded offline
    server is started in this process (and said so once).
    """
    # The keywords are spelled out (no **options) so that a typo fails at the call, before
    # this frame exists; the key is wrapped first, so no frame below shows it (a verbose
    # traceback prints every frame's variables).
    api_key = Secret.wrap(api_key)
    from .session import Session

    given: dict[str, Any] = {
        "model": model,
        "api_key": api_key,
        "base_url": base_url,
        "websocket_base_url": websocket_base_url,
        "dialect": dialect,
        "azure_endpoint": azure_endpoint,
        "api_version": api_version,
        "offline": offline,
        "chat_base_url": chat_base_url,
        "chat_model": chat_model,
        "instructions": instructions,
        "modalities": modalities,
        "voice": voice,
        "settings": settings,
        "timing": timing,
    }
    options = {keyword: value for keyword, value in given.items() if value is not None}
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


def sessions() -> list[Session]:
    """The Sessions created through :func:`connect`, in creation order (a copy)."""
    with _sessions_lock:
        return list(_sessions.values())


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
