"""Widgets: an answer streaming into a cell, append only (the page renders the Markdown).

:class:`AnswerStream` is the view a cell shows while its answer streams: a widget whose
own ES module is a few lines (it crosses the wire with each one opened) that waits for the
renderer installed by :class:`StreamHub` (``stream.js``, sent once per kernel: a widget
that is never displayed, made on first use like the events hub). The kernel sends each
answer's edits (:mod:`rt_notebook.render.stream_edits`) as the widget's custom messages;
no trait ever holds the text, so nothing is resent and nothing is saved. When the answer
ends the cell view replaces the widget's output with the final Markdown.

Every byte of a streaming message's framing is paid at every message (about four a
second), so the framing is kept small: an edit that only appends travels as the bare
string (the page reads a string as ``{"a": string}``), and each answer's model has a short
model id (:func:`short_model_id`) instead of a 32-character uuid: the comm id every
message names. The widget's open holds only what the page reads, and its module is a
one-line stub.

A widget whose answer ended is kept for the next answer (:func:`end_stream`,
:data:`KEPT` of them): the page forgets its text (a reset edit) once the cell's final
output replaced its view, and the next answer shows a new view of the same model, its
link and waiting line updated. The open (~730 B, and a module import in the page) and the
close are then paid once per kernel, not once per answer, and streaming starts without
waiting for the page to make a model.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import string
import threading
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from .subshells import route_to_subshell

__all__ = [
    "KEPT",
    "AnswerStream",
    "StreamHub",
    "end_stream",
    "open_stream",
    "short_model_id",
    "widget_bundle",
]

log = logging.getLogger("rt_notebook")

_HERE = Path(__file__).parent

# Each answer widget's module, on one line with single quotes (it crosses the wire with
# every widget opened, as a JSON string). ``r`` is the page's promise of the hub's
# renderer (stream.js resolves it). ``initialize`` must return at once (anywidget gives up
# on a model after 2 s): it queues the edits that arrive before the renderer (a reloaded
# page may load the answer's model before the hub's), says hello (a second hello asks the
# kernel for a snapshot), then hands the model and the queue over. ``render`` shows the
# waiting line, as text, until the renderer draws the view.
_STUB = (
    "const g=globalThis.__rtStream??={},r=g.ready??=new Promise(f=>g.resolve=f);"
    "export default{initialize({model:m}){const q=[],h=e=>q.push(e);"
    "m.on('msg:custom',h);m.send({hello:1});"
    "r.then(s=>{m.off('msg:custom',h);s.initialize(m,q)})},"
    "render({model:m,el}){el.textContent=m.get('waiting');return r.then(s=>s.render(m,el))}}"
)
_ids = itertools.count(1)
_DIGITS = string.digits + string.ascii_lowercase


def short_model_id() -> str:
    """A widget model id (and comm id) in 3 to 5 characters instead of a uuid's 32: every
    streaming message names it (about four a second).

    A base-36 counter makes it unique in this kernel, which is all a page needs: its
    widget manager is per kernel, and cleared when the kernel restarts. Two random
    base-36 characters follow (1,296 values) as insurance against the one place ids of
    another kernel meet ours: a notebook saved with widget state, whose stale models a
    page restores next to the new kernel's (a counter alone would restart at the same
    ids). Front ends take any string as a model id."""
    return _base36(next(_ids)) + secrets.choice(_DIGITS) + secrets.choice(_DIGITS)


def _base36(number: int) -> str:
    digits = ""
    while True:
        number, digit = divmod(number, 36)
        digits = _DIGITS[digit] + digits
        if not number:
            return digits


class StreamHub(anywidget.AnyWidget):
    """Installs the page's renderer of streamed answers (one per kernel, never shown)."""

    # Without its comment lines: the module crosses the wire once per kernel and page.
    _esm = "\n".join(
        line
        for line in (_HERE / "stream.js").read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("//")
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Set when a page installed the renderer: until then no answer opens a widget
        # (nbclient, papermill and front ends without widgets get the final output only,
        # and no widget state of any answer to save).
        self.ready = threading.Event()
        self.on_msg(self._handle_message)

    def _handle_message(self, _: Any, content: Any, buffers: Any) -> None:
        # Runs on the comm's thread (rt_notebook's subshell when there is one).
        if isinstance(content, dict) and content.get("event") == "ready":
            self.ready.set()


# DOMWidget traits the answer's view never reads, left out of its state: without them the
# page's model has its defaults (no classes, tooltip or tab index, no layout: no Layout
# widget is made), and anywidget's id of the module only names CSS, which there is none of.
_UNREAD = frozenset(
    {"_anywidget_id", "_dom_classes", "_view_count", "layout", "tabbable", "tooltip"}
)


class AnswerStream(anywidget.AnyWidget):
    """One answer as it streams (see the module docstring)."""

    _esm = _STUB

    key = traitlets.Unicode("").tag(sync=True)  # which answer the page's edits belong to
    waiting = traitlets.Unicode("").tag(sync=True)  # shown until the first text
    link = traitlets.Unicode("").tag(sync=True)  # the "events" link's href, or ""
    plain = traitlets.Bool(False).tag(sync=True)  # show text, not Markdown (--format text)

    @traitlets.default("keys")
    def _synced(self) -> list[str]:
        # Only what the page reads: the state crosses the wire with every answer.
        return [key for key in self.trait_names(sync=True) if key not in _UNREAD]

    def add_traits(self, **traits: Any) -> None:
        # anywidget adds its module and id as traits, each named in ``keys`` as it is added.
        super().add_traits(**traits)
        self.keys = self._synced()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Pages that made this widget's model, each saying hello: the first saw it open
        # and gets every edit; a later one (a reloaded page) missed some and needs a
        # snapshot, which the cell view sends at its next publish.
        self.hellos = 0
        self.snapshot_wanted = False
        self.on_msg(self._handle_message)

    def _handle_message(self, _: Any, content: Any, buffers: Any) -> None:
        # Runs on the comm's thread (rt_notebook's subshell when there is one).
        if isinstance(content, dict) and content.get("hello"):
            self.hellos += 1
            if self.hellos > 1:
                self.snapshot_wanted = True


# Answers' widgets kept for the next answers: one per answer streaming at once, as cells
# in the background can, up to this many; more are closed when their answer ends.
KEPT = 4

_lock = threading.Lock()
_hub: list[StreamHub] = []
_idle: list[AnswerStream] = []  # kept widgets whose answer ended (newest last)


def _made_hub() -> StreamHub | None:
    """This kernel's hub, made on first use (``None`` outside a Jupyter kernel)."""
    with _lock:
        if not _hub:
            from IPython import get_ipython

            shell = get_ipython()
            if shell is None or getattr(shell, "kernel", None) is None:
                return None  # a terminal: no page to stream to
            made = StreamHub()
            route_to_subshell([made])  # the page's "ready" arrives while a cell blocks
            _hub.append(made)
        return _hub[0]


def open_stream(*, waiting: str, link: str = "", plain: bool = False) -> AnswerStream | None:
    """A new answer's widget, or ``None`` where no page shows widgets (a terminal,
    nbclient): the answer is then shown when it is done."""
    try:
        made = _made_hub()
        if made is None or not made.ready.is_set():
            return None
        stream = _reused(waiting=waiting, link=link, plain=plain)
        if stream is None:
            stream = AnswerStream(
                model_id=short_model_id(),
                key=secrets.token_hex(4),
                waiting=waiting,
                link=link,
                plain=plain,
            )
            route_to_subshell([stream])  # a page's hello arrives while the cell blocks
    except Exception as exc:  # no comms here: the answer is shown when it is done
        log.debug("rt_notebook: no streaming widget: %s", exc)
        return None
    return stream


def _reused(*, waiting: str, link: str, plain: bool) -> AnswerStream | None:
    """A kept widget, its traits set for the new answer (one update message: only those
    that changed), or ``None`` when none is kept."""
    while True:
        with _lock:
            if not _idle:
                return None
            stream = _idle.pop()
        if stream.comm is None:
            continue  # closed since (``Widget.close_all()``): never shown again
        with stream.hold_sync():
            stream.waiting, stream.link, stream.plain = waiting, link, plain
        return stream


def end_stream(stream: AnswerStream) -> None:
    """Called once the answer's final output replaced the widget's view: the page forgets
    the answer's text, and the widget is kept for the next answer (or closed, past
    :data:`KEPT`). Run it in the answer's cell context: the reset belongs to that cell."""
    if stream.comm is None:
        return  # closed meanwhile (``Widget.close_all()``): sending is a no-op, keep none
    try:
        stream.send({"r": 1})  # a reset edit: no text of this answer stays in the page
    except Exception as exc:  # the comm is gone: nothing to keep
        log.debug("rt_notebook: streaming widget not kept: %s", exc)
        stream.close()
        return
    with _lock:
        if len(_idle) < KEPT:
            _idle.append(stream)
            return
    stream.close()


def widget_bundle(widget: Any) -> dict[str, Any]:
    """The display data that shows ``widget`` (its view), without a text fallback."""
    bundle = widget._repr_mimebundle_()
    data: dict[str, Any] = bundle[0] if isinstance(bundle, tuple) else bundle
    return data
