"""Front end: the ChatPanel, an ipywidgets chat view onto a shared Session.

The panel is one more view of a :class:`~rt_notebook.session.Session`: items that
``%%realtime`` cells create appear in it as they stream, and what it sends is part of the
conversation the next cell sees. Several panels on one Session render the same snapshots,
so they agree.

Threads (``docs/architecture.md``):

* The Session's subscriber runs on the I/O thread: it records what changed and wakes the
  writer, nothing else.
* One writer thread per panel does every widget write after construction: it creates and
  orders bubbles, updates only the bubbles whose HTML changed, paces streaming bubbles
  with a :class:`~rt_notebook.render.pacing.Pacer` (bytes bounded by a multiple of the text)
  and always writes the exact final text.
* Enter, Send and Stop arrive on whichever kernel thread delivers comm messages (the main
  shell, or a JupyterLab subshell while a cell runs). Sending may have to connect first, so
  it is handed to one sender thread per panel and the comm thread returns at once.

Each message is sent as one turn (``Session.ask``): the message waits, unsent, until the
turns before it (a ``%%realtime`` cell's answer, say) are done. Meanwhile the panel shows
it at once as an *outgoing* bubble marked queued; the server's item replaces it when the
message is added. If Stop cancels the turn first, the bubble stays, marked not sent, so
the text is not silently lost (it is not part of the conversation or the exports).

Bubbles are ``ipywidgets.HTML`` fed HTML that :mod:`rt_notebook.widgets.bubbles` builds
from model text with raw HTML disabled; see that module for why this is safe.
"""

from __future__ import annotations

import concurrent.futures
import enum
import html
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from IPython.display import display

from .errors import RealtimeConnectionError, RealtimeError, ServerError
from .protocol.conversation import (
    ErrorReceived,
    ItemAdded,
    ItemDeleted,
    ItemDelta,
    ItemDone,
    ItemUpdated,
    ResponseCreated,
    ResponseDone,
)
from .render.approval import ApprovalButtons
from .render.pacing import Pacer
from .responses import one_line, status_reason
from .session import Session, connect, get_session
from .tools import CallState, asking
from .voice_switch import typed_modalities
from .widgets.bubbles import error_html, is_streaming, item_html, outgoing_html
from .widgets.composer import Composer
from .widgets.export import transcript_cells, transcript_data, transcript_markdown
from .widgets.side import SideSlot

if TYPE_CHECKING:
    from .protocol.conversation import Change
    from .responses import ItemSnapshot, ResponseHandle
    from .tools import ToolCall
    from .widgets.events import EventsHub

__all__ = ["ChatPanel", "PanelState"]

log = logging.getLogger("rt_notebook")

# How often an idle writer looks at things no event announces (a closed connection, a
# Session replaced by ``%realtime reset``).
IDLE_POLL = 1.0


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


@dataclass(slots=True, eq=False)
class _Outgoing:
    """A message this panel sent that is not (or never will be) in the conversation."""

    text: str
    item_id: str = ""  # known once its turn is submitted
    state: str = "queued"  # then "sent", or "stopped" / "failed" if it never got there
    settled: bool = False  # its turn ended without the server having the message
    # Writer thread only: the widget, its HTML, and (once settled) the item it stays after.
    widget: Any = None
    shown: tuple[str, str] = ("", "")  # (item id, state) its HTML shows
    placed: bool = False
    anchor: str | None = None  # None: at the top


@dataclass(slots=True)
class _Bubble:
    """One item's widget and what it shows (writer thread only)."""

    widget: Any  # ipywidgets.HTML
    pacer: Pacer
    html: str = ""
    waiting: bool = False  # its item changed and the new HTML is not shown yet


class ChatPanel:
    """A chat view of a Session: bubbles, a text box (Enter sends), Send, Stop, status.

    ``ChatPanel()`` uses the kernel's default Session (connecting in the background if
    needed); ``ChatPanel(session)`` a given one. Show it with :meth:`show` or as the last
    expression of a cell; :meth:`close` stops its threads.
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
        self._wake = threading.Event()
        self._pending = _Pending()
        self.session: Session | None = None
        self._unsubscribe: Callable[[], None] = lambda: None
        # Follow the registry (``%realtime reset`` replaces the named Session) unless the
        # caller handed us a Session of their own.
        self._follow = session is None or get_session(session.name) is session
        self._sending = 0  # messages handed to the sender and not yet submitted as turns
        self._outgoing: list[_Outgoing] = []  # sent messages not in the conversation, in order
        self._stop_generation = 0  # bumped by Stop: sends queued before it give up
        self._connecting = False
        self._error: str | None = None  # shown in the status line until the next response
        self._error_log: list[str] = []  # every error shown, for the exports
        self._closed = False
        self._stopping = threading.Event()  # set by close(): ends the writer's waits
        self._sidecar: Any = None  # the Sidecar the panel was shown in, if any
        self._side_widgets: list[Any] = []  # the inline slot of show(sidecar=True)
        self._asked: list[ToolCall] = []  # calls this panel was asked to approve
        self._clock: Callable[[], float] = time.monotonic  # tests freeze it to check pacing
        self._sender = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="rt_notebook-chat-send"
        )
        # Writer-thread state below: touched only by the writer (or here, before it starts).
        self._bubbles: dict[str, _Bubble] = {}
        self._error_bubbles: list[tuple[str | None, Any]] = []  # (anchor item id, widget)
        self._approval_rows: dict[str, list[Any]] = {}  # function-call item id -> rows
        self._shown_status: tuple[PanelState, str] | None = None
        self._last_connected: bool | None = None
        self._events_hub = _events_hub()  # made here, on the cell's thread
        self._build_widgets(placeholder)
        self._start_session(session)
        self._flush()  # the history is visible as soon as the panel is
        self._writer = threading.Thread(target=self._run, name="rt_notebook-chat", daemon=True)
        self._writer.start()

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
        if not sidecar:
            display(self.widget)
            return
        # Only the browser knows whether it has a side area: a small slot asks it, and
        # the answer (a comm message, after this cell) opens the side panel or fills the
        # box below the slot.
        holder = widgets.VBox([])
        slot = SideSlot(lambda side, app: self._place(side, app, anchor, slot, holder))
        self._side_widgets = [slot, holder]
        display(widgets.VBox([slot, holder]))

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
        """Stop listening, stop the threads and close the widgets."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            unsubscribe = self._unsubscribe
        unsubscribe()
        self._stopping.set()
        self._wake.set()
        self._writer.join(5)
        self.voice.close()
        self._sender.shutdown(wait=False, cancel_futures=True)
        for bubble in self._bubbles.values():
            bubble.widget.close()
        for _, widget in self._error_bubbles:
            widget.close()
        for outgoing in self._outgoing:
            if outgoing.widget is not None:
                outgoing.widget.close()
        for widget in self._own_widgets:
            widget.close()
        for rows in self._approval_rows.values():
            for row in rows:
                row.close()
        for widget in self._side_widgets:
            widget.close()
        if self._sidecar is not None:
            self._sidecar.close()
        for call in self._asked:  # no one will click these any more
            call.interrupt()

    # Public methods for the conversation ----------------------------------------------

    def send(self, text: str) -> concurrent.futures.Future[ResponseHandle | None]:
        """Send ``text`` as a user message and its response, one turn, off the caller's thread.

        The message shows at once (marked queued until the server has it). Returns a future
        of the turn's handle (``None`` if Stop came before the turn was submitted).
        """
        if not text.strip():
            raise ValueError("nothing to send: the message is empty")
        outgoing = _Outgoing(text)
        with self._lock:
            if self._closed:
                raise RealtimeError("this chat panel is closed")
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
        where = f" · <b>{html.escape(self.notebook)}</b>" if self.notebook else ""
        header = widgets.HTML(
            f'<span class="rt-chat-title">{html.escape(self.title)}</span>{where}'
            f" · session <code>{html.escape(self.name)}</code>",
            _dom_classes=("rt-chat-header",),
        )
        self._status = widgets.HTML("", _dom_classes=("rt-chat-status-line",))
        self._transcript = widgets.VBox([], _dom_classes=("rt-chat-transcript",))
        scroll = widgets.Box([self._transcript], _dom_classes=("rt-chat-scroll",))
        self.composer = Composer(placeholder=placeholder)
        self.composer.on_submit(self._on_submit)
        self.composer.on_stop(self.stop)
        from .chat_voice import PanelVoice

        self.voice = PanelVoice(self._wake.set)  # the microphone and spoken answers
        self.widget = widgets.VBox(
            [header, self._status, scroll, self.composer, self.voice.widget],
            _dom_classes=("rt-chat",),
        )
        self._own_widgets = [
            header,
            self._status,
            self._transcript,
            scroll,
            self.composer,
            self.widget,
        ]

    def _on_submit(self, text: str) -> None:
        # On the comm thread: hand over and return.
        if text.strip() and not self._closed:
            self.send(text)

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
            self._unsubscribe()
            self.session = session
            self._unsubscribe = session.subscribe(self._on_changes)
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
                extra: dict[str, Any] = {} if before is None else {"modalities": before}
                handle = session.ask(outgoing.text, **extra)
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
        call.on_decided(lambda _: self._wake.set())  # the status line changes
        self._wake.set()
        return True

    # Writer thread -----------------------------------------------------------------------

    def _run(self) -> None:
        delay: float | None = None
        while True:
            if delay is None:
                self._wake.wait(IDLE_POLL)
            else:
                # A paced update is pending: let events pile up until it is due instead
                # of waking for each delta (everything that arrives meanwhile goes out then).
                self._stopping.wait(min(delay, IDLE_POLL))
            self._wake.clear()
            if self._closed:
                return
            try:
                delay = self._flush()
            except Exception:  # a failed write must not end the panel's updates
                log.exception("chat panel update failed")
                delay = None

    def _flush(self) -> float | None:
        """Bring the widgets up to date; return seconds until a paced update is due."""
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
                buttons = ApprovalButtons(call)
                buttons.route()  # clicks are handled even while a cell blocks the shell
                buttons.widget.add_class("rt-approval")
                self._approval_rows.setdefault(call.item_id, []).append(buttons.widget)
            self._say_why_failed(session, pending)
            if pending.layout or pending.errors:
                self._relayout(session, pending.errors)
            self._mark_waiting(session, pending)
            delay = self._publish_waiting(session, self._clock())
        self.voice.sync()
        self._update_status()
        return delay

    def _follow_registry(self) -> None:
        session = self.session
        if self._follow and session is not None:
            current = get_session(session.name)
            if current is not None and current is not session:
                self._attach(current)

    def _relayout(self, session: Session, new_errors: Sequence[str]) -> None:
        # Ids, and a copy of only the items new to the panel: every turn changes the
        # layout, and a long conversation must not be copied each time.
        ids = session.item_ids()
        for item_id in ids:
            if item_id not in self._bubbles:
                item = session.item(item_id)
                if item is not None:  # None: deleted since (the next layout drops it)
                    self._bubbles[item_id] = self._new_bubble(session, item)
        present = set(ids)
        for gone in set(self._bubbles) - present:
            self._bubbles.pop(gone).widget.close()
        anchor = ids[-1] if ids else None
        for message in new_errors:
            widget = widgets.HTML(error_html(message), _dom_classes=("rt-chat-item",))
            self._error_bubbles.append((anchor, widget))
        queued, settled = self._outgoing_bubbles(present, anchor)
        # What stays after each item (settled messages, then errors), found in one pass.
        after: dict[str | None, list[Any]] = {}
        for a, w in [*settled, *self._error_bubbles]:
            after.setdefault(a, []).append(w)
        children = [w for a, w in self._error_bubbles if a is None or a not in self._bubbles]
        children += [w for a, w in settled if a is None or a not in self._bubbles]
        for item_id in ids:
            bubble = self._bubbles.get(item_id)
            if bubble is None:
                continue
            children.append(bubble.widget)
            children += self._approval_rows.get(item_id, [])
            children += after.get(item_id, [])
        children += queued  # after everything: their turns come after the running ones
        if tuple(children) != tuple(self._transcript.children):
            self._transcript.children = tuple(children)

    def _outgoing_bubbles(
        self, present: set[str], last: str | None
    ) -> tuple[list[Any], list[tuple[str | None, Any]]]:
        """Bring the outgoing bubbles up to date: the queued ones, and the settled ones
        with the item each stays after. A message the server has is dropped (its item's
        bubble shows it now)."""
        with self._lock:
            outgoing = list(self._outgoing)
            states = [(o.item_id, o.state, o.settled) for o in outgoing]
        queued: list[Any] = []
        settled: list[tuple[str | None, Any]] = []
        gone: list[_Outgoing] = []
        for entry, (item_id, state, is_settled) in zip(outgoing, states, strict=True):
            if state == "sent" or (item_id and item_id in present):
                gone.append(entry)
                continue
            if entry.widget is None or entry.shown != (item_id, state):
                markup = outgoing_html(item_id, entry.text, state)  # only when it changes
                if entry.widget is None:
                    entry.widget = widgets.HTML(markup, _dom_classes=("rt-chat-item",))
                else:
                    entry.widget.value = markup
                entry.shown = (item_id, state)
            if not is_settled:
                queued.append(entry.widget)
                continue
            if not entry.placed:  # it stays where it was when its turn ended
                entry.placed, entry.anchor = True, last
            settled.append((entry.anchor, entry.widget))
        if gone:
            with self._lock:
                self._outgoing = [o for o in self._outgoing if o not in gone]
            for entry in gone:
                if entry.widget is not None:
                    entry.widget.close()
        return queued, settled

    def _new_bubble(self, session: Session, item: ItemSnapshot) -> _Bubble:
        status, reason = _response_state(session, item.response_id)
        markup = self._item_html(item, status, reason)
        bubble = _Bubble(widgets.HTML(markup, _dom_classes=("rt-chat-item",)), Pacer(), markup)
        if item.text:  # an empty new bubble leaves the first delta free to show at once
            bubble.pacer.published(self._clock())
        return bubble

    def _item_html(self, item: ItemSnapshot, status: str | None, reason: str | None) -> str:
        """A bubble (with why its answer failed or stopped short), and under an answer the
        "events" link that opens its inspector (the kernel's events hub catches the click;
        the href holds only ids)."""
        markup = item_html(self.voice.shown(item), status, reason)
        if self._events_hub is None or not item.response_id:
            return markup
        href = self._events_hub.href(item.response_id)
        if not href:
            return markup
        return f'{markup}<div class="rt-chat-events"><a href="{html.escape(href)}">events</a></div>'

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
            bubble = self._bubbles.get(item_id)
            if bubble is not None:
                bubble.waiting = True
        for response_id in pending.responses:
            for item in session.response_items(response_id):
                bubble = self._bubbles.get(item.id)
                if bubble is not None:
                    bubble.waiting = True

    def _publish_waiting(self, session: Session, now: float) -> float | None:
        """Write the bubbles whose HTML changed; streaming ones no faster than the pacer."""
        delay: float | None = None
        for item_id, bubble in self._bubbles.items():
            if not bubble.waiting:
                continue
            item = session.item(item_id)
            if item is None:
                bubble.waiting = False
                continue
            status, reason = _response_state(session, item.response_id)
            # The final state always goes out at once; growth waits for the pacer (checked
            # before rendering: Markdown costs time proportional to the text).
            # Each update resends the whole bubble: the pacer's byte credit (earned by the
            # text's growth) keeps the total within a multiple of the text.
            bubble.pacer.grow(len(item.text) + len(item.arguments or ""))
            if is_streaming(item, status) and not bubble.pacer.due(now, len(bubble.html)):
                wait = bubble.pacer.wait_time(now, len(bubble.html))
                if wait is not None:  # None: the next delta pays for it (and wakes us)
                    delay = wait if delay is None else min(delay, wait)
                continue
            bubble.waiting = False
            markup = self._item_html(item, status, reason)
            if markup != bubble.html:
                bubble.widget.value = markup
                bubble.html = markup
                bubble.pacer.published(now, len(markup))
        return delay

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
        line = html.escape(" · ".join(parts))
        self._status.value = (
            f'<div class="rt-chat-status" data-state="{state.value}">● {line}</div>'
        )
        self.composer.responding = state is PanelState.RESPONDING


_ONGOING = frozenset({PanelState.CONNECTING, PanelState.RESPONDING})


def _says(message: str, reason: str) -> bool:
    """Whether an error ``message`` shown already says ``reason`` (a one-line, maybe cut,
    copy of a server's message)."""
    return reason.removesuffix("…")[:100] in one_line(message, limit=len(message) + 1)


def _events_hub() -> EventsHub | None:
    """The kernel's events hub (``None`` outside a kernel or without anywidget)."""
    try:
        from .widgets.events import hub
    except ImportError:
        return None
    return hub()


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


def _response_state(session: Session, response_id: str | None) -> tuple[str | None, str | None]:
    """A response's status and why it failed or stopped short (``None``: not said)."""
    if response_id is None:
        return None, None
    info = session.response_info(response_id)
    if info is None:
        return None, None
    status = str(info.get("status"))
    return status, status_reason(status, info.get("status_details"))
