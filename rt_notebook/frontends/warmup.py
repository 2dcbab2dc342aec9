"""Front end, cold start: what ``%load_ext rt_notebook`` prepares in the background.

The first ``%%realtime`` answer would otherwise pay for importing the SDK, pydantic and
the Markdown parser and for starting the embedded offline server, a second or more on a
laptop. Loading the extension must itself stay quick, so a daemon thread does that work
right after it, in the order "Run All" (``connect()`` then the first cell, no pause) needs
it, since that path waits on whatever this thread is doing: the SDK and its client's
first-use costs (the Realtime resources, the platform headers), then, when no credentials
or URL are configured (the first cell will use the offline server), the process-wide
embedded server and the models it validates with; then the package's modules, the widget
modules first (the package has no import cycles, so the cell's thread and this one cannot
deadlock on import locks); then, offline and if no Session was made meanwhile, one
rehearsal connection to the embedded server through the SDK, which runs, once, every
first-use path of a connection on both sides. No credential is used but the embedded
server's own token, and nothing leaves loopback. Nothing here runs at ``import
rt_notebook``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import json
import logging
import os
import threading
from collections.abc import Iterator

__all__ = ["MODULES", "start"]

log = logging.getLogger(__name__)

# What "Run All" needs, in the order it needs it. ``connect()`` first: the SDK (then its
# client's first-use costs and, offline, the embedded server: see _warm). Then anywidget
# and ipywidgets, for the events hub of the answers' footers and the stream hub answers
# stream through: the sooner a first cell makes that hub, the sooner the page says it is
# ready and the answer streams. Then the rest of connect() and the views.
MODULES = (
    "openai",
    "rt_notebook.widgets.events",
    "rt_notebook.widgets.stream",
    "websockets.asyncio.client",
    "rt_notebook.client.session",
    "rt_notebook.protocol.setting_checks",  # a Session checks its settings when made
    "rt_notebook.render.cell",
    "rt_notebook.render.inspector_pane",  # the footers' events links
    "rt_notebook.render.approval",
    "rt_notebook.render.voice",
    "rt_notebook.client.voice_switch",  # a text cell asks what voice controls left it to say
    "rt_notebook.tools",
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
        offline = not any(os.environ.get(setting) for setting in _ONLINE_SETTINGS)
        with _collector_paused():
            _import(offline)
        if offline:
            from ..client.registry import any_session

            # A cell that already made a Session runs every first-use path itself; a
            # rehearsal beside it would only compete for the interpreter (on a busy
            # machine, the first answer would wait for it).
            if not any_session():
                asyncio.run(_rehearse())
    except Exception:  # only a head start: the first cell reports any real problem
        log.debug("rt_notebook warm-up failed", exc_info=True)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while the imports run; what exists after them is then
    moved to the oldest generation.

    The imports make about 115,000 objects that live as long as the process (modules,
    classes, the SDK's pydantic models; a few hundred are garbage). Left to the collector,
    they are scanned in the young generations and then in a full collection, about 60 ms
    of the first answer's CPU in a kernel, all of it finding nothing. ``freeze()`` then
    ``unfreeze()`` moves every tracked object to the oldest generation without counting
    them as newly promoted, so the next full collection comes on its usual schedule and
    scans them then: nothing is kept from the collector, only the scans of the cold start
    are skipped. A cell running meanwhile has its cyclic garbage collected at that next
    full collection instead of sooner. Objects someone froze before (``gc.freeze()`` ahead
    of a fork) stay frozen: ``unfreeze()`` would release theirs too, so then the move is
    skipped and the young generation collects the imports' objects as it would have."""
    paused = gc.isenabled()
    theirs = gc.get_freeze_count()
    gc.disable()
    try:
        yield
    finally:
        if not theirs:
            gc.freeze()
            gc.unfreeze()
        if paused:
            gc.enable()


def _import(offline: bool) -> None:
    """The warm-up's imports and first-use costs, in the order "Run All" needs them."""
    importlib.import_module(MODULES[0])
    _warm_sdk_client(offline)
    if offline:
        # The package before any of its modules: its __init__ imports them, and a
        # module imported first here while a cell imports the package would be seen
        # half-initialised by one of the two threads (an import-lock cycle).
        importlib.import_module("rt_notebook.server")
        from ..client.transport import embedded_server
        from ..protocol.events import Dialect
        from ..server.validation import preload_models

        embedded_server(Dialect.GA)  # the first Session's server, listening
        preload_models()  # which validates the first events with the SDK's models
    for name in MODULES[1:]:
        importlib.import_module(name)
        if name == "rt_notebook.protocol.setting_checks":
            from ..protocol.events import Dialect
            from ..protocol.setting_checks import check_session

            # The settings check's validator over the SDK's types, built once.
            check_session({"type": "realtime", "output_modalities": ["text"]}, Dialect.GA)


def _warm_sdk_client(offline: bool) -> None:
    """The SDK client's first-use costs, paid once per process: the HTTP client every
    Session's SDK client shares (offline: one that loads no CA bundle; online: the TLS
    context of ``wss://`` connections too), the Realtime resources (imported on first use
    of ``client.realtime``) and the default headers (the platform's, which run ``uname``
    in a subprocess once)."""
    from openai import AsyncOpenAI

    from ..client.transport import shared_http_client

    http_client = shared_http_client(secure=not offline)
    client = AsyncOpenAI(api_key="unused-warm-up", http_client=http_client)
    client.realtime  # noqa: B018 - imports the resources
    client.default_headers  # noqa: B018 - the platform headers, cached by the SDK


async def _rehearse() -> None:
    """One short exchange with the embedded server (started if need be) on a connection of
    its own: every event a first cell sends, answered, so that both sides have run their
    first-use paths (the SDK's send path, the server's validation models and responder)."""
    from ..client.transport import DEFAULT_MODEL, Transport, resolve_endpoint
    from ..protocol import payloads
    from ..protocol.events import Dialect
    from ..server.validation import preload_models

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
