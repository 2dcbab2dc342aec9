"""Front end: the ChatPanel, a chat view onto a shared Session.

The panel is one more view of a :class:`~rt_notebook.client.session.Session`: items that
``%%realtime`` cells create appear in it as they stream, and what it sends is part of the
conversation the next cell sees. Several panels on one Session render the same snapshots,
so they agree.

The transcript is ONE widget (:class:`~rt_notebook.widgets.chat_view.ChatView`) whose
page code holds the message list: the kernel sends what changed (an entry added, text
appended to a streaming answer, a label changed; :mod:`rt_notebook.render.panel_doc`),
never the list, so a turn costs the same at message 1,000 as at message 10 and the panel
is a fixed number of widget models. Bodies are Markdown parsed in the kernel under the
project's policy and sent as plain-data trees; the page builds elements from a fixed list
and text nodes, never HTML.

Threads (``docs/architecture.md``):

* The Session's subscriber runs on the I/O thread: it records what changed and wakes the
  writer, nothing else.
* One writer thread per panel (a :class:`~rt_notebook.render.view_loop.ViewLoop`, as
  cells, voice turns and the inspector have) sends every op after construction: it adds
  and orders entries, appends what streamed (the first delta at once, then at most five messages a
  second per answer: each character is sent once as text, then once in its finished
  block) and always sends the exact final text.
* Enter, Send, Stop, Approve / Deny and a page's replay request arrive on whichever kernel
  thread delivers comm messages. Sending may have to connect first, so it is handed to one
  sender thread per panel and the comm thread returns at once.

Each message is sent as one turn (``Session.ask``): the message waits, unsent, until the
turns before it (a ``%%realtime`` cell's answer, say) are done. Meanwhile the panel shows
it at once as an *outgoing* bubble marked queued; the server's item replaces it when the
message is added. If Stop cancels the turn first, the bubble stays, marked not sent, so
the text is not silently lost (it is not part of the conversation or the exports).

Lifetime: widgets, the Session and the writer hold the panel only weakly, so a panel
that is dropped without :meth:`~ChatPanel.close` (and was never shown) is collected and
leaves no thread or subscriber behind. A shown panel lives until :meth:`~ChatPanel.close`
or the kernel's exit; either replaces its outputs by a static Markdown transcript, so a
saved notebook shows the conversation instead of a widget that cannot load.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextvars
import enum
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from IPython.display import display
from ipywidgets import Layout

from ..client.registry import connect, get_session
from ..client.responses import one_line, status_reason
from ..client.session import Session
from ..client.voice_switch import typed_modalities
from ..errors import RealtimeConnectionError, RealtimeError, ServerError
from ..protocol.conversation import (
    ErrorReceived,
    ItemAdded,
    ItemDeleted,
    ItemDelta,
    ItemDone,
    ItemUpdated,
    ResponseCreated,
    ResponseDone,
)
from ..protocol.options import ResponseOptions
from ..render.blocks import BlockScanner
from ..render.bounded import bounded_html, needs_bounds
from ..render.export import transcript_cells, transcript_data, transcript_markdown
from ..render.markdown import inline_code, safe_inline
from ..render.markdown_tree import markdown_tree
from ..render.panel_doc import (
    PANEL_MARKDOWN_LIMIT,
    Entry,
    PanelDoc,
    approval_entry,
    bounded_blocks,
    error_entry,
    is_streaming,
    item_body,
    item_meta,
    outgoing_entry,
    plain_text,
)
from ..render.stream_edits import common_prefix
from ..render.view_loop import ViewLoop
from ..tools import CallState, asking
from ..widgets.chat_view import ChatView
from ..widgets.composer import Composer
from ..widgets.pasted import PastedImage
from ..widgets.side import SideSlot

if TYPE_CHECKING:
    from ..client.responses import ItemSnapshot, ResponseHandle
    from ..protocol.conversation import Change
    from ..tools import ToolCall
    from ..widgets.events import EventsHub

__all__ = ["ChatPanel", "PanelState"]

log = logging.getLogger("rt_notebook")

# How often an idle writer looks at things no event announces (a closed connection, a
# Session replaced by ``%realtime reset``).
IDLE_POLL = 1.0
# Seconds between two messages of one streaming answer (the first delta goes at once):
# five a second keeps a paint at most 200 ms behind, and the message count (each costs
# about 450 bytes of framing) bounded by time, not by the number of deltas.
STREAM_INTERVAL = 0.2


class PanelState(enum.Enum):
    """What the status line says."""

    CONNECTING = "connecting"
    READY = "ready"
    RESPONDING = "responding"
    APPROVAL = "awaiting approval"
    ERROR = "error"
    DISCONNECTED = "disconnected"
    CLOSED = "closed"


@dataclass(slots=True)
class _Pending:
    """What changed since the writer last looked (filled under the panel's lock)."""

    items: set[str] = field(default_factory=set)  # items whose bubble may need rewriting
    responses: set[str] = field(default_factory=set)  # responses that started or ended
    layout: bool = True  # items were added, removed or moved, or an error arrived
    errors: list[str] = field(default_factory=list)  # new error messages, oldest first
    approvals: list[ToolCall] = field(default_factory=list)  # calls to ask about
    replay: bool = False  # a page asked for the whole list


@dataclass(slots=True, eq=False)
class _Outgoing:
    """A message this panel sent that is not (or never will be) in the conversation."""

    text: str
    key: str
    images: tuple[Any, ...] = ()  # image sources (pasted images as PastedImage), encoded late
    thumbs: tuple[str, ...] = ()  # the page's token of each pasted image ("" for others)
    item_id: str = ""  # known once its turn is submitted
    state: str = "queued"  # then "sent", or "stopped" / "failed" if it never got there
    settled: bool = False  # its turn ended without the server having the message
    # Writer thread only: what its entry shows, and (once settled) the item it stays after.
    shown: tuple[str, str] = ("", "")  # (item id, state)
    placed: bool = False
    anchor: str | None = None  # None: at the top


@dataclass(slots=True)
class _Bubble:
    """What one item's entry shows (writer thread only)."""

    key: str
    meta: dict[str, Any] = field(default_factory=dict)
    text: str = ""  # the message text the page has (blocks and tail)
    sealed: int = 0  # text[:sealed] is in finished blocks
    scanner: BlockScanner = field(default_factory=BlockScanner)
    body: list[Any] | None = None  # a call's or an output's body as shown
    final: bool = False  # the final state is shown
    cut: int | None = None  # text[cut:] is shown as plain text (past PANEL_MARKDOWN_LIMIT)
    plain: str = ""  # the plain text the page has (scrubbed)
    last_sent: float | None = None  # when its last streaming message went out


@dataclass(slots=True)
class _Layout:
    """The last layout (writer thread only): what a turn that only appends items reuses."""

    ids: tuple[str, ...]  # the conversation's item ids
    present: set[str]  # the same, as a set
    head: list[str]  # entries before the first item (anchored to none, or to a gone one)
    anchored: dict[str, list[str]]  # item id -> the entries that follow it
    body: list[str]  # item entries, each followed by its anchored entries
    small: set[str]  # every key that is not an item's


class _Wake:
    """What every thread calls to wake the panel's writer (``set()``, as an Event's)."""

    def __init__(self, loop: ViewLoop) -> None:
        self.set = loop.wake


class _Resources:
    """What a panel must release however it ends (close, garbage, kernel exit); holds no
    reference to the panel, so a finalizer can release it after the panel is gone."""

    def __init__(self, loop: ViewLoop) -> None:
        self.loop = loop
        self.unsubscribe: Callable[[], None] = lambda: None
        self.closers: list[Callable[[], None]] = []

    def release(self) -> None:
        self.unsubscribe()
        self.unsubscribe = lambda: None
        self.loop.stop()
        closers, self.closers = self.closers, []
        for close in closers:
            try:
                close()
            except Exception:  # one failure must not keep the rest open
                log.exception("rt_notebook: closing a chat panel's part failed")


def _weakly(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` (bound) called through a weak reference: a no-op once its object is gone."""
    ref = weakref.WeakMethod(method)

    def call(*args: Any) -> Any:
        bound = ref()
        return None if bound is None else bound(*args)

    return call


def _writer_step(ref: weakref.ReferenceType[ChatPanel]) -> Callable[[], bool]:
    """The writer's publish step (the panel's :class:`ViewLoop`): flush, then ask to be
    called again when a paced answer is due. It holds the panel only while flushing (a
    dropped panel's finalizer, or close(), stops the loop)."""

    def step() -> bool:
        panel = ref()
        if panel is None or panel._closed:
            return False
        delay = panel._flush()
        if delay is not None:
            panel._loop.again(delay)
        return False  # each answer is paced by the panel itself, not by the loop

    return step


# Panels shown in a notebook live until closed (the page still shows them).
_shown: set[ChatPanel] = set()
_shown_lock = threading.Lock()


def _close_shown_panels() -> None:
    """At the kernel's exit: each shown panel's outputs become its static transcript."""
    with _shown_lock:
        panels = list(_shown)
    for panel in panels:
        try:
            panel.close()
        except Exception:  # exiting: say nothing more
            log.debug("rt_notebook: closing a panel at exit failed", exc_info=True)


atexit.register(_close_shown_panels)


class ChatPanel:
    """A chat view of a Session: bubbles, a text box (Enter sends), Send, Stop, status.

    ``ChatPanel()`` uses the kernel's default Session (connecting in the background if
    needed); ``ChatPanel(session)`` a given one. Show it with :meth:`show` or as the last
    expression of a cell; :meth:`close` stops its threads and leaves the transcript, as
    Markdown, where the panel was shown.
    """

    def __init__(
        self,
        session: Session | None = None,
        *,
        name: str | None = None,
        title: str = "Realtime chat",
        placeholder: str = "Message (Enter sends, Shift+Enter adds a line)",
    ) -> None:
        self.name = name or (session.name if session is not None else "default")
        self.title = title
        self.notebook = notebook_name()  # which notebook's kernel this panel belongs to
        # Guards everything below that the I/O, comm, sender and writer threads share.
        self._lock = threading.Lock()
        # The writer: one view loop (wake, pull, pace, publish) on its own thread; every
        # op after construction is sent from it. Its pace is the panel's (per answer).
        step = _writer_step(weakref.ref(self))
        self._loop = ViewLoop(step, interval=0.0, idle=IDLE_POLL)
        self._wake = _Wake(self._loop)
        self._resources = _Resources(self._loop)
        self._pending = _Pending()
        self.session: Session | None = None
        # Follow the registry (``%realtime reset`` replaces the named Session) unless the
        # caller handed us a Session of their own.
        self._follow = session is None or get_session(session.name) is session
        self._sending = 0  # messages handed to the sender and not yet submitted as turns
        self._outgoing: list[_Outgoing] = []  # sent messages not in the conversation, in order
        self._thumbs: dict[str, tuple[str, ...]] = {}  # user item id -> its pasted images' tokens
        self._sent_count = 0
        self._stop_generation = 0  # bumped by Stop: sends queued before it give up
        self._connecting = False
        self._error: str | None = None  # shown in the status line until the next response
        self._error_log: list[str] = []  # every error shown, for the exports
        self._closed = False
        self._sidecar: Any = None  # the Sidecar the panel was shown in, if any
        self._side_widgets: list[Any] = []  # the inline slot of show(sidecar=True)
        # Where the panel was shown: (the cell's context, display handle), for the static
        # transcript that replaces it on close.
        self._displays: list[tuple[contextvars.Context, Any]] = []
        self._asked: list[ToolCall] = []  # calls this panel was asked to approve
        self._decisions: dict[str, ToolCall] = {}  # approval key -> its call
        self._outcomes: dict[ToolCall, str] = {}  # decided calls -> what their row says
        self._clock: Callable[[], float] = time.monotonic  # tests freeze it to check pacing
        self._sender = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="rt_notebook-chat-send"
        )
        # Writer-thread state below: touched only by the writer (or here, before it starts).
        self._doc = PanelDoc()  # what the page shows
        self._bubbles: dict[str, _Bubble] = {}  # item id -> its entry
        self._item_keys: dict[str, str] = {}  # item id -> its entry's key
        self._layout: _Layout | None = None
        self._waiting: set[str] = set()  # item ids whose entry may be behind
        self._error_entries: list[tuple[str | None, str, str]] = []  # (anchor, key, message)
        self._approval_keys: dict[str, list[str]] = {}  # function-call item id -> rows
        self._approval_shown: dict[str, str] = {}  # approval key -> outcome shown ("" open)
        self._shown_status: tuple[PanelState, str] | None = None
        self._last_connected: bool | None = None
        self._events_hub = _events_hub()  # made here, on the cell's thread
        self._build_widgets(placeholder)
        self._resources.closers += [self._sender_shutdown(), *self._widget_closers()]
        self._start_session(session)
        self._flush()  # the history is visible as soon as the panel is
        self._writer = threading.Thread(
            target=self._loop.serve,
            name="rt_notebook-chat",
            daemon=True,
        )
        self._writer.start()
        # Dropped without close(): the subscription, threads and widgets go with it.
        self._finalizer = weakref.finalize(self, self._resources.release)

    def __repr__(self) -> str:
        state, _ = self._state()
        return f"<rt_notebook.ChatPanel {self.name!r} {state.value}>"

    # Public methods for showing ------------------------------------------------------------

    def show(self, sidecar: bool = False, *, anchor: str = "split-right") -> None:
        """Display the panel: inline below the cell, or in JupyterLab's side area.

        ``sidecar=True`` opens it with the ``sidecar`` package (``anchor`` is where:
        ``split-right``, ``split-bottom``, ``tab-after``, ``right`` …). Front ends without
        a side area for widgets (Notebook 7, VS Code) show it inline, with a note saying so.
        """
        with _shown_lock:
            _shown.add(self)  # the page shows it: it lives until closed
        if not sidecar:
            self._display(self.widget)
            return
        # Only the browser knows whether it has a side area: a small slot asks it, and
        # the answer (a comm message, after this cell) opens the side panel or fills the
        # box below the slot.
        holder = widgets.VBox([])
        place = _weakly(self._place)
        slot = SideSlot(lambda side, app: place(side, app, anchor, slot, holder))
        self._side_widgets = [slot, holder]
        self._display(widgets.VBox([slot, holder]))

    def _display(self, widget: Any) -> None:
        handle = display(widget, display_id=True)
        self._displays.append((contextvars.copy_context(), handle))

    def _place(self, side: bool, app: str, anchor: str, slot: SideSlot, holder: Any) -> None:
        """Comm thread: put the panel where the front end can show it."""
        if self._closed:
            return
        if not side:
            where = app or "this front end"
            slot.note = f"{where} has no side area for widgets: the chat panel is shown here."
            holder.children = (self.widget,)
            return
        from sidecar import Sidecar

        self.widget.add_class("rt-chat-side")
        title = f"{self.title} · {self.notebook}" if self.notebook else self.title
        side_panel = Sidecar(title=title, anchor=anchor)
        # By widget state (not a display from this thread): the side panel's one output.
        side_panel.append_display_data(self.widget)
        self._sidecar = side_panel
        slot.note = "The chat panel is in the side area."

    def _ipython_display_(self) -> None:
        self.show()

    def close(self) -> None:
        """Stop listening, stop the threads, close the widgets, and leave the transcript
        (Markdown) where the panel was shown."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        with _shown_lock:
            _shown.discard(self)
        self._resources.unsubscribe()
        self._loop.stop()
        if self._writer is not threading.current_thread():
            self._writer.join(5)
        self._show_static()
        self._finalizer()  # everything else (runs once)
        for widget in self._side_widgets:
            widget.close()
        if self._sidecar is not None:
            self._sidecar.close()
        for call in self._asked:  # no one will click these any more
            call.interrupt()

    def static_bundle(self) -> dict[str, str]:
        """What replaces the panel's outputs when it is closed: the transcript as Markdown
        (renders anywhere: JupyterLab without the kernel, GitHub, nbconvert), and a line of
        plain text saying where it is (the transcript is not stored twice). Past the
        Markdown limit, also a bounded ``text/html`` drawing (as a cell's huge answer)."""
        head = f"**{safe_inline(self.title)}** · session {inline_code(self.name)} · closed"
        try:
            transcript = self.to_markdown()
        except Exception:  # the Session may be half gone at exit
            log.debug("rt_notebook: no transcript for a closed panel", exc_info=True)
            transcript = ""
        count = len(self.items) if transcript else 0
        plain = f"{self.title} (closed) · session {self.name} · {count} items (see the Markdown)"
        markdown = f"{head}\n\n{transcript}"
        bundle = {"text/markdown": markdown, "text/plain": plain}
        if needs_bounds(markdown):
            # Too long to render whole (a huge answer): front ends draw this instead, so a
            # reopened notebook does not block its page; the Markdown stays whole.
            bundle["text/html"] = bounded_html(markdown, limit=PANEL_MARKDOWN_LIMIT)
        return bundle

    def _show_static(self) -> None:
        """Replace the panel's outputs by its transcript (what a reopened notebook then
        shows, with no widget state needed)."""
        if not self._displays:
            return
        bundle = self.static_bundle()
        for context, handle in self._displays:
            try:
                context.run(handle.update, bundle, raw=True)
            except Exception:
                log.debug("rt_notebook: could not replace a panel's output", exc_info=True)
        self._displays.clear()

    def _sender_shutdown(self) -> Callable[[], None]:
        sender = self._sender
        return lambda: sender.shutdown(wait=False, cancel_futures=True)

    def _widget_closers(self) -> list[Callable[[], None]]:
        voice = self.voice
        parts = [*self._own_widgets, voice.microphone]
        # A widget's Layout is a model of its own, left open by the widget's close().
        layouts = [w.layout for w in parts if isinstance(getattr(w, "layout", None), Layout)]
        return [voice.close, *(widget.close for widget in [*self._own_widgets, *layouts])]

    # Public methods for the conversation ----------------------------------------------

    def send(
        self, text: str, images: Sequence[Any] = ()
    ) -> concurrent.futures.Future[ResponseHandle | None]:
        """Send ``text`` as a user message and its response, one turn, off the caller's thread.

        ``images`` (what ``session.ask(images=...)`` takes, or images pasted into the
        composer) follow the text, encoded and scaled down on the panel's sender thread; an
        image that cannot be sent fails the turn with a one-line error in the panel.
        The message shows at once (marked queued until the server has it). Returns a future
        of the turn's handle (``None`` if Stop came before the turn was submitted).
        """
        if not text.strip() and not images:
            raise ValueError("nothing to send: the message is empty")
        thumbs = tuple(image.token if isinstance(image, PastedImage) else "" for image in images)
        with self._lock:
            if self._closed:
                raise RealtimeError("this chat panel is closed")
            self._sent_count += 1
            outgoing = _Outgoing(text, f"o:{self._sent_count}", tuple(images), thumbs)
            self._sending += 1
            self._error = None
            generation = self._stop_generation
            self._outgoing.append(outgoing)
            self._pending.layout = True
        self._wake.set()
        return self._sender.submit(self._send_now, outgoing, generation)

    def stop(self) -> None:
        """Cancel the running response and any queued ones (``Session.cancel()``)."""
        with self._lock:
            self._stop_generation += 1
            session = self.session
        self.voice.interrupt()  # a spoken answer stops playing, truncated where heard
        if session is not None and session.connected:
            session.cancel()

    @property
    def state(self) -> PanelState:
        """What the status line shows."""
        return self._state()[0]

    @property
    def items(self) -> list[ItemSnapshot]:
        """The conversation's items (the Session's, in server order)."""
        session = self.session
        return session.items if session is not None else []

    # Public methods for exporting ------------------------------------------------------

    def to_markdown(self) -> str:
        """The transcript as Markdown (model text made safe)."""
        return transcript_markdown(self.items, self._errors())

    def to_dict(self) -> dict[str, Any]:
        """The transcript as plain data: session, items, responses, errors."""
        session = self.session
        items = self.items
        responses = []
        if session is not None:
            seen = dict.fromkeys(item.response_id for item in items if item.response_id)
            responses = [info for rid in seen if (info := session.response_info(rid))]
        return transcript_data(
            items,
            self._errors(),
            responses,
            session=self.name,
            model=session.model if session is not None else None,
            offline=session.endpoint.offline if session is not None else None,
        )

    def to_json(self, indent: int | None = 2) -> str:
        """The transcript as JSON text (see :meth:`to_dict`)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_cells(self) -> list[Any]:
        """The transcript as nbformat v4 cells: ``%%realtime`` cells with the answers as
        their outputs (a spoken answer's audio as ``<audio controls>``, a WAV data URL)."""
        return transcript_cells(self.items, self.name, audio=self.voice.audio())

    def to_notebook(self) -> Any:
        """The transcript as an nbformat v4 notebook of :meth:`to_cells`."""
        import nbformat.v4

        setup = nbformat.v4.new_code_cell("%load_ext rt_notebook")
        return nbformat.v4.new_notebook(cells=[setup, *self.to_cells()])

    def write_transcript(
        self, path: str | Path | None = None, format: str | None = None
    ) -> Path | None:
        """Write the transcript where reloads cannot lose it.

        With no ``path``: as ordinary output of the current cell (``format`` ``markdown``,
        the default, or ``json``). With a ``path``: to that file, in the format its suffix
        names (``.md``, ``.json``, ``.ipynb``) unless ``format`` says otherwise.
        """
        if path is None:
            self._display_transcript(format or "markdown")
            return None
        path = Path(path)
        chosen = format or {".json": "json", ".ipynb": "ipynb"}.get(path.suffix, "markdown")
        if chosen == "json":
            path.write_text(self.to_json() + "\n", encoding="utf-8")
        elif chosen == "ipynb":
            import nbformat

            nbformat.write(self.to_notebook(), str(path))
        elif chosen == "markdown":
            path.write_text(self.to_markdown(), encoding="utf-8")
        else:
            raise ValueError(f"format must be 'markdown', 'json' or 'ipynb', not {format!r}")
        return path

    def _display_transcript(self, format: str) -> None:
        if format == "json":
            data = self.to_dict()
            display({"application/json": data, "text/plain": self.to_json()}, raw=True)
        elif format == "markdown":
            text = self.to_markdown()
            display({"text/markdown": text, "text/plain": text}, raw=True)
        else:
            raise ValueError(f"format must be 'markdown' or 'json', not {format!r}")

    def _errors(self) -> list[str]:
        with self._lock:
            return list(self._error_log)

    # Widgets (built on the caller's thread) ----------------------------------------------

    def _build_widgets(self, placeholder: str) -> None:
        self.view = ChatView(title=self.title, notebook=self.notebook, session=self.name)
        self.view.on_replay(_weakly(self._on_replay))
        self.view.on_decide(_weakly(self._on_decide))
        _route_clicks(self.view)  # Approve / Deny work while a cell blocks the shell
        self.composer = Composer(placeholder=placeholder)
        self.composer.on_submit(_weakly(self._on_submit))
        self.composer.on_stop(_weakly(self.stop))
        from .chat_voice import PanelVoice

        self.voice = PanelVoice(self._wake.set)  # the microphone and spoken answers
        self.widget = widgets.VBox(
            [self.view, self.composer, self.voice.widget], _dom_classes=("rt-chat",)
        )
        self._own_widgets = [self.view, self.composer, self.voice.widget, self.widget]

    def _on_submit(self, text: str, images: list[PastedImage]) -> None:
        # On the comm thread: hand over and return (images are encoded by the sender).
        if (text.strip() or images) and not self._closed:
            self.send(text, images)

    def _on_replay(self) -> None:
        # On the comm thread: the writer sends the list (every op comes from the writer).
        with self._lock:
            self._pending.replay = True
        self._wake.set()

    def _on_decide(self, key: str, allow: bool) -> None:
        # On the comm thread: resolve the call's decision (thread-safe), nothing more.
        with self._lock:
            call = self._decisions.get(key)
        if call is None:
            return
        if allow:
            call.approve()
        else:
            call.deny()

    # Session attachment --------------------------------------------------------------

    def _start_session(self, session: Session | None) -> None:
        if session is None:
            session = get_session(self.name)
        if session is not None:
            self._attach(session)
            if session.connected:
                return
        self._connecting = True
        self._sender.submit(self._connect, session)

    def _connect(self, session: Session | None) -> None:
        """Sender thread: connect (creating the named Session if there is none)."""
        try:
            if session is None:
                self._attach(connect(self.name))
            else:
                session.connect()
        except RealtimeError as exc:
            self._report_error(f"could not connect: {exc}")
        finally:
            with self._lock:
                self._connecting = False
                self._pending.layout = True
            self._wake.set()

    def _attach(self, session: Session) -> None:
        with self._lock:
            if self.session is session or self._closed:
                return
            self._resources.unsubscribe()
            self.session = session
            # Weakly: a dropped panel must not be kept alive by its Session.
            self._resources.unsubscribe = session.subscribe(_weakly(self._on_changes))
            self._pending.layout = True
        self.voice.attach(session)
        self._wake.set()

    # I/O thread: the subscriber ----------------------------------------------------------

    def _on_changes(self, session: Session, changes: Sequence[Change]) -> None:
        """Record what changed and wake the writer; runs on the I/O thread, so no more."""
        with self._lock:
            if session is not self.session:
                return
            pending = self._pending
            for change in changes:
                if isinstance(change, ItemDelta | ItemUpdated | ItemDone):
                    pending.items.add(change.item_id)
                elif isinstance(change, ItemAdded | ItemDeleted):
                    pending.items.add(change.item_id)
                    pending.layout = True
                elif isinstance(change, ResponseCreated):
                    pending.responses.add(change.response_id)
                    self._error = None
                elif isinstance(change, ResponseDone):
                    pending.responses.add(change.response_id)
                elif isinstance(change, ErrorReceived):
                    self._note_error(str(ServerError(change.error)))
        self._wake.set()

    def _note_error(self, message: str) -> None:
        """Queue an error bubble and show it in the status line (hold the lock)."""
        self._error = message
        self._error_log.append(message)
        self._pending.errors.append(message)
        self._pending.layout = True

    def _report_error(self, message: str) -> None:
        with self._lock:
            self._note_error(message)
        self._wake.set()

    # Sender thread -----------------------------------------------------------------------

    def _send_now(self, outgoing: _Outgoing, generation: int) -> ResponseHandle | None:
        try:
            if self._stopped_since(generation):
                self._settle(outgoing, "stopped")  # Stop came before its turn existed
                return None
            session = self.session
            if session is None:
                raise RealtimeConnectionError("not connected (the connection attempt failed)")
            with asking(self._ask_approval):  # its tool calls are approved in this panel
                # While the microphone holds the output at audio, typed turns answer
                # as before.
                before = typed_modalities(session)
                options: ResponseOptions = {} if before is None else {"modalities": before}
                handle = session.ask(outgoing.text, images=_sources(outgoing.images), **options)
        except (RealtimeError, TimeoutError) as exc:
            self._settle(outgoing, "failed")
            self._report_error(str(exc))
            raise
        finally:
            with self._lock:
                self._sending -= 1
            self._wake.set()
        with self._lock:
            outgoing.item_id = handle.item_ids[0]
            self._pending.layout = True  # the server may have the message already
            if any(outgoing.thumbs):  # its bubble shows the pasted images' thumbnails
                self._thumbs[outgoing.item_id] = outgoing.thumbs
                self._pending.items.add(outgoing.item_id)
        self._wake.set()
        handle.add_done_callback(lambda done: self._turn_ended(outgoing, done))
        if self._stopped_since(generation):
            handle.cancel()  # Stop was pressed while the turn was being submitted
        return handle

    def _stopped_since(self, generation: int) -> bool:
        with self._lock:
            return self._stop_generation != generation

    def _turn_ended(self, outgoing: _Outgoing, handle: ResponseHandle) -> None:
        """I/O thread: settle the outgoing bubble and report what failed the turn."""
        try:
            handle.wait_items(0)  # done by now: raises if the message never got there
        except (RealtimeError, TimeoutError):
            failed = handle.error is not None
            self._settle(outgoing, "failed" if failed else "stopped")
        else:
            self._settle(outgoing, "sent")  # its item's bubble shows it (or it was deleted)
        error = handle.error
        # A ServerError's ``error`` event already reached the panel through the subscriber.
        if isinstance(error, RealtimeError) and not isinstance(error, ServerError):
            self._report_error(str(error))

    def _settle(self, outgoing: _Outgoing, state: str) -> None:
        """Mark a message that will not reach the conversation; its bubble stays in place."""
        with self._lock:
            outgoing.state = state
            outgoing.settled = True
            self._pending.layout = True
        self._wake.set()

    def _ask_approval(self, call: ToolCall) -> bool:
        """Tool worker: queue Approve / Deny for ``call`` under its bubble (False if closed)."""
        with self._lock:
            if self._closed:
                return False
            self._asked.append(call)
            self._pending.approvals.append(call)
            self._pending.layout = True
        wake, outcomes = self._wake, self._outcomes

        def decided(outcome: str) -> None:  # on the deciding thread
            outcomes[call] = call.error or outcome  # the error says why no one answered
            wake.set()  # the row and the status line change

        call.on_decided(decided)
        self._wake.set()
        return True

    # Writer thread -----------------------------------------------------------------------

    def _flush(self) -> float | None:
        """Bring the page's list up to date; return seconds until a paced update is due."""
        self._follow_registry()
        with self._lock:
            pending, self._pending = self._pending, _Pending(layout=False)
            session = self.session
        if session is not None and session.connected != self._last_connected:
            self._last_connected = session.connected
            pending.layout = True  # a (re)connect starts a fresh conversation
        delay = None
        if session is not None:
            for call in pending.approvals:
                self._add_approval(call)
            self._settle_approvals()
            self._say_why_failed(session, pending)
            if pending.layout or pending.errors:
                self._relayout(session, pending.errors)
            self._mark_waiting(session, pending)
            delay = self._publish_waiting(session, self._clock())
        self.voice.sync()
        self._update_status()
        if pending.replay:
            self.view.publish(self._doc.reset())
        return delay

    def _publish(self, op: dict[str, Any]) -> None:
        self.view.publish(op)

    def _follow_registry(self) -> None:
        session = self.session
        if self._follow and session is not None:
            current = get_session(session.name)
            if current is not None and current is not session:
                self._attach(current)

    # Layout: which entries, in which order ---------------------------------------------

    def _relayout(self, session: Session, new_errors: Sequence[str]) -> None:
        """Put new entries in place and move or remove the others.

        Ids, and a copy of only the items new to the panel: every turn changes the layout,
        and a long conversation must not be walked each time. When the conversation only
        grew at its end (the usual turn) and nothing anchored to an item changed, only
        the new items are handled; otherwise the whole order is rebuilt."""
        ids = session.item_ids()
        last = self._layout
        appended, present, grown = self._items_since(ids, last)
        anchor = ids[-1] if ids else None
        for message in new_errors:
            key = f"e:{len(self._error_entries)}"
            self._error_entries.append((anchor, key, message))
        queued, settled = self._outgoing_entries(present, anchor)
        # What stays after an item: its approval rows, then settled messages, then errors.
        after: dict[str | None, list[str]] = {}
        for item_id, approvals in self._approval_keys.items():
            after.setdefault(item_id, []).extend(approvals)
        for a, key in [*settled, *((a, k) for a, k, _ in self._error_entries)]:
            after.setdefault(a, []).append(key)
        head = [k for a, k, _ in self._error_entries if a is None or a not in present]
        head += [k for a, k in settled if a is None or a not in present]
        anchored = {a: v for a, v in after.items() if a is not None and a in present}
        small = {*head, *queued, *(k for v in anchored.values() for k in v)}
        keys = self._item_keys
        gone: set[str] | None = None  # found by arrange()
        if (
            last is not None
            and grown
            and head == last.head
            and anchored == last.anchored
            and not any(a in anchored for a in appended)
        ):
            body = last.body  # only the new items are new
            body.extend(map(keys.__getitem__, appended))
            candidates = [*head, *body[len(body) - len(appended) :], *queued]
            gone = last.small - small
        else:
            body = list(map(keys.__getitem__, ids))
            positions = sorted(((ids.index(a), v) for a, v in anchored.items()), reverse=True)
            for position, extra in positions:
                body[position + 1 : position + 1] = extra
            candidates = [*head, *body, *queued]
        wanted = [*head, *body, *queued]
        self._put_new(session, candidates, wanted, body)
        for op in self._doc.arrange(wanted, gone):
            self._publish(op)
        self._layout = _Layout(ids, present, head, anchored, body, small)

    def _items_since(
        self, ids: tuple[str, ...], last: _Layout | None
    ) -> tuple[tuple[str, ...], set[str], bool]:
        """The items added since the last layout, the set of all, and whether the
        conversation only grew at its end (else every item counts as new, and the
        bubbles of deleted items are dropped)."""
        keys = self._item_keys
        if last is not None and len(ids) >= len(last.ids) and ids[: len(last.ids)] == last.ids:
            appended = ids[len(last.ids) :]
            last.present.update(appended)
            for item_id in appended:
                keys.setdefault(item_id, f"i:{item_id}")
            return appended, last.present, True
        present = set(ids)
        for gone in self._bubbles.keys() - present:
            del self._bubbles[gone]
            self._waiting.discard(gone)
        for gone in keys.keys() - present:
            del keys[gone]
        for item_id in ids:
            keys.setdefault(item_id, f"i:{item_id}")
        return ids, present, False

    def _put_new(
        self, session: Session, candidates: list[str], wanted: list[str], body: list[str]
    ) -> None:
        """Put the entries of ``candidates`` the page does not have yet, each after the
        entry before it in ``wanted`` (dropping items deleted meanwhile from both lists)."""
        for key in [key for key in candidates if key not in self._doc.entries]:
            entry = self._new_entry(session, key)
            if entry is None:  # an item deleted since (the next layout drops it)
                wanted.remove(key)
                if key in body:
                    body.remove(key)
                continue
            index = wanted.index(key)
            previous = wanted[index - 1] if index else None
            if previous is not None and previous not in self._doc.entries:
                previous = None  # (arrange() puts it in its place)
            self._publish(self._doc.put(entry, previous))

    def _new_entry(self, session: Session, key: str) -> Entry | None:
        kind, _, rest = key.partition(":")
        if kind == "i":
            item = session.item(rest)
            return None if item is None else self._new_bubble(session, item)
        if kind == "e":
            message = next(m for _, k, m in self._error_entries if k == key)
            return error_entry(key, message)
        if kind == "a":
            call = self._decisions[key]
            return approval_entry(key, key, call.label, call.arguments)
        outgoing = next((o for o in self._outgoing if o.key == key), None)
        if outgoing is None:
            return None
        return outgoing_entry(key, outgoing.item_id, outgoing.text, outgoing.state, outgoing.thumbs)

    def _outgoing_entries(
        self, present: set[str], last: str | None
    ) -> tuple[list[str], list[tuple[str | None, str]]]:
        """Bring the outgoing entries up to date: the queued ones, and the settled ones
        with the item each stays after. A message the server has is dropped (its item's
        bubble shows it now)."""
        with self._lock:
            outgoing = list(self._outgoing)
            states = [(o.item_id, o.state, o.settled) for o in outgoing]
        queued: list[str] = []
        settled: list[tuple[str | None, str]] = []
        gone: list[_Outgoing] = []
        for entry, (item_id, state, is_settled) in zip(outgoing, states, strict=True):
            if state == "sent" or (item_id and item_id in present):
                gone.append(entry)
                continue
            if entry.key in self._doc.entries and entry.shown != (item_id, state):
                fresh = outgoing_entry(entry.key, item_id, entry.text, state, entry.thumbs)
                self._publish(self._doc.meta(entry.key, fresh["meta"]))
            entry.shown = (item_id, state)
            if not is_settled:
                queued.append(entry.key)
                continue
            if not entry.placed:  # it stays where it was when its turn ended
                entry.placed, entry.anchor = True, last
            settled.append((entry.anchor, entry.key))
        if gone:
            with self._lock:
                self._outgoing = [o for o in self._outgoing if o not in gone]
        return queued, settled

    # Approvals ------------------------------------------------------------------------

    def _add_approval(self, call: ToolCall) -> None:
        key = f"a:{len(self._approval_shown)}"
        with self._lock:
            self._decisions[key] = call
        self._approval_shown[key] = ""
        self._approval_keys.setdefault(call.item_id, []).append(key)

    def _settle_approvals(self) -> None:
        """Rows whose call was decided (a click, an interrupt, a timeout) say how."""
        for key, shown in self._approval_shown.items():
            if shown or key not in self._doc.entries:
                continue
            call = self._decisions[key]
            outcome = self._outcomes.get(call)
            if outcome is None:
                continue
            self._approval_shown[key] = outcome
            settled = approval_entry(key, key, call.label, call.arguments, outcome)
            self._publish(self._doc.meta(key, settled["meta"]))
            with self._lock:
                self._decisions.pop(key, None)

    # Bubbles: one per item, streamed by appending ----------------------------------------

    def _new_bubble(self, session: Session, item: ItemSnapshot) -> Entry:
        """An item's first entry: all of it when it is done, else empty (the first delta
        then goes out at once)."""
        bubble = self._bubbles[item.id] = _Bubble(f"i:{item.id}")
        status = _response_status(session, item.response_id)
        shown = self.voice.shown(item)
        bubble.meta = self._item_meta(item, shown, status)
        blocks: list[Any] = []
        if item.type != "message":
            blocks = bubble.body = item_body(shown)
        elif not is_streaming(item, status):
            blocks, plain = bounded_blocks(shown.text)  # past the limit: plain text
            bubble.text, bubble.sealed, bubble.final = shown.text, len(shown.text), True
            return _bubble_entry(bubble.key, bubble.meta, blocks, plain)
        else:
            self._waiting.add(item.id)  # its text so far goes out with the first delta
        return _bubble_entry(bubble.key, bubble.meta, blocks)

    def _item_meta(
        self, item: ItemSnapshot, shown: ItemSnapshot, status: str | None
    ) -> dict[str, Any]:
        """A bubble's label and attributes, with the "events" link under an answer (the
        kernel's events hub catches the click; the href holds only ids)."""
        events = ""
        if self._events_hub is not None and item.response_id:
            events = self._events_hub.href(item.response_id)
        with self._lock:
            thumbs = self._thumbs.get(item.id, ())
        return item_meta(shown, status, events, self._footer(item, status), thumbs)

    def _footer(self, item: ItemSnapshot, status: str | None) -> str:
        """A line under an answer's bubble (plain text; "" for none): why it failed or
        stopped short (the server's or the backend's message, scrubbed, one line)."""
        if status not in ("cancelled", "failed", "incomplete") or self.session is None:
            return ""
        info = self.session.response_info(item.response_id or "") or {}
        reason = status_reason(status, info.get("status_details"))
        return f"{status} ({reason})" if reason else ""

    def _say_why_failed(self, session: Session, pending: _Pending) -> None:
        """A failed answer with no bubble of its own (the model never got to write) says
        why in an error bubble, unless the server's ``error`` event already said it."""
        for response_id in pending.responses:
            status, reason = _response_state(session, response_id)
            if status != "failed" or session.response_items(response_id):
                continue
            with self._lock:
                if reason and any(_says(shown, reason) for shown in self._error_log):
                    continue
                message = f"the answer failed: {reason or 'the server gave no reason'}"
                self._error = message
                self._error_log.append(message)
            pending.errors.append(message)

    def _mark_waiting(self, session: Session, pending: _Pending) -> None:
        for item_id in pending.items:
            if item_id in self._bubbles:
                self._waiting.add(item_id)
        for response_id in pending.responses:
            for item in session.response_items(response_id):
                if item.id in self._bubbles:
                    self._waiting.add(item.id)

    def _publish_waiting(self, session: Session, now: float) -> float | None:
        """Send what changed in the waiting bubbles; streaming ones at most every
        ``STREAM_INTERVAL`` seconds, the final state at once."""
        delay: float | None = None
        for item_id in list(self._waiting):
            bubble = self._bubbles.get(item_id)
            item = session.item(item_id)
            if bubble is None or item is None:
                self._waiting.discard(item_id)
                continue
            status = _response_status(session, item.response_id)
            streaming = is_streaming(item, status)
            if streaming and bubble.last_sent is not None:
                wait = bubble.last_sent + STREAM_INTERVAL - now
                if wait > 0:
                    delay = wait if delay is None else min(delay, wait)
                    continue
            self._waiting.discard(item_id)
            self._write_bubble(bubble, item, status, streaming, now)
        return delay

    def _write_bubble(
        self,
        bubble: _Bubble,
        item: ItemSnapshot,
        status: str | None,
        streaming: bool,
        now: float,
    ) -> None:
        shown = self.voice.shown(item)
        meta = self._item_meta(item, shown, status)
        key = bubble.key
        if key not in self._doc.entries:
            return  # not placed yet: the next layout puts it whole
        if item.type != "message":
            body = item_body(shown)
            if body != bubble.body:
                bubble.body, bubble.meta = body, meta
                self._publish(self._doc.put(_bubble_entry(key, meta, body), self._previous(key)))
            elif meta != bubble.meta:
                bubble.meta = meta
                self._publish(self._doc.meta(key, meta))
            bubble.last_sent = now
            return
        text = shown.text
        if streaming:
            if text != bubble.text:
                self._grow(bubble, text)
                bubble.last_sent = now  # (an empty bubble leaves the first delta free)
        elif not bubble.final or text != bubble.text:
            self._finish(bubble, text)
        if meta != bubble.meta:
            bubble.meta = meta
            self._publish(self._doc.meta(key, meta))

    def _grow(self, bubble: _Bubble, text: str) -> None:
        """Streaming: send the new text, and the blocks it finished, once each; past
        ``PANEL_MARKDOWN_LIMIT`` characters the rest as plain text (the page folds it)."""
        if not text.startswith(bubble.text):  # replaced, not appended: start over
            self._replace(bubble, "")
        if bubble.cut is None and len(text) > PANEL_MARKDOWN_LIMIT:
            # Bounded rendering: the blocks sealed so far stay; the tail and everything
            # after it go as plain text, never parsed by the page.
            bubble.cut = bubble.sealed
            tail = len(self._doc.entries[bubble.key]["tail"])
            self._publish(self._doc.grow(bubble.key, "", [], tail))
        if bubble.cut is not None:
            self._grow_plain(bubble, text)
            return
        new = text[len(bubble.text) :]
        boundary = bubble.scanner.feed(text)
        seal = None
        cut = 0
        if boundary > bubble.sealed:
            seal = markdown_tree(text[bubble.sealed : boundary])
            cut = boundary - bubble.sealed
            bubble.sealed = boundary
        self._publish(self._doc.grow(bubble.key, new, seal, cut))
        bubble.text = text

    def _grow_plain(self, bubble: _Bubble, text: str) -> None:
        """The plain rest of a bubble past the limit: what is new of it (scrubbed as a
        whole, so a key split between two messages is still removed)."""
        assert bubble.cut is not None
        plain = plain_text(text[bubble.cut :])
        keep = common_prefix(bubble.plain, plain)
        if keep < len(bubble.plain) or len(plain) > keep:
            back = keep if keep < len(bubble.plain) else None
            self._publish(self._doc.grow(bubble.key, "", plain=plain[keep:], keep=back))
        bubble.plain, bubble.text = plain, text

    def _finish(self, bubble: _Bubble, text: str) -> None:
        """The final text: the rest sealed, unless the page's blocks would then differ
        from the whole text rendered at once (a later link reference, a list's spacing):
        then the whole body once more, so what stays is exact. Past the limit, the
        rest of the plain text."""
        if len(text) > PANEL_MARKDOWN_LIMIT:
            if text.startswith(bubble.text):
                self._grow(bubble, text)  # the blocks stay, the rest is plain text
            else:
                blocks, plain = bounded_blocks(text)
                entry = _bubble_entry(bubble.key, bubble.meta, blocks, plain)
                self._publish(self._doc.put(entry, self._previous(bubble.key)))
                bubble.text, bubble.sealed, bubble.scanner = text, len(text), BlockScanner()
            bubble.final = True
            return
        whole = markdown_tree(text)
        if text.startswith(bubble.text):
            rest = markdown_tree(text[bubble.sealed :]) if bubble.sealed < len(text) else []
            if self._doc.entries[bubble.key]["blocks"] + rest == whole:
                new = text[len(bubble.text) :]
                cut = len(text) - bubble.sealed
                self._publish(self._doc.grow(bubble.key, new, rest, cut))
                bubble.text, bubble.sealed, bubble.final = text, len(text), True
                return
        self._replace(bubble, text, whole)
        bubble.final = True

    def _replace(self, bubble: _Bubble, text: str, blocks: list[Any] | None = None) -> None:
        entry = _bubble_entry(bubble.key, bubble.meta, blocks or [])
        self._publish(self._doc.put(entry, self._previous(bubble.key)))
        bubble.text, bubble.sealed, bubble.scanner = text, len(text), BlockScanner()
        bubble.cut, bubble.plain = None, ""

    def _previous(self, key: str) -> str | None:
        order = self._doc.order
        index = order.index(key)
        return order[index - 1] if index else None

    # Status --------------------------------------------------------------------------

    def _state(self) -> tuple[PanelState, str]:
        with self._lock:
            session, closed, error = self.session, self._closed, self._error
            busy, connecting = self._sending > 0, self._connecting
        if closed:
            return PanelState.CLOSED, ""
        if session is None or (connecting and not session.connected):
            if error is not None and not connecting:
                return PanelState.ERROR, error
            return PanelState.CONNECTING, ""
        if not session.connected:
            return PanelState.DISCONNECTED, "run %realtime connect, or send to reconnect"
        with self._lock:
            asking_now = any(c.state is CallState.AWAITING_APPROVAL for c in self._asked)
        if asking_now:
            return PanelState.APPROVAL, "Approve or Deny the tool call below"
        if busy or session.active_response_id is not None or session.pending_responses:
            return PanelState.RESPONDING, ""
        if error is not None:
            return PanelState.ERROR, error
        return PanelState.READY, ""

    def _update_status(self) -> None:
        state, detail = self._state()
        if (state, detail) == self._shown_status:
            return
        self._shown_status = (state, detail)
        session = self.session
        where = ""
        if session is not None:
            where = (
                "offline server (echo responder, not a real model)"
                if session.endpoint.offline
                else session.endpoint.local_model or f"model {session.model}"
            )
        parts = [state.value + ("…" if state in _ONGOING else "")]
        parts += [text for text in (detail, where) if text]
        self.view.status = {"state": state.value, "line": " · ".join(parts)}
        self.composer.responding = state is PanelState.RESPONDING


_ONGOING = frozenset({PanelState.CONNECTING, PanelState.RESPONDING})


def _says(message: str, reason: str) -> bool:
    """Whether an error ``message`` shown already says ``reason`` (a one-line, maybe cut,
    copy of a server's message)."""
    return reason.removesuffix("…")[:100] in one_line(message, limit=len(message) + 1)


def _sources(images: Sequence[Any]) -> list[Any]:
    """What ``session.ask(images=...)`` takes: a pasted image's bytes encoded here, named
    as the panel's user knows it ("pasted image 1: not a readable image")."""
    if not images:
        return []
    from ..client.images import image_part

    return [
        image_part(image.data, name=image.name) if isinstance(image, PastedImage) else image
        for image in images
    ]


def _events_hub() -> EventsHub | None:
    """The kernel's events hub (``None`` outside a kernel or without anywidget)."""
    try:
        from ..render.inspector_pane import events_hub
    except ImportError:
        return None
    return events_hub()


def notebook_name() -> str:
    """The file name of the notebook this kernel runs for, if the front end said ("")."""
    path = os.environ.get("JPY_SESSION_NAME", "")  # jupyter_server sets it per kernel
    if not path:
        try:
            from IPython import get_ipython

            shell = get_ipython()
            path = str((shell.user_ns if shell else {}).get("__vsc_ipynb_file__", ""))
        except ImportError:  # pragma: no cover - IPython is a dependency
            path = ""
    return os.path.basename(path)


def _bubble_entry(key: str, meta: dict[str, Any], blocks: list[Any], plain: str = "") -> Entry:
    entry: Entry = {"key": key, "kind": "bubble", "meta": meta, "blocks": blocks, "tail": ""}
    if plain:
        entry["plain"] = plain  # past the Markdown limit: folded plain text
    return entry


def _route_clicks(view: ChatView) -> None:
    """Have the view's messages (Approve / Deny, replay) handled on rt_notebook's kernel
    subshell, so a click counts while a cell blocks the main shell (see widgets/subshells)."""
    from ..widgets.subshells import route_to_subshell

    route_to_subshell([view])


def _response_status(session: Session, response_id: str | None) -> str | None:
    return _response_state(session, response_id)[0]


def _response_state(session: Session, response_id: str | None) -> tuple[str | None, str | None]:
    """A response's status and why it failed or stopped short (``None``: not said)."""
    if response_id is None:
        return None, None
    info = session.response_info(response_id)
    if info is None:
        return None, None
    status = str(info.get("status"))
    return status, status_reason(status, info.get("status_details"))
