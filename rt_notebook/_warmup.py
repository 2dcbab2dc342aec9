"""Cold start: what ``%load_ext rt_notebook`` prepares in the background.

The first ``%%realtime`` answer would otherwise pay for importing the SDK, pydantic and
the Markdown parser and for starting the embedded offline server, a second or more on a
laptop. Loading the extension must itself stay quick, so a daemon thread does that work
right after it: imports (in the order the first cell needs them; the package has no import
cycles, so the cell's thread and this one cannot deadlock on import locks), the SDK's
Realtime resources (imported on first use of ``client.realtime``); then, when no
credentials or URL are configured (the first cell will use the offline server), the
process-wide embedded server and one rehearsal connection to it through the SDK, which
runs, once, every first-use path of a connection on both sides. No credential is used
but the embedded server's own token, and nothing leaves loopback. Nothing here runs at
``import rt_notebook``.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import threading

__all__ = ["MODULES", "start"]

log = logging.getLogger(__name__)

# What the first %%realtime cell imports, in that order.
MODULES = (
    "rt_notebook.session",
    "rt_notebook.protocol.setting_checks",  # a Session checks its settings when made
    "rt_notebook.render.cell",
    "rt_notebook.render.approval",
    "rt_notebook.render.voice",
    "rt_notebook.voice_switch",  # a text cell asks what voice controls left it to say
    "rt_notebook.widgets.events",  # anywidget: the first cell makes the events hub
    "rt_notebook.widgets.stream",  # and the stream hub its answer streams through
    "rt_notebook.tools",
    "openai",
    "websockets.asyncio.client",
)

# Any of these means the first Session may not be the offline one.
_ONLINE_SETTINGS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT")


def start() -> threading.Thread:
    """Warm the imports and, when offline, the embedded server, on a daemon thread."""
    thread = threading.Thread(target=_warm, name="rt_notebook-warmup", daemon=True)
    thread.start()
    return thread


def _warm() -> None:
    try:
        for name in MODULES:
            importlib.import_module(name)
        from openai import AsyncOpenAI

        from .transport import shared_http_client

        # The HTTP client every Session's SDK client will share (its CA bundle loaded now).
        client = AsyncOpenAI(api_key="unused-warm-up", http_client=shared_http_client())
        client.realtime  # noqa: B018 - imports the resources
        from .protocol.events import Dialect
        from .protocol.setting_checks import check_session

        # The settings check's validator over the SDK's types, built once.
        check_session({"type": "realtime", "output_modalities": ["text"]}, Dialect.GA)
        if any(os.environ.get(setting) for setting in _ONLINE_SETTINGS):
            from .transport import shared_ssl_context

            shared_ssl_context()  # the first wss:// connection's CA bundle, loaded now
        else:
            # The package before any of its modules: its __init__ imports them, and a
            # module imported first here while a cell imports the package would be seen
            # half-initialised by one of the two threads (an import-lock cycle).
            importlib.import_module("rt_notebook.server")
            from ._registry import any_session

            # A cell that already made a Session runs every first-use path itself; a
            # rehearsal beside it would only compete for the interpreter (on a busy
            # machine, the first answer would wait for it).
            if not any_session():
                asyncio.run(_rehearse())
    except Exception:  # only a head start: the first cell reports any real problem
        log.debug("rt_notebook warm-up failed", exc_info=True)


async def _rehearse() -> None:
    """One short exchange with the embedded server (started if need be) on a connection of
    its own: every event a first cell sends, answered, so that both sides have run their
    first-use paths (the SDK's send path, the server's validation models and responder)."""
    from .protocol import payloads
    from .protocol.events import Dialect
    from .server.validation import preload_models
    from .transport import DEFAULT_MODEL, Transport, resolve_endpoint

    endpoint, key = resolve_endpoint(model=DEFAULT_MODEL, dialect=Dialect.GA, offline=True)
    preload_models()  # the server validates its first events with the SDK's models
    events = (
        {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}},
        {
            "type": "conversation.item.create",
            "item": payloads.message_item("hi", "user", Dialect.GA),
        },
        {"type": "response.create"},
    )
    async with Transport(endpoint, key).connection_manager() as connection:
        await connection.recv_bytes()  # session.created: the server has set the session up
        for event in events:
            await connection.send_raw(json.dumps(event))
        while b'"response.done"' not in await connection.recv_bytes():
            pass
