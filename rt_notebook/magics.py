"""Front end: the ``%%realtime`` cell magic and the ``%realtime`` line magic.

Thin by design: parse the arguments, call the Session, attach a view. Defaults are
traitlets (``%config RealtimeMagics.model = "gpt-realtime"``), so they can also live in an
IPython profile.
"""

from __future__ import annotations

import json
import re
import string
from typing import Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import Markdown, display
from traitlets import Bool, Float, List, Unicode

from .anchors import CellAnchors, insert_answer, item_ids
from .errors import ConfigurationError
from .protocol import payloads
from .responses import ResponseHandle, ResponseResult
from .session import Session, connect, get_session

__all__ = ["RealtimeMagics", "interpolate"]

# {name}, {name.attr}, {name[0]}: the fields that are looked up in the user namespace.
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*|\[[^\[\]{}]*\])*)\}")
_formatter = string.Formatter()


def interpolate(text: str, namespace: dict[str, Any]) -> str:
    """Replace ``{name}`` fields whose root name is defined in ``namespace``; leave the rest.

    Braces that are not such a field (JSON, code) are kept as they are.
    """

    def replace(match: re.Match[str]) -> str:
        field = match.group(1)
        try:
            value, _ = _formatter.get_field(field, (), namespace)
        except (KeyError, AttributeError, IndexError, TypeError, ValueError):
            return match.group(0)
        return str(value)

    return _FIELD.sub(replace, text)


@magics_class
class RealtimeMagics(Magics):
    """``%%realtime`` sends the cell to the model; ``%realtime`` manages the Session."""

    model = Unicode("gpt-realtime", help="Model (or Azure deployment) for new Sessions.").tag(
        config=True
    )
    voice = Unicode("", help="Voice for audio output; empty: the server's default.").tag(
        config=True
    )
    instructions = Unicode("", help="Session instructions; empty: the server's default.").tag(
        config=True
    )
    modalities = List(Unicode(), ["text"], help="Output modalities: text and/or audio.").tag(
        config=True
    )
    dialect = Unicode("ga", help="Protocol dialect: 'ga' or 'beta'.").tag(config=True)
    url = Unicode(
        "", help="websocket_base_url of a Realtime server; empty: OpenAI or the offline server."
    ).tag(config=True)
    timeout = Float(300.0, help="Seconds a blocking %%realtime cell waits for response.done.").tag(
        config=True
    )
    interpolate = Bool(True, help="Expand {name} from the user namespace in cells.").tag(
        config=True
    )

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell, **kwargs)
        # (session name, cell key) -> ids of the items that cell's last run added, in order:
        # re-running the cell replaces them where they stand.
        self._anchors = CellAnchors()  # what each cell added, so a re-run replaces it

    # Session helpers -------------------------------------------------------------------

    @property
    def _user_ns(self) -> dict[str, Any]:
        return self.shell.user_ns if self.shell is not None else {}

    def _session(self, name: str) -> Session:
        existing = get_session(name)
        if existing is not None and existing.connected:
            return existing
        if existing is not None:
            return existing.connect()
        return connect(name, **self._session_options())

    def _session_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "model": self.model,
            "dialect": self.dialect,
            "modalities": list(self.modalities),
        }
        if self.voice:
            options["voice"] = self.voice
        if self.instructions:
            options["instructions"] = self.instructions
        if self.url:
            options["websocket_base_url"] = self.url
        return options

    # %%realtime -------------------------------------------------------------------------

    @magic_arguments()
    @argument("--instructions", help="Instructions for this response only.")
    @argument("--modalities", help="Output modalities for this response: text, audio.")
    @argument("--voice", help="Voice for this response's audio.")
    @argument(
        "--role",
        default="user",
        choices=["user", "system", "assistant"],
        help="Role of the item the cell becomes (default: user).",
    )
    @argument("--after", metavar="ITEM_ID", help="Insert after this item id ('root': first).")
    @argument("--no-response", action="store_true", help="Only add the item.")
    @argument(
        "--function-output",
        metavar="CALL_ID",
        help="The cell is the output of this function call.",
    )
    @argument("--out", metavar="VAR", help="Bind the finished ResponseResult to VAR.")
    @argument(
        "--format",
        default="markdown",
        choices=["markdown", "text"],
        help="Render the answer as Markdown (default) or plain text.",
    )
    @argument("--session", default="default", help="Name of the Session to use.")
    @argument(
        "--oob",
        action="store_true",
        help="Out of band: conversation 'none'; the cell and the answer stay out of "
        "the conversation.",
    )
    @argument("--background", action="store_true", help="Return at once; keep streaming.")
    @argument("--timeout", type=float, help="Seconds to wait for response.done.")
    @argument("--max-output-tokens", help="Token limit for this response (or 'inf').")
    @argument(
        "--tools",
        metavar="NAMES",
        help="Registered tools this response may call, comma-separated ('none': no tools).",
    )
    @argument(
        "--tool-choice",
        metavar="CHOICE",
        help="auto, none, required, or a tool name to force that tool.",
    )
    @argument(
        "--metadata",
        metavar="PAIRS",
        help="Response metadata: key=value,key2=value2 or a JSON object.",
    )
    @argument(
        "--input",
        metavar="ITEM_IDS",
        help="With --oob: conversation items (comma-separated ids) to give as context.",
    )
    @argument(
        "--append",
        action="store_true",
        help="Add new items even if this cell ran before (default: replace its old ones).",
    )
    @argument("--no-interpolate", action="store_true", help="Do not expand {name} fields.")
    @cell_magic
    def realtime(self, line: str, cell: str) -> ResponseResult | None:
        """Send the cell as a conversation item and stream the model's answer below it.

        Blocks until the response is done (so saved notebooks hold the whole answer);
        Ctrl-C or a kernel interrupt cancels the response and keeps the Session usable.
        """
        args = parse_argstring(self.realtime, line)
        text = cell.strip("\n")
        if self.interpolate and not args.no_interpolate:
            text = interpolate(text, self._user_ns)
        if not text and not args.oob:
            raise ConfigurationError("the cell is empty: write the message below %%realtime")
        session = self._session(args.session)
        key = None
        if not (args.oob or args.append):
            key = (session.name, CellAnchors.cell_key(self.shell, line, cell))
            args.after = self._anchors.clear(session, key, args.after)
        item_id, handle = self._post(session, args, text)
        added = [] if item_id is None else [item_id]
        if key is not None:
            self._anchors.remember(key, added)
        if handle is None:
            return None
        # Imported here, not at load: %load_ext stays fast (the views pull in Markdown
        # parsing and pydantic, which load_ipython_extension warms in the background).
        from .render.cell import CellView

        if args.background:
            # Only the first response streams into the cell: new outputs must not be
            # displayed from a background thread. Tool rounds still run (session.tools).
            handle.add_done_callback(lambda done: added.extend(item_ids(done)))
            CellView(session, handle, plain=args.format == "text").run_in_background()
            if args.out:
                self._user_ns[args.out] = handle
            return None
        result = self._show(session, handle, args, added)
        if item_id is not None and handle.out_of_band:
            # Answered in place (see _post): its answer joins the conversation after it.
            added += insert_answer(session, item_id, result)
        if args.out:
            self._user_ns[args.out] = result
        return None

    def _show(
        self, session: Session, handle: ResponseHandle, args: Any, added: list[str]
    ) -> ResponseResult:
        """Stream the response, then each tool round and the follow-up it requests;
        return the last result. ``added`` collects the ids of the items they add."""
        from .render.approval import ToolRoundView, manual_calls_markdown
        from .render.cell import CellView

        plain = args.format == "text"
        while True:
            view = CellView(session, handle, plain=plain)
            try:
                result = view.run(timeout=args.timeout or self.timeout)
            except KeyboardInterrupt:
                handle.cancel()
                result = view.finish()
            except TimeoutError:
                handle.cancel()
                view.finish()
                raise
            added += [item.id for item in result.items if not result.out_of_band]
            calls = result.function_calls
            if not calls or result.out_of_band or result.status != "completed":
                return result
            tool_round = session.tools.round_for(str(result.id))
            if tool_round is None:  # not registered (or auto_run off): the user answers
                display(Markdown(manual_calls_markdown(calls)))
                return result
            try:
                ToolRoundView(tool_round, plain=plain).run()
            except KeyboardInterrupt:
                return result
            added += [c.output_item_id for c in tool_round.calls if c.output_item_id]
            if tool_round.follow_up is None:
                return result
            handle = tool_round.follow_up

    def _post(
        self, session: Session, args: Any, text: str
    ) -> tuple[str | None, ResponseHandle | None]:
        """Add the cell's item and request the response; return the item's id (``None``
        out of band) and the response (``None`` with --no-response)."""
        overrides = response_overrides(args)
        if args.oob:
            # The cell (after any --input items) is the response's input; nothing enters
            # the conversation.
            overrides["conversation"] = "none"
            references = [i.strip() for i in (args.input or "").split(",") if i.strip()]
            overrides["input"] = [
                *({"type": "item_reference", "id": item_id} for item_id in references),
                payloads.message_item(text, "user", session.dialect),
            ]
            return None, session.create_response(**overrides)
        if args.input:
            raise ConfigurationError("--input gives an out-of-band response context: add --oob")
        if args.function_output:
            item_id = session.add_function_output(args.function_output, text, after=args.after)
        else:
            item_id = session.add_message(text, role=args.role, after=args.after)
        if args.no_response:
            return item_id, None
        order = [item.id for item in session.items]
        if order and order[-1] != item_id:
            # Placed in the middle (re-run or --after): an in-conversation answer would see
            # everything after this cell and land at the end. Answer from the items up to
            # this one, out of band; the magic then inserts the answer after the item.
            overrides["conversation"] = "none"
            overrides["input"] = [
                {"type": "item_reference", "id": earlier}
                for earlier in order[: order.index(item_id) + 1]
            ]
        return item_id, session.create_response(**overrides)

    # %realtime --------------------------------------------------------------------------

    @line_magic("realtime")  # type: ignore[arg-type]  # IPython types the name oddly
    def realtime_line(self, line: str) -> Any:
        """Manage the Session: ``%realtime connect|status|history|events|reset|close|record``.

        - ``connect [--session NAME]``: connect (or reconnect) with the configured defaults.
        - ``status``: where the Session is connected, and what is running.
        - ``history``: the conversation's items as a table.
        - ``events [N]``: the last N server events (deltas left out).
        - ``reset``: close the Session and start a fresh conversation.
        - ``close``: close the Session.
        - ``record FILE`` / ``record --stop``: write every event to FILE as JSON lines.
        - ``tools [--notebook]``: the registered function tools (``--notebook``: first
          enable the built-in notebook tools, see :mod:`rt_notebook.notebook_tools`).
        - ``chat [--side]``: a chat panel on the Session (``--side``: JupyterLab's side area).
        """
        words = line.split()
        command, rest = (words[0], words[1:]) if words else ("status", [])
        name = "default"
        if "--session" in rest:
            index = rest.index("--session")
            name = rest[index + 1]
            del rest[index : index + 2]
        if command == "connect":
            return self._status(connect(name, **self._session_options()))
        if command == "status":
            return self._status(get_session(name))
        if command == "tools":  # connects if needed: tools are sent with session.update
            return self._command_tools(self._session(name), rest)
        if command == "chat":  # connects if needed, like %%realtime
            return self._command_chat(self._session(name), rest)
        action = getattr(self, f"_command_{command}", None)
        if action is None:
            raise ConfigurationError(
                f"unknown %realtime command {command!r}: "
                "connect, status, history, events, reset, close, record or chat"
            )
        session = get_session(name)
        if session is None:
            raise ConfigurationError(f"no Session {name!r} yet: run %realtime connect first")
        return action(session, rest)

    def _command_history(self, session: Session, rest: list[str]) -> None:
        from .render.tables import history_table

        display(Markdown(history_table(session)))

    def _command_tools(self, session: Session, rest: list[str]) -> Markdown:
        if rest == ["--notebook"]:
            from .notebook_tools import enable

            enable(session, shell=self.shell)
        elif rest:
            raise ConfigurationError("usage: %realtime tools [--notebook]")
        from .render.tables import tools_table

        return Markdown(tools_table(session))

    def _command_events(self, session: Session, rest: list[str]) -> list[dict[str, Any]]:
        count = int(rest[0]) if rest else 20
        return session.events[-count:]

    def _command_reset(self, session: Session, rest: list[str]) -> None:
        session.close()
        connect(session.name, **self._session_options())

    def _command_close(self, session: Session, rest: list[str]) -> None:
        session.close()

    def _command_record(self, session: Session, rest: list[str]) -> None:
        if rest == ["--stop"]:
            session.stop_recording()
        elif len(rest) == 1:
            session.record(rest[0])
        else:
            raise ConfigurationError("usage: %realtime record FILE | %realtime record --stop")

    def _command_chat(self, session: Session, rest: list[str]) -> None:
        from .chat import ChatPanel

        unknown = [word for word in rest if word != "--side"]
        if unknown:
            raise ConfigurationError(f"usage: %realtime chat [--side], not {' '.join(unknown)!r}")
        ChatPanel(session).show(sidecar="--side" in rest)

    def _status(self, session: Session | None) -> Markdown:
        from .render.markdown import safe_markdown

        if session is None:
            return Markdown("No Session yet: `%realtime connect` or run a `%%realtime` cell.")
        state = "connected" if session.connected else "closed"
        active = session.active_response_id or "none"
        return Markdown(
            f"Session `{session.name}`: {state} to {safe_markdown(session.endpoint.describe())}; "
            f"{len(session.items)} items; active response: {active}; "
            f"pending requests: {session.pending_responses}."
        )


def response_overrides(args: Any) -> dict[str, Any]:
    """The ``Session.create_response`` keywords that a cell's options ask for."""
    overrides: dict[str, Any] = {}
    if args.instructions:
        overrides["instructions"] = args.instructions
    if args.modalities:
        overrides["modalities"] = [m.strip() for m in args.modalities.split(",") if m]
    if args.voice:
        overrides["voice"] = args.voice
    if args.max_output_tokens:
        limit = args.max_output_tokens
        overrides["max_output_tokens"] = limit if limit == "inf" else int(limit)
    if args.tools:
        names = [n.strip() for n in args.tools.split(",") if n.strip()]
        overrides["tools"] = [] if names == ["none"] else names
    if args.tool_choice:
        choice = args.tool_choice
        builtin = ("auto", "none", "required")
        overrides["tool_choice"] = (
            choice if choice in builtin else {"type": "function", "name": choice}
        )
    if args.metadata:
        overrides["metadata"] = parse_metadata(args.metadata)
    return overrides


def parse_metadata(text: str) -> dict[str, str]:
    """``key=value,key2=value2`` or a JSON object, as string pairs."""
    text = text.strip()
    if text.startswith("{"):
        try:
            pairs = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"--metadata is not valid JSON: {exc}") from None
        if not isinstance(pairs, dict):
            raise ConfigurationError("--metadata must be a JSON object")
        return {str(key): str(value) for key, value in pairs.items()}
    metadata = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(f"--metadata wants key=value pairs, not {pair!r}")
        metadata[key.strip()] = value.strip()
    return metadata


# `%realtime?` shows the line magic's help: make it list the cell magic's options as well.
_line_help = (
    f"{RealtimeMagics.realtime_line.__doc__}\n\n%%realtime cell magic:\n"
    f"{RealtimeMagics.realtime.__doc__}"
)
RealtimeMagics.realtime_line.__doc__ = _line_help  # type: ignore[assignment]
