"""Cell view of a tool round: each call's outcome, and Approve / Deny buttons.

A ``%%realtime`` cell blocks while the Session's :class:`~rt_notebook.tools.Toolbox` runs
a round on its worker thread; :class:`ToolRoundView` shows the round through a display
handle from the cell's own thread. Approval buttons are ipywidgets whose callbacks run on
another thread: a callback only resolves the call's decision (a thread-safe future) and
never waits for the cell's thread.

Approvals are asked where the call happened (:func:`rt_notebook.tools.asking`): a
blocking cell's :class:`CellApprovals` leaves the buttons to its ToolRoundView; a
``--background`` cell's :class:`BackgroundApprovals` creates an empty output when the cell
runs, on the cell's thread, and later fills it by display id from the tool worker (a
background thread only ever updates a display its cell created).

Which thread? ipykernel 7 delivers a widget's messages to the shell that last published
on its comm: for buttons displayed by a cell that is the main shell, where they would wait
behind the blocked cell until the approval timed out. So the buttons' comms are routed to
a kernel subshell that rt_notebook creates (once per kernel), whose own thread handles
clicks from any front end while the cell blocks. That uses ipykernel 7 internals; where
they are missing (other kernels) the buttons still work once the cell is not blocked.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import weakref
from typing import TYPE_CHECKING, Any, ClassVar

from IPython.display import DisplayHandle, display

from ..redaction import scrub
from ..tools import CallState
from ..widgets.subshells import route_to_subshell
from .markdown import fenced, inline_code, safe_inline, safe_markdown

if TYPE_CHECKING:
    from ..client.responses import ItemSnapshot
    from ..tools import ToolCall, ToolRound

__all__ = [
    "ApprovalButtons",
    "BackgroundApprovals",
    "CellApprovals",
    "ToolRoundView",
    "manual_calls_markdown",
    "render_round",
]

log = logging.getLogger("rt_notebook")

# Longest output shown in a cell; the model always gets the whole output.
SHOWN_OUTPUT = 2000


def _shown(output: str) -> str:
    if len(output) <= SHOWN_OUTPUT:
        return output
    return output[:SHOWN_OUTPUT] + f"\n… ({len(output) - SHOWN_OUTPUT} more characters)"


def render_call(call: ToolCall) -> str:
    """Markdown for one call's state and result."""
    head = f"**Tool** {inline_code(call.name)}"
    state = call.state
    if call.server_label is not None:  # a remote MCP server's: the service runs it
        head = f"**MCP tool** {inline_code(call.name)} (server {inline_code(call.server_label)})"
        if state is CallState.DONE:
            return f"{head} approved: the server runs it"
    if state is CallState.DONE and call.output is not None:
        return f"{head} returned:\n\n{fenced(_shown(call.output))}"
    if state in (CallState.FAILED, CallState.DENIED, CallState.INTERRUPTED):
        return f"{head} **{state.value}**: {safe_markdown(call.error or '')}"
    if state is CallState.MANUAL:
        return manual_calls_markdown([call])
    return f"{head}: *{state.value}…*"


def render_round(round: ToolRound) -> str:
    """Markdown for every call of a round (and why no follow-up came, if none will)."""
    parts = [render_call(call) for call in round.calls]
    if round.error is not None:
        parts.append(f"**Error:** {safe_markdown(str(round.error))}")
    return "\n\n".join(parts)


def manual_calls_markdown(calls: list[ToolCall] | list[ItemSnapshot]) -> str:
    """A hint for calls to tools that are not registered: the user answers them."""
    lines = []
    for call in calls:
        lines.append(
            f"**Function call** {inline_code(call.name or '?')} is not a registered tool: "
            f"answer it with {inline_code(f'%%realtime --function-output {call.call_id}')}"
        )
    return "\n\n".join(lines)


class ApprovalButtons:
    """Approve / Deny buttons for one call; a click decides it (from any thread)."""

    # Live button rows, newest last: tests (and other front ends) find them here.
    live: ClassVar[weakref.WeakSet[ApprovalButtons]] = weakref.WeakSet()

    def __init__(self, call: ToolCall) -> None:
        import ipywidgets as widgets

        self.call = call
        self.approve_button = widgets.Button(description="Approve", button_style="success")
        self.deny_button = widgets.Button(description="Deny", button_style="danger")
        # A Label shows text, not HTML; the name and arguments are model-written all the same.
        self.label = widgets.Label(f"Run {_one_line(call.label, 60)}({_one_line(call.arguments)})?")
        self.widget = widgets.HBox([self.label, self.approve_button, self.deny_button])
        self.approve_button.on_click(lambda _: self._decide(True))
        self.deny_button.on_click(lambda _: self._decide(False))
        self._lock = threading.Lock()
        # Where show() displayed the row (the cell's context, its handle): once decided, the
        # row's output becomes the decision as Markdown (no widget left to restore).
        self._shown: tuple[contextvars.Context, DisplayHandle] | None = None
        ApprovalButtons.live.add(self)
        # However it is settled (click, interrupt, timeout), the row says so.
        call.on_decided(lambda outcome: self.close(call.error or outcome))

    def route(self) -> None:
        """Have clicks handled off the main shell (call before the buttons are shown, so
        that no click can reach a blocked main shell)."""
        route_to_subshell([self.approve_button, self.deny_button])

    def show(self) -> None:
        """Display the buttons in the current cell, with clicks handled off the main shell."""
        self.route()
        handle = display(self.widget, display_id=True)  # type: ignore[no-untyped-call]
        self._shown = (contextvars.copy_context(), handle)

    def _decide(self, allowed: bool) -> None:
        # Runs on whichever thread delivered the click: resolve the future, nothing more
        # (the call's on_decided callback updates the row).
        if allowed:
            self.call.approve()
        else:
            self.call.deny()

    def close(self, outcome: str | None = None) -> None:
        """Disable the buttons and say what was decided."""
        with self._lock:
            if self.approve_button.disabled:
                return
            self.approve_button.disabled = True
            self.deny_button.disabled = True
            outcome = outcome or self.call.state.value
            self.label.value = f"{_one_line(self.call.name, 60)}: {outcome}"
        ApprovalButtons.live.discard(self)
        if self._shown is not None:
            context, handle = self._shown
            context.run(handle.update, decision_bundle([self.label.value]), raw=True)
            self.close_widgets()

    def close_widgets(self) -> None:
        """Close the row's widget models (its output no longer shows them)."""
        for widget in (self.widget, self.label, self.approve_button, self.deny_button):
            widget.close()


def decision_bundle(lines: list[str]) -> dict[str, str]:
    """What a decided approval leaves in the notebook: each decision, as Markdown."""
    text = "\n\n".join(f"*{safe_inline(line)}*" for line in lines)
    return {"text/markdown": text, "text/plain": "\n".join(lines)}


class CellApprovals:
    """The approver of a blocking ``%%realtime`` cell: its :class:`ToolRoundView` shows the
    buttons, as long as the cell still runs (:meth:`close` when it returns)."""

    def __init__(self) -> None:
        self.open = True

    def __call__(self, call: ToolCall) -> bool:
        return self.open

    def close(self) -> None:
        self.open = False


class BackgroundApprovals:
    """The approver of a ``--background`` cell: an output area made when the cell runs,
    filled with Approve / Deny rows later, from the tool worker, by display id."""

    def __init__(self) -> None:
        # On the cell's thread: the area belongs to the cell; later writes reuse its context.
        self._context = contextvars.copy_context()
        self._lock = threading.Lock()
        self._rows: list[Any] = []
        self._buttons: list[ApprovalButtons] = []
        self._display: DisplayHandle = display(  # type: ignore[no-untyped-call]
            {"text/plain": ""}, raw=True, display_id=True
        )

    def __call__(self, call: ToolCall) -> bool:
        # On the round's worker thread: build the row in the cell's context (its comm
        # messages carry the cell's parent header) and put it in the cell's area.
        return bool(self._context.run(self._add, call))

    def _add(self, call: ToolCall) -> bool:
        import ipywidgets as widgets

        buttons = ApprovalButtons(call)
        buttons.route()
        with self._lock:
            self._rows.append(buttons.widget)
            self._buttons.append(buttons)
            box = widgets.VBox(list(self._rows))
            self._display.update(box)  # type: ignore[no-untyped-call]
        # After the row's own callback (registered first) wrote the outcome.
        call.on_decided(lambda _: self._context.run(self._settled))
        return True

    def _settled(self) -> None:
        """Once every call asked here is decided, the area shows the decisions as Markdown
        (a reopened notebook then needs no widget state)."""
        with self._lock:
            # A row's own callback disabled it when its call was decided.
            if not self._buttons or not all(b.approve_button.disabled for b in self._buttons):
                return
            buttons, self._buttons, self._rows = self._buttons, [], []
            self._display.update(  # type: ignore[no-untyped-call]
                decision_bundle([b.label.value for b in buttons]), raw=True
            )
        for row in buttons:
            row.close_widgets()


def _one_line(text: str, limit: int = 120) -> str:
    text = " ".join(scrub(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ToolRoundView:
    """Shows one tool round in the current cell until every output is posted."""

    def __init__(self, round: ToolRound, *, plain: bool = False) -> None:
        self.round = round
        self.plain = plain
        self._context = contextvars.copy_context()
        self._buttons: dict[str, ApprovalButtons] = {}
        self._published: str | None = None
        # IPython's display() is untyped; with display_id=True it returns a handle.
        self._display: DisplayHandle = display(  # type: ignore[no-untyped-call]
            self._bundle(), raw=True, display_id=True
        )

    def run(self) -> ToolRound:
        """Refresh on every change until the round is done (the cell's thread blocks here).

        Every step of a round is bounded (tool timeouts, the approval timeout, the
        acknowledgement of each output), so this returns. ``KeyboardInterrupt`` cancels the
        round: pending approvals are denied and no follow-up is requested.
        """
        version = -1
        try:
            while not self.round.done():
                version = self.round.wait_for_change(version, 0.25)
                self.refresh()
        except KeyboardInterrupt:
            self.round.cancel()
            self.round.wait(5)
            raise
        finally:
            for buttons in self._buttons.values():
                buttons.close()
            self.refresh()
        return self.round

    def refresh(self) -> None:
        """Publish the round's state; show buttons for calls that wait for approval."""
        for call in self.round.calls:
            if call.state is CallState.AWAITING_APPROVAL and call.call_id not in self._buttons:
                buttons = self._buttons[call.call_id] = ApprovalButtons(call)
                self._context.run(buttons.show)
            elif call.state is not CallState.AWAITING_APPROVAL and call.call_id in self._buttons:
                self._buttons[call.call_id].close()
        text = render_round(self.round)
        if text != self._published:
            self._context.run(self._display.update, self._bundle(), raw=True)
            self._published = text

    def _bundle(self) -> dict[str, Any]:
        text = render_round(self.round) or "*running tools…*"
        if self.plain:
            return {"text/plain": text}
        return {"text/markdown": text, "text/plain": text}
