"""The tool runner: a Session's function-call rounds, on worker threads.

:class:`Toolbox` (``session.tools``) watches for finished responses that call functions
and runs each round on a worker thread (never the I/O thread): validate the arguments, ask
for approval where the tool wants it, run the tool with a timeout, post a
``function_call_output`` for every call (errors as ``{"error": ...}``) and request the
follow-up response. Only registered tools run. A remote MCP server's
``mcp_approval_request`` joins the round as a call too: asked the same way, answered with
an ``mcp_approval_response`` item, after which the service runs the tool itself.

Approval is asked where the call happened: the front end that requested a response (a
``%%realtime`` cell, a background cell, the chat panel) names itself with
:func:`asking` around the request, the Toolbox remembers it with the request, and its
round's follow-ups inherit it. A call that needs approval and has no one to ask is refused
at once, saying why (see :attr:`Toolbox.approver` for a fallback of your own).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import enum
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, RealtimeConnectionError, RealtimeError
from ..protocol.conversation import ResponseDone
from ..protocol.events import new_id
from ..protocol.mcp import approval_response
from ..protocol.options import ResponseOptions, ToolLike, Unpack
from .registry import ToolRegistry, decorator, default_registry
from .schema import (
    Tool,
    ToolArgumentsError,
    ToolOptions,
    encode_output,
    error_output,
    function_tool,
)

if TYPE_CHECKING:
    from ..client.responses import ItemSnapshot, ResponseHandle
    from ..client.session import Session
    from ..protocol.conversation import Change

__all__ = [
    "ROUND_TAG",
    "Approver",
    "CallState",
    "ToolCall",
    "ToolRound",
    "Toolbox",
    "asking",
    "toolbox",
]

log = logging.getLogger("rt_notebook")

# Metadata key marking a follow-up response: how many tool rounds led to it.
ROUND_TAG = "rt_notebook_tool_round"


class CallState(enum.Enum):
    """Where one function call stands."""

    QUEUED = "queued"
    AWAITING_APPROVAL = "awaiting approval"
    RUNNING = "running"
    DONE = "done"  # ran; the result went to the model
    FAILED = "failed"  # unknown tool, bad arguments, exception or timeout: an error went
    DENIED = "denied"  # not approved (declined, no one to ask, no answer): the model is told
    INTERRUPTED = "interrupted"  # the cell was interrupted while the call awaited approval
    MANUAL = "manual"  # not a registered tool: answer it with --function-output


FINISHED = frozenset(
    {CallState.DONE, CallState.FAILED, CallState.DENIED, CallState.INTERRUPTED, CallState.MANUAL}
)

# Who asks for approval: called on the round's worker thread when ``call`` needs a decision;
# returns whether it will get one to the call (``call.approve()``/``deny()``/``interrupt()``
# from any thread), or False when it cannot ask (closed panel, finished cell).
Approver = Callable[["ToolCall"], bool]

_approver: contextvars.ContextVar[Approver | None] = contextvars.ContextVar(
    "rt_notebook_approver", default=None
)


@contextmanager
def asking(approver: Approver | None) -> Iterator[None]:
    """Responses requested inside this block ask ``approver`` for approvals (and so do
    the follow-ups of their tool rounds)."""
    token = _approver.set(approver)
    try:
        yield
    finally:
        _approver.reset(token)


# Outcomes of an approval request.
_APPROVED, _DENIED, _INTERRUPTED = "approved", "denied", "interrupted"


class ToolCall:
    """One function call of a round: what the model asked, and what came of it."""

    def __init__(
        self,
        round: ToolRound,
        item_id: str,
        call_id: str,
        name: str,
        arguments: str,
        *,
        server_label: str | None = None,
    ):
        self.round = round
        self.item_id = item_id
        self.call_id = call_id
        self.name = name
        # A remote MCP server's approval request (call_id is the request's id): the
        # service runs the tool once an mcp_approval_response approves it.
        self.server_label = server_label
        self.arguments = arguments  # JSON text, as the model sent it
        self.state = CallState.QUEUED
        self.result: Any = None  # what the function returned
        self.output: str | None = None  # what the model was sent
        self.error: str | None = None  # why it failed, for people
        self.output_item_id: str | None = None  # the function_call_output item
        self._decision: concurrent.futures.Future[str] = concurrent.futures.Future()

    def __repr__(self) -> str:
        return f"<ToolCall {self.name} {self.call_id} {self.state.value}>"

    @property
    def label(self) -> str:
        """What the call runs, for people: the tool's name (``SERVER.TOOL`` for a remote
        MCP server's)."""
        return self.name if self.server_label is None else f"{self.server_label}.{self.name}"

    def approve(self) -> None:
        """Let a tool that needs approval run. Safe from any thread (widget callbacks)."""
        self._decide(_APPROVED)

    def deny(self) -> None:
        """Decline to run it: the model is told the user declined."""
        self._decide(_DENIED)

    def interrupt(self) -> None:
        """Give up waiting for a decision (the cell was interrupted): not run, and recorded
        as interrupted rather than declined."""
        self._decide(_INTERRUPTED)

    def on_decided(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(outcome)`` once the approval is settled: ``"approved"``,
        ``"denied"`` or ``"interrupted"`` (at once if it already is), on the deciding thread.
        When no one answered, :attr:`error` says why before the callback runs."""
        self._decision.add_done_callback(lambda future: callback(future.result()))

    def _decide(self, outcome: str) -> None:
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            self._decision.set_result(outcome)

    def _set(self, state: CallState, **fields: Any) -> None:
        for key, value in fields.items():
            setattr(self, key, value)
        self.state = state
        self.round._changed()


class ToolRound:
    """The calls of one finished response, run together, and the follow-up they lead to."""

    def __init__(self, response_id: str, depth: int) -> None:
        self.response_id = response_id
        self.depth = depth  # 1 for calls of a user's response, 2 for its follow-up's, ...
        self.calls: tuple[ToolCall, ...] = ()
        self.follow_up: ResponseHandle | None = None  # the response that uses the outputs
        self.error: BaseException | None = None  # posting failed (connection lost)
        self.cancelled = False
        self.approver: Approver | None = None  # who asks for its approvals (see asking())
        self._condition = threading.Condition()
        self._version = 0
        self._done = threading.Event()

    def __repr__(self) -> str:
        return f"<ToolRound {self.response_id} {list(self.calls)}>"

    def done(self) -> bool:
        """Whether every output is posted and the follow-up (if any) requested."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until :meth:`done`; return whether it is."""
        return self._done.wait(timeout)

    def wait_for_change(self, seen: int, timeout: float) -> int:
        """Block until the round changed after version ``seen``; return the new version."""
        with self._condition:
            self._condition.wait_for(lambda: self._version != seen, timeout)
            return self._version

    def cancel(self) -> None:
        """Interrupt pending approvals and request no follow-up (running tools still
        finish)."""
        self.cancelled = True
        for call in self.calls:
            call.interrupt()

    def _changed(self) -> None:
        with self._condition:
            self._version += 1
            self._condition.notify_all()

    def _finish(self) -> None:
        self._done.set()
        self._changed()


@dataclass
class _Request:
    """What a tracked response asked for: the follow-up inherits it."""

    handle: ResponseHandle
    overrides: ResponseOptions
    approver: Approver | None = None


class Toolbox(Mapping[str, Tool]):
    """The tools of one Session (its own and the kernel-wide ones) and their runner.

    ``session.tools``. A mapping of name → :class:`Tool`. Rounds start by themselves
    when a response calls functions (set :attr:`auto_run` to ``False`` to answer calls
    yourself); at most :attr:`max_rounds` rounds follow one another.
    """

    def __init__(self, session: Session, parent: ToolRegistry = default_registry) -> None:
        self.session = session
        self.registry = ToolRegistry(parent)
        self.auto_run = True
        self.max_rounds = 8
        self.approval_timeout = 600.0  # seconds an approval may wait before it is denied
        # Asked when a call needs approval and its request named no one (see asking()):
        # e.g. ``lambda call: threading.Thread(target=call.approve).start() or True``.
        self.approver: Approver | None = None
        self._lock = threading.Lock()
        # Our responses by request id, until they finish: the follow-up copies them.
        self._requests: dict[str, _Request] = {}
        # Recent rounds by response id (a future: the view may ask before it exists).
        self._rounds: OrderedDict[str, concurrent.futures.Future[ToolRound | None]] = OrderedDict()
        self._made: set[str] = set()  # names of the tools registered here, ever
        # The session tools of remote MCP servers (set by session.mcp), and the labels
        # of every one it ever gave (its definitions are not hand-written ones).
        self.hosted: Callable[[], list[dict[str, Any]]] | None = None
        self._hosted_made: set[str] = set()
        self.registry.on_change(self._sync)
        session.subscribe(self._on_changes)

    # Public methods for registering ---------------------------------------------------

    def __getitem__(self, name: str) -> Tool:
        return self.registry[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.registry)

    def __len__(self) -> int:
        return len(self.registry)

    def __repr__(self) -> str:
        return f"<Toolbox of {self.session.name!r}: {list(self)}>"

    def register(self, function: Callable[..., Any], **options: Unpack[ToolOptions]) -> Tool:
        """Offer ``function`` to the model in this Session; a connected Session sends the
        new tool list with ``session.update`` before this returns."""
        return self.registry.add(function_tool(function, **options))

    def tool(
        self, function: Callable[..., Any] | None = None, /, **options: Unpack[ToolOptions]
    ) -> Tool | Callable[[Callable[..., Any]], Tool]:
        """Decorator form of :meth:`register`."""
        return decorator(self.registry, function, options)

    def unregister(self, name: str) -> None:
        """Stop offering a tool registered on this Session."""
        self.registry.remove(name)

    def schemas(
        self, names: Iterable[str | ToolLike | Mapping[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """Realtime definitions of the named tools (all registered ones by default).

        Entries may be names, :class:`Tool` objects or ready definitions (kept as they are).
        """
        if names is None:
            return self.registry.schemas()
        schemas = []
        for entry in names:
            if isinstance(entry, Mapping):
                schemas.append(dict(entry))
            elif not isinstance(entry, str):  # a Tool
                schemas.append(entry.schema)
            elif entry in self.registry:
                schemas.append(self.registry[entry].schema)
            else:
                known = ", ".join(self.registry) or "none"
                raise ConfigurationError(
                    f"no tool named {entry!r} is registered (registered: {known}); "
                    "register it with @session.tool or @rt_notebook.tool"
                )
        return schemas

    def hand_written(self, tools: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The definitions in ``tools`` that no tool registered here ever made (a session's
        tool list holds both; an unregistered tool must not stay as a hand-written one)."""
        self._made.update(self.registry)
        return [
            dict(t)
            for t in tools
            if t.get("name") not in self._made
            and not (t.get("type") == "mcp" and t.get("server_label") in self._hosted_made)
        ]

    def session_schemas(self, extra: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
        """The ``session.tools`` list: hand-written definitions, then registered tools."""
        self._made.update(self.registry)
        registered = self.registry.schemas()
        names = {schema["name"] for schema in registered}
        hosted = self._hosted()
        labels = {schema["server_label"] for schema in hosted}
        kept = [
            dict(t)
            for t in extra or ()
            if t.get("name") not in names
            and not (t.get("type") == "mcp" and t.get("server_label") in labels)
        ]
        return kept + registered + hosted

    def hosted_changed(self) -> None:
        """A remote MCP server was added or removed: send the new tool list."""
        self._hosted()
        self._sync()

    def _hosted(self) -> list[dict[str, Any]]:
        """The remote MCP servers' session tools (their credentials revealed)."""
        hosted = self.hosted() if self.hosted is not None else []
        self._hosted_made.update(schema["server_label"] for schema in hosted)
        return hosted

    # Public methods for rounds ----------------------------------------------------------

    def round_for(self, response_id: str, timeout: float = 10.0) -> ToolRound | None:
        """The round that answers ``response_id``'s function calls, or ``None`` when the
        runner leaves them alone (auto_run off, only unregistered tools, out of band)."""
        future = self._round_future(response_id)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            return None

    def run_in_place(
        self,
        response_id: str,
        calls: Sequence[tuple[str, str, str, str]],
        *,
        after: str,
        overrides: ResponseOptions,
    ) -> ToolRound | None:
        """Run the function calls of an out-of-band answer that a re-run cell placed in the
        middle of the conversation; ``None`` when the runner leaves them alone (auto_run
        off, only hand-declared tools).

        ``calls`` are ``(item id, call_id, name, arguments)`` of the function_call items
        placed for it; their outputs go in right after ``after`` (the last placed item),
        and the follow-up (asked with ``overrides``, as the cell's response was) answers
        from the items up to them: out of band, unless they are the conversation's last.
        Approvals are asked as :func:`asking` names (around this call).
        """
        metadata = overrides.get("metadata") or {}
        round = ToolRound(response_id, int(metadata.get(ROUND_TAG, "0")) + 1)
        round.approver = _approver.get()
        declared = self._declared(overrides.get("tools"))
        round.calls = tuple(ToolCall(round, *call) for call in calls)
        for call in round.calls:
            if call.name not in self.registry and call.name in declared:
                call.state = CallState.MANUAL
        if not self.auto_run or all(call.state is CallState.MANUAL for call in round.calls):
            return None
        future: concurrent.futures.Future[ToolRound | None] = concurrent.futures.Future()
        future.set_result(round)
        with self._lock:  # round_for() finds it (out of band, the runner said None)
            self._rounds[response_id] = future
        worker = threading.Thread(
            target=self._run_round,
            args=(round, overrides, after),
            name=f"rt_notebook-tools-{response_id}",
            daemon=True,
        )
        worker.start()
        return round

    @property
    def rounds(self) -> list[ToolRound]:
        """Recent rounds, oldest first."""
        with self._lock:
            futures = list(self._rounds.values())
        rounds = [future.result() for future in futures if future.done()]
        return [found for found in rounds if found is not None]

    @property
    def pending_approvals(self) -> list[ToolCall]:
        """Calls waiting for :meth:`ToolCall.approve` or :meth:`ToolCall.deny`."""
        return [
            call
            for round in self.rounds
            for call in round.calls
            if call.state is CallState.AWAITING_APPROVAL
        ]

    # Called by the Session ---------------------------------------------------------------

    def track(self, handle: ResponseHandle, overrides: ResponseOptions) -> None:
        """Remember what an in-conversation response asked for, and who asks for its
        approvals (the Session calls this on the requesting thread, before it is sent):
        a tool round's follow-up asks for the same."""
        with self._lock:
            self._requests[handle.request_id] = _Request(handle, overrides, _approver.get())

    def _sync(self) -> None:
        """Send the new tool list to a connected Session (registration just changed it)."""
        session = self.session
        if not session.connected or session.on_io_thread():
            return  # sent with the next session.update (connect sends one)
        try:
            session.resend_tools()
        except RealtimeConnectionError as exc:  # closed meanwhile: connect sends the list
            log.debug("rt_notebook: tool list not sent to %r: %s", session.name, exc)

    # Internals: the runner ----------------------------------------------------------

    def _round_future(self, response_id: str) -> concurrent.futures.Future[ToolRound | None]:
        with self._lock:
            future = self._rounds.get(response_id)
            if future is None:
                future = self._rounds[response_id] = concurrent.futures.Future()
                while len(self._rounds) > 64:
                    _, old = self._rounds.popitem(last=False)
                    if not old.done():
                        old.set_result(None)
            return future

    def _on_changes(self, session: Session, changes: Sequence[Change]) -> None:
        # On the I/O thread: decide quickly, run elsewhere.
        for change in changes:
            if isinstance(change, ResponseDone):
                self._on_response_done(change.response_id, change.status)

    def _on_response_done(self, response_id: str, status: str) -> None:
        request = self._pop_request(response_id)
        calls = [
            item
            for item in self.session.response_items(response_id)
            if item.type in ("function_call", "mcp_approval_request")
        ]
        if not calls:
            return
        future = self._round_future(response_id)
        in_conversation = all(self.session.item_index(c.id) is not None for c in calls)
        if not self.auto_run or status != "completed" or not in_conversation:
            future.set_result(None)
            return
        overrides: ResponseOptions = {**request.overrides} if request is not None else {}
        metadata = overrides.get("metadata") or {}
        depth = int(metadata.get(ROUND_TAG, "0")) + 1
        round = ToolRound(response_id, depth)
        round.approver = request.approver if request is not None else None
        declared = self._declared(overrides.get("tools"))
        round.calls = tuple(_tool_call(round, c) for c in calls)
        for call in round.calls:
            if call.server_label is not None:
                continue
            if call.name not in self.registry and call.name in declared:
                call.state = CallState.MANUAL
        if all(call.state is CallState.MANUAL for call in round.calls):
            future.set_result(None)
            return
        future.set_result(round)
        worker = threading.Thread(
            target=self._run_round,
            args=(round, overrides),
            name=f"rt_notebook-tools-{response_id}",
            daemon=True,
        )
        worker.start()

    def _pop_request(self, response_id: str) -> _Request | None:
        with self._lock:
            for request_id, request in self._requests.items():
                if request.handle.response_id == response_id:
                    del self._requests[request_id]
                    return request
            # Forget requests that ended without a response (rejected, cancelled early).
            for request_id in [r for r, q in self._requests.items() if q.handle.done()]:
                del self._requests[request_id]
        return None

    def _declared(self, response_tools: Any) -> set[str]:
        """Names of hand-written tool definitions: calls to them are the user's to answer."""
        definitions = list(self.session.session_config.get("tools") or [])
        if isinstance(response_tools, list):
            definitions += response_tools
        return {str(d.get("name")) for d in definitions if isinstance(d, Mapping)}

    def _run_round(
        self, round: ToolRound, overrides: ResponseOptions, after: str | None = None
    ) -> None:
        """Run the round's calls, post their outputs (at the end, or right after item
        ``after``: a round placed in the middle) and request the follow-up."""
        try:
            outputs = []
            for call in round.calls:
                if call.state is not CallState.MANUAL:
                    outputs.append(self._answer(call))
            stop = round.cancelled or any(c.state is CallState.MANUAL for c in round.calls)
            if not stop and round.depth >= self.max_rounds:
                log.warning(
                    "rt_notebook: stopped after %d tool rounds without an answer", round.depth
                )
                stop = True
            if after is not None:
                for output_item in outputs:  # in order, where the calls stand
                    after = self.session.add_item(output_item, after=after, first=True)
            elif stop:
                # The outputs go in at the head of the queue: they continue their turn.
                for output_item in outputs:
                    self.session.add_item(output_item, first=True)
            if stop:
                return
            follow_up: ResponseOptions = {**overrides}
            follow_up.pop("tool_choice", None)  # a forced choice would loop forever
            metadata = overrides.get("metadata") or {}
            follow_up["metadata"] = {**metadata, ROUND_TAG: str(round.depth)}
            if after is not None:
                order = self.session.item_ids()
                if order and order[-1] != after:
                    # In the middle: answered from the items up to the outputs, out of band
                    # (the front end then places the answer after them).
                    follow_up["conversation"] = "none"
                    follow_up["input"] = [
                        {"type": "item_reference", "id": earlier}
                        for earlier in order[: order.index(after) + 1]
                    ]
                with asking(round.approver):
                    round.follow_up = self.session.create_response(first=True, **follow_up)
                return
            # One turn at the head of the queue: the outputs, then the follow-up.
            with asking(round.approver):  # the follow-up's calls ask the same front end
                round.follow_up = self.session.create_response(
                    items=outputs, first=True, **follow_up
                )
            round.follow_up.wait_items(self.approval_timeout)  # done means the outputs are in
        except RealtimeError as exc:
            round.error = exc
            log.warning("rt_notebook: tool round for %s failed: %s", round.response_id, exc)
        finally:
            round._finish()

    def _execute(self, call: ToolCall) -> str:
        """Run one call; return the output for the model (an error object on failure)."""
        tool = self.registry.get(call.name)
        if tool is None:
            known = ", ".join(self.registry) or "none"
            return self._failed(call, f"unknown tool {call.name!r} (available: {known})")
        try:
            args, kwargs = tool.validate(call.arguments)
        except ToolArgumentsError as exc:
            return self._failed(call, f"{call.name}: {exc}")
        if tool.approval:
            refusal = self._approval(call)
            if refusal is not None:
                return refusal
        call._set(CallState.RUNNING)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def target() -> None:
            try:
                future.set_result(tool.call_validated(args, kwargs))
            except BaseException as exc:  # reported to the model and the user
                future.set_exception(exc)

        # One daemon thread per call: a tool that never returns cannot block exit.
        threading.Thread(target=target, name=f"rt_notebook-tool-{call.name}", daemon=True).start()
        try:
            result = future.result(tool.timeout)
        except concurrent.futures.TimeoutError:
            return self._failed(call, f"{call.name} did not finish within {tool.timeout:g} s")
        except Exception as exc:
            return self._failed(call, f"{call.name} raised {type(exc).__name__}: {exc}")
        try:
            output = encode_output(result)
        except Exception as exc:
            return self._failed(call, f"{call.name} returned something not JSON-able: {exc}")
        call._set(CallState.DONE, result=result)
        return output

    def _answer(self, call: ToolCall) -> dict[str, Any]:
        """Run (or ask about) one call; the item that answers it."""
        if call.server_label is not None:
            return self._answer_mcp(call)
        output = self._execute(call)
        item_id = new_id("item", 20)
        call._set(call.state, output=output, output_item_id=item_id)
        return {
            "id": item_id,
            "type": "function_call_output",
            "call_id": call.call_id,
            "output": output,
        }

    def _answer_mcp(self, call: ToolCall) -> dict[str, Any]:
        """Ask about a remote MCP server's call; the ``mcp_approval_response`` item."""
        refusal = self._approval(call)
        request = self.session.item(call.item_id)
        if refusal is None and (request is None or request.type != "mcp_approval_request"):
            # The conversation moved to a new connection meanwhile: the request is text.
            message = f"{call.name} was not run: its approval request was lost with the connection"
            refusal = self._refused(call, CallState.DENIED, message)
        answer = approval_response(call.call_id, refusal is None, call.error)
        decision = "approved" if refusal is None else f"denied: {call.error}"
        call._set(
            CallState.DONE if refusal is None else call.state,
            output=decision,
            output_item_id=answer["id"],
        )
        return answer

    def _approval(self, call: ToolCall) -> str | None:
        """Ask for approval (on the round's worker); ``None`` if approved, else the output
        that tells the model why the call did not run."""
        if call.round.cancelled:  # interrupted before its turn came: ask no one
            message = f"{call.name} was not run: interrupted while waiting for approval"
            return self._refused(call, CallState.INTERRUPTED, message)
        approver = call.round.approver or self.approver
        call._set(CallState.AWAITING_APPROVAL)
        try:
            asked = approver is not None and approver(call)
        except Exception:
            log.exception("rt_notebook: asking for approval of %s failed", call.name)
            asked = False
        if not asked:
            message = (
                f"{call.name} was not run: it needs approval and no one could be asked "
                "(requested from code, with no %%realtime cell or chat panel to show "
                "Approve / Deny)"
            )
            log.warning("rt_notebook: %s", message)
            return self._refused(call, CallState.DENIED, message)
        try:
            outcome = call._decision.result(self.approval_timeout)
        except concurrent.futures.TimeoutError:
            waited = f"{self.approval_timeout:g} s"
            message = f"{call.name} was not run: no one approved it within {waited}"
            return self._refused(call, CallState.DENIED, message)
        if outcome == _APPROVED:
            return None
        if outcome == _INTERRUPTED:
            message = f"{call.name} was not run: interrupted while waiting for approval"
            return self._refused(call, CallState.INTERRUPTED, message)
        return self._refused(call, CallState.DENIED, f"the user declined to run {call.name}")

    @staticmethod
    def _refused(call: ToolCall, state: CallState, message: str) -> str:
        call._set(state, error=message)
        call._decide(_DENIED)  # settles any buttons still showing (after the error is set)
        return error_output(message)

    @staticmethod
    def _failed(call: ToolCall, message: str) -> str:
        call._set(CallState.FAILED, error=message)
        return error_output(message)


def _tool_call(round: ToolRound, item: ItemSnapshot) -> ToolCall:
    """The round's call for a function call or a remote MCP approval request."""
    if item.type == "mcp_approval_request":
        label = item.server_label or "?"
        return ToolCall(
            round, item.id, item.id, item.name or "", item.arguments or "", server_label=label
        )
    return ToolCall(round, item.id, item.call_id or "", item.name or "", item.arguments or "")


def toolbox(session: Session) -> Toolbox:
    """``session.tools`` as the :class:`Toolbox` it is (the Session, a layer below, knows
    it only by the interface it needs: ``client.tool_host.SessionTools``)."""
    tools = session.tools
    if not isinstance(tools, Toolbox):
        raise TypeError(f"session.tools is a {type(tools).__name__}, not a Toolbox")
    return tools
