"""Front end: the ``%%realtime`` cell magic and the ``%realtime`` line magic.

Thin by design: parse the arguments, call the Session, attach a view. Defaults are
traitlets (``%config RealtimeMagics.model = "gpt-realtime-2.1"``), so they can also live
in an IPython profile.
"""

from __future__ import annotations

import contextlib
import re
import string
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import Markdown, display
from traitlets import Bool, Dict, Float, List, Unicode, Union, observe

from ..client.item_writes import message_with_images
from ..client.models import DEFAULT_MODEL, deprecation_warning
from ..client.registry import connect, get_session, sessions
from ..client.responses import ItemSnapshot, ResponseHandle, ResponseResult
from ..client.saved_turns import TurnRecorder
from ..client.session import Session
from ..errors import ConfigurationError, RealtimeError
from .anchors import CellAnchors, insert_answer, item_ids
from .figures import FigureMemory
from .magic_args import LineCommand, check_cell, parse_line, response_overrides
from .magic_args import split as split_line

if TYPE_CHECKING:
    from ..protocol.options import ResponseOptions
    from ..tools import ToolRound

__all__ = ["RealtimeMagics", "interpolate"]


@contextlib.contextmanager
def _usage() -> Iterator[None]:
    """Show a refused option as IPython shows a typo: one ``UsageError`` line."""
    try:
        yield
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None


# Seconds a cancelled cell waits for the server's confirmation before it ends anyway.
CANCEL_GRACE = 2.0
# {name}, {name.attr}, {name[0]}: the fields that are looked up in the user namespace;
# and the escapes {{ and }} (matched first, so "{{name}}" is the literal "{name}").
_FIELD = re.compile(
    r"(?P<open>\{\{)|(?P<close>\}\})"
    r"|\{(?P<field>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*|\[[^\[\]{}]*\])*)\}"
)
_formatter = string.Formatter()


def interpolate(text: str, namespace: dict[str, Any]) -> str:
    """Replace ``{name}`` fields whose root name is defined in ``namespace``; leave the rest.

    ``{{`` gives ``{``, and a ``}}`` after it gives ``}``, as in ``str.format``
    (``{{name}}`` is the literal ``{name}``). Other braces (JSON, code) are kept as they
    are: a ``}}`` that closes nested JSON, with no ``{{`` before it, stays ``}}``.
    """
    escapes_open = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal escapes_open
        if match.group("open"):
            escapes_open += 1
            return "{"
        if match.group("close"):
            if not escapes_open:
                return match.group(0)
            escapes_open -= 1
            return "}"
        try:
            value, _ = _formatter.get_field(match.group("field"), (), namespace)
        except (KeyError, AttributeError, IndexError, TypeError, ValueError):
            return match.group(0)
        return str(value)

    return _FIELD.sub(replace, text)


@magics_class
class RealtimeMagics(Magics):
    """``%%realtime`` sends the cell to the model; ``%realtime`` manages the Session."""

    model = Unicode(DEFAULT_MODEL, help="Model (or Azure deployment) for new Sessions.").tag(
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
    dialect = Unicode(
        "ga",
        help="Protocol dialect: 'ga' (OpenAI's only one since May 2026) or 'beta' (old "
        "servers, some Azure deployments).",
    ).tag(config=True)
    url = Unicode(
        "", help="websocket_base_url of a Realtime server; empty: OpenAI or the offline server."
    ).tag(config=True)
    chat_base_url = Unicode(
        "",
        help="A local model: its OpenAI-compatible Chat Completions base URL "
        "(e.g. http://127.0.0.1:11434/v1); needs chat_model.",
    ).tag(config=True)
    chat_model = Unicode("", help="A local model: its name at chat_base_url.").tag(config=True)
    timeout = Float(300.0, help="Seconds a blocking %%realtime cell waits for response.done.").tag(
        config=True
    )
    interpolate = Bool(True, help="Expand {name} from the user namespace in cells.").tag(
        config=True
    )
    prices = Dict(
        help="Prices in USD per 1M tokens, by model: {model: {kind: price}} (kinds: "
        "text_input, text_cached_input, text_output, audio_input, audio_cached_input, "
        "audio_output, image_input, image_cached_input); they override the built-in "
        "table and apply to any endpoint but the offline server."
    ).tag(config=True)
    audio_cap_seconds = Float(
        300.0, help="Longest spoken answer kept in the notebook as audio (seconds)."
    ).tag(config=True)
    # Session settings of new Sessions, checked against the openai SDK's types when set.
    reasoning_effort = Unicode(
        "", help="Reasoning effort (reasoning models): minimal, low, medium, high or xhigh."
    ).tag(config=True)
    truncation = Union(
        [Unicode(), Dict()],
        default_value="",
        help="How the server truncates a long conversation: 'auto', 'disabled' or "
        "{'type': 'retention_ratio', 'retention_ratio': 0.8}.",
    ).tag(config=True)
    noise_reduction = Unicode(
        "", help="Input audio noise reduction: near_field, far_field or none."
    ).tag(config=True)
    turn_detection = Union(
        [Unicode(), Dict()],
        default_value="",
        help="Turn detection: server_vad, semantic_vad, none, or a mode's settings "
        "({'type': 'semantic_vad', 'eagerness': 'low'}).",
    ).tag(config=True)
    session = Dict(
        help="Any other session fields, by their protocol names "
        "({'parallel_tool_calls': True, 'max_output_tokens': 500, 'tracing': 'auto'})."
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell, **kwargs)
        # (session name, cell key) -> ids of the items that cell's last run added, in order:
        # re-running the cell replaces them where they stand.
        self._anchors = CellAnchors()  # what each cell added, so a re-run replaces it
        self._typed = True  # the %%realtime cell's text is the notebook cell's source
        # The figure --figure sends, kept past the inline backend's closing of it.
        self._figures = FigureMemory()
        if shell is not None:
            self._figures.install(shell)

    @observe("reasoning_effort", "truncation", "noise_reduction", "turn_detection", "session")
    def _settings_changed(self, change: Any) -> None:
        try:
            self._session_settings()
        except ConfigurationError as exc:
            self.set_trait(change["name"], change["old"])
            raise UsageError(f"RealtimeMagics.{change['name']}: {exc}") from None

    def _session_settings(self) -> dict[str, Any]:
        """The settings traits as Session keywords, checked (ConfigurationError)."""
        settings: dict[str, Any] = dict(self.session)
        for name in ("reasoning_effort", "truncation", "noise_reduction", "turn_detection"):
            value = getattr(self, name)
            if value not in ("", {}):
                settings[name] = value
        if settings:
            from ..client.session import check_settings
            from ..protocol.events import Dialect

            dialect = Dialect.BETA if self.dialect.lower() == "beta" else Dialect.GA
            check_settings(settings, dialect)
        return settings

    @observe("prices")
    def _prices_changed(self, change: Any) -> None:
        from ..client import pricing

        try:
            pricing.set_prices(change["new"])
        except ValueError as exc:
            self.prices = change["old"]
            raise UsageError(f"RealtimeMagics.prices: {exc}") from None

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
        others = [session.name for session in sessions()]
        made = connect(name, **self._session_options())
        if others:  # a name typed wrong would otherwise start a conversation unnoticed
            display(Markdown(_new_session_note(name, others)))
        return made

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
        if self.chat_base_url or self.chat_model:
            options["chat_base_url"] = self.chat_base_url or None
            options["chat_model"] = self.chat_model or None
        with _usage():
            settings = self._session_settings()
        if settings:
            options["settings"] = settings
        return options

    # %%realtime -------------------------------------------------------------------------

    @magic_arguments(name="%realtime")  # the usage line then reads "%%realtime"
    @argument("--instructions", metavar="TEXT", help="Instructions for this response only.")
    @argument(
        "--modalities",
        metavar="text,audio",
        help="Output modalities for this response: text and/or audio.",
    )
    @argument("--voice", metavar="NAME", help="Voice for this response's audio.")
    @argument(
        "--role",
        choices=["user", "system", "assistant"],
        help="Role of the message the cell becomes (default: user).",
    )
    @argument("--after", metavar="ITEM_ID", help="Insert after this item id ('root': first).")
    @argument("--no-response", action="store_true", help="Only add the item.")
    @argument(
        "--function-output",
        metavar="CALL_ID",
        help="The cell is the output of this function call.",
    )
    @argument(
        "--out",
        metavar="VAR",
        help="Bind the finished ResponseResult to VAR (with --background: its "
        "ResponseHandle at once; VAR.wait() gives the result).",
    )
    @argument(
        "--format",
        choices=["markdown", "text"],
        help="Render the answer as Markdown (default) or plain text.",
    )
    @argument("--session", metavar="NAME", default="default", help="The Session to use.")
    @argument(
        "--oob",
        action="store_true",
        help="Out of band: conversation 'none'; the cell and the answer stay out of "
        "the conversation.",
    )
    @argument("--background", action="store_true", help="Return at once; keep streaming.")
    @argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        help="Seconds to wait for the answer before cancelling it (default: "
        "RealtimeMagics.timeout, 300); the cell ends at most 2 s later, confirmed or not.",
    )
    @argument("--max-output-tokens", metavar="N", help="Token limit (1 to 4096, or inf).")
    @argument(
        "--reasoning-effort",
        metavar="EFFORT",
        help="Reasoning effort of this response (reasoning models): minimal, low, medium, "
        "high or xhigh.",
    )
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
    @argument(
        "--to-cell",
        action="store_true",
        help="Put the answer's code blocks (joined, in order) into a new cell below; "
        "nothing is run (with --background: a 'Copy code' button under the answer).",
    )
    @argument(
        "--image",
        metavar="SOURCE",
        action="append",
        help="An image after the text (repeatable): a file path, a variable holding a "
        "Figure, PIL image, array or PNG/JPEG bytes, or Out[N] / _N.",
    )
    @argument(
        "--figure",
        action="store_true",
        help="The figure matplotlib holds (plt.gcf()) as an image after the text.",
    )
    @argument(
        "--image-detail",
        choices=["auto", "low", "high"],
        help="How closely the model looks at the images (default: the server's, auto).",
    )
    @cell_magic
    def realtime(self, line: str, cell: str) -> ResponseResult | None:
        """Send the cell as a conversation item and stream the model's answer below it.

        Blocks until the response is done (so saved notebooks hold the whole answer);
        Ctrl-C or a kernel interrupt cancels the response and keeps the Session usable.
        Options are read as a shell reads them: quote values with spaces.
        """
        with _usage():
            # Everything the line and the cell say is checked before anything is sent.
            args = self.realtime.parser.parse_args(split_line(line))
            check_cell(args)
            text = cell.strip("\n")
            if self.interpolate and not args.no_interpolate:
                text = interpolate(text, self._user_ns)
            # Encoded (and refused) here, before anything is sent.
            args.image_parts = self._cell_images(args)
            if not text.strip() and not args.oob and not args.image_parts:
                raise ConfigurationError("the cell is empty: write the message below %%realtime")
        session = self._session(args.session)
        with _usage():
            _check_in_session(session, args)
        key = None
        if not (args.oob or args.append):
            key = (session.name, CellAnchors.cell_key(self.shell, line, cell))
            self._replace(session, key, args)
        added: list[str] = []
        # Each answer's final output keeps the items it added (%realtime resume reads them).
        sources = [*(args.image or ()), *(["--figure"] if args.figure else [])]
        body = cell.strip("\n") if self._typed else None  # %realtime fix sends no cell
        args.record = TurnRecorder(session, added, sources, body)
        # Approvals are asked in this cell: by its tool view, or in an area made now.
        from ..render.approval import BackgroundApprovals, CellApprovals
        from ..tools import asking, toolbox

        approvals: CellApprovals | BackgroundApprovals | None = CellApprovals()
        if args.background:
            wanted = any(tool.approval for tool in toolbox(session).values()) or (
                session.tools.hosted is not None and _mcp_asks_approval(session)
            )
            approvals = BackgroundApprovals() if wanted else None
        if key is not None:
            # Remembered before the response is requested: if the server refuses it, a
            # re-run still replaces this cell's message instead of adding a second copy.
            self._anchors.remember(key, added)
        with asking(approvals):
            item_id, handle = self._post(session, args, text, added)
        if handle is None:
            return None
        # Placed in the middle (see _post): its answers join the conversation after it.
        place = item_id if handle.out_of_band else None
        if args.background:
            self._in_background(session, handle, args, added, place)
            return None
        try:
            with asking(approvals):  # rounds run in place ask here too
                result = self._show(session, handle, args, added, place)
        finally:
            if isinstance(approvals, CellApprovals):
                approvals.close()  # later calls have no one to ask here
        if args.out:
            self._user_ns[args.out] = result
        self._to_cell(args, result)
        _fail_if_failed(result)
        return None

    def _in_background(
        self,
        session: Session,
        handle: ResponseHandle,
        args: Any,
        added: list[str],
        place: str | None,
    ) -> None:
        """Stream the response into the cell from a background thread; return at once."""
        # Imported here, not at load: %load_ext stays fast (the views pull in Markdown
        # parsing and pydantic, which load_ipython_extension warms in the background).
        from ..render.cell import CellView
        from ..render.voice import voice_in_background

        # Only the first response streams into the cell: new outputs must not be
        # displayed from a background thread. Tool rounds still run (session.tools); an
        # answer placed in the middle gets its messages and calls there, not their round.
        if place is None:
            handle.add_done_callback(lambda done: added.extend(item_ids(done)))
        else:
            handle.add_done_callback(
                lambda done: _in_thread(_place_finished, session, place, done, added)
            )
        voice_in_background(session, handle, cap_seconds=self.audio_cap_seconds)
        CellView(
            session, handle, plain=args.format == "text", record=args.record
        ).run_in_background()
        if args.to_cell:  # no reply is left to carry a new cell: a copy button instead
            from ..render.copy_slot import CopySlot

            CopySlot().watch(handle)
        if args.out:
            self._user_ns[args.out] = handle

    def _replace(self, session: Session, key: tuple[str, str], args: Any) -> None:
        """Delete what this cell's last run added and aim its new item where that stood
        (``args.after``)."""
        replacement = self._anchors.clear(session, key, args.after)
        args.after = replacement.after
        if replacement.vacated and args.function_output and args.after is None:
            # Its old output went with the call it answered: answer the call where it is.
            calls = (i for i in session.items if i.type == "function_call")
            args.after = next((c.id for c in calls if c.call_id == args.function_output), None)
        if replacement.others:
            display(
                Markdown(
                    "The function call this cell replaced had been answered by another "
                    "cell (or code): that output was deleted with it. Run that cell again "
                    "to answer the new call."
                )
            )

    def _to_cell(self, args: Any, result: ResponseResult) -> None:
        """With --to-cell: put the code blocks of a completed answer into a new cell below
        this one (the execute reply's ``set_next_input`` payload: the front end adds the
        cell; nothing runs), or say in one line why there is none."""
        if not args.to_cell:
            return
        from ..render.code_blocks import (
            cell_text,  # only when asked: a plain cell imports nothing new
        )
        from ..render.markdown import safe_inline

        if result.status != "completed":
            status = safe_inline(result.status)
            display(Markdown(f"`--to-cell`: the answer is {status}, so no cell was added."))
            return
        code = cell_text(result.text)
        if code is None:
            display(Markdown("`--to-cell`: the answer has no code block, so no cell was added."))
            return
        if self.shell is not None:
            self.shell.set_next_input(code, replace=False)

    def _show(
        self,
        session: Session,
        handle: ResponseHandle,
        args: Any,
        added: list[str],
        place: str | None = None,
    ) -> ResponseResult:
        """Stream the response, then each tool round and the follow-up it requests;
        return the last result. ``added`` collects the ids of the items they add.
        ``place``: the cell's item when it stands in the middle of the conversation (its
        answers, out of band, are placed after it, and their tool rounds run there)."""
        from ..render.approval import ToolRoundView, manual_calls_markdown
        from ..render.cell import CellView
        from ..render.voice import VoiceOutput, wants_audio

        plain = args.format == "text"
        while True:
            voice = (
                VoiceOutput(session, handle, cap_seconds=self.audio_cap_seconds)
                if wants_audio(handle, session)
                else None
            )
            view = CellView(session, handle, plain=plain, record=args.record)
            timeout = self.timeout if args.timeout is None else args.timeout
            try:
                result = view.run(timeout=timeout)
            except KeyboardInterrupt:
                handle.cancel(grace=CANCEL_GRACE)
                result = view.finish()
            except TimeoutError:
                confirmed = handle.cancel(grace=CANCEL_GRACE)
                if voice is not None:
                    voice.close()
                view.finish()  # the answer so far, marked cancelled (or the error it met)
                unconfirmed = (
                    "" if confirmed else f" without the server's confirmation in {CANCEL_GRACE:g} s"
                )
                # One line (see load_ipython_extension), without the cell's text.
                raise RealtimeError(
                    f"no answer within {timeout:g} s, so it was cancelled{unconfirmed} "
                    "(--timeout SECONDS waits longer)"
                ) from None
            if voice is not None:
                voice.finish(result)
            placed = _keep(session, result, added, place)
            place = placed[-1][0] if placed else place
            calls = result.tool_requests
            if not calls or result.status != "completed":
                return result
            if result.out_of_band and place is None:
                return result  # --oob: its calls stay out of the conversation
            tool_round = _round_of(session, result, placed, response_overrides(args))
            if tool_round is None:  # not registered (or auto_run off): the user answers
                display(Markdown(manual_calls_markdown(calls)))
                return result
            try:
                ToolRoundView(tool_round, plain=plain).run()
            except KeyboardInterrupt:
                return result
            outputs = [c.output_item_id for c in tool_round.calls if c.output_item_id]
            added += outputs
            if tool_round.error is not None:  # an output could not be posted: say so
                raise tool_round.error
            if place is not None and outputs:
                place = outputs[-1]
            if tool_round.follow_up is None:
                return result
            handle = tool_round.follow_up

    def _cell_images(self, args: Any) -> list[Any]:
        """The cell's ``--image`` sources and ``--figure`` as image parts (each refused
        in one line: unreadable, not an image, too large, a remote URL)."""
        if not (args.image or args.figure):
            return []
        from ..client.images import image_part

        sources: list[tuple[Any, str | None]] = [(text, None) for text in args.image or ()]
        if args.figure:
            sources.append((self._figures.current(), "--figure"))
        parts = []
        for source, name in sources:
            part = image_part(source, args.image_detail, None if name else self._user_ns)
            parts.append(part)
        return parts

    def _post(
        self, session: Session, args: Any, text: str, added: list[str]
    ) -> tuple[str | None, ResponseHandle | None]:
        """Add the cell's item (its id joins ``added`` at once) and request the response;
        return the item's id (``None`` out of band) and the response (``None`` with
        --no-response)."""
        overrides = response_overrides(args)
        if "modalities" not in overrides:
            # While a voice control holds the Session's output at audio, a cell answers
            # as it did before (text, unless the user chose otherwise).
            from ..client.voice_switch import typed_modalities

            before = typed_modalities(session)
            if before is not None:
                overrides["modalities"] = before
        role = args.role or "user"
        if args.oob:
            # The cell (after any --input items) is the response's input; nothing enters
            # the conversation.
            overrides["input"] = [
                *(overrides.get("input") or ()),
                message_with_images(text, role, session.dialect, args.image_parts, None),
            ]
            return None, session.create_response(**overrides)
        if args.after is None and not args.function_output and not args.no_response:
            # One turn (message + response): its answer cannot go to another question.
            handle = session.ask(text, role=role, images=args.image_parts, **overrides)
            added.append(handle.item_ids[0])
            return handle.item_ids[0], handle
        if args.function_output:
            item_id = session.add_function_output(args.function_output, text, after=args.after)
        else:
            item_id = session.add_message(
                text, role=role, after=args.after, images=args.image_parts
            )
        added.append(item_id)
        if args.no_response:
            return item_id, None
        order = session.item_ids()
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
        """Manage a Session: %realtime COMMAND [--session NAME] (default command: status).

        connect            connect (or reconnect) with the configured defaults
        status             where the Session is connected, what is running, its settings
        history            the conversation's items as a table
        events [N]         the last N server events (default 20)
        reset              close the Session and start a fresh conversation
        close              close the Session
        record FILE        write every event, sent and received, to FILE as JSON lines
                           (keys replaced by ***; --raw keeps the frames as they were)
        record --stop      stop recording
        tools [--notebook] the registered function tools (--notebook: first enable the
                           built-in notebook tools: variables, DataFrames, cells, last error)
        chat [--side]      a chat panel on the Session (--side: JupyterLab's side area)
        voice [--transcribe MODEL | --no-transcribe | --off]
                           talk with the Session: hold-to-talk and hands-free microphone;
                           while it is on the Session answers in audio (cells still
                           answer as before); --transcribe: show what you said,
                           transcribed by MODEL; --off: turn it off (output as before)
        fix [--to-cell] [--oob]
                           ask why the last error happened: the failing cell's source and
                           its traceback (colours stripped, keys scrubbed, bounded) are
                           sent as a message in the conversation (--oob: out of band);
                           --to-cell: the answer's code goes into a new cell below
        mcp add LABEL URL [--allow TOOL,…] [--approve always|never|TOOL,…]
                           a remote MCP server the service runs (offline: the embedded
                           server); headers and tokens only through
                           session.add_mcp_server(..., headers=...), never in a cell
        mcp add LABEL --command "CMD ARGS" | --url URL [--allow TOOL,…]
                           [--approve always|never|TOOL,…]
                           start a local MCP server (stdio, or Streamable HTTP from the
                           kernel) and offer its tools as LABEL__TOOL
        mcp list | mcp remove LABEL   the MCP servers and their tools; stop one
        resume [FILE] [--replace | --append]
                           rebuild a saved conversation without asking the model: this
                           notebook's %%realtime answers (or NOTEBOOK.ipynb, a recording
                           .jsonl, a chat panel export .json); re-running a resumed cell
                           replaces its turn; a Session with items needs --replace or
                           --append
        inspect [ID] [--live]  the events, sent and received, of the last turn (or of the
                           turn a response or item ID names; "session": events of no
                           turn), with its latency; --live: updated while it runs

        --session NAME picks another Session (default: "default").
        Defaults live in traitlets: %config RealtimeMagics.model = "gpt-realtime-2.1"
        (also voice, instructions, modalities, dialect, url, timeout, and the session
        settings reasoning_effort, truncation, noise_reduction, turn_detection, session).
        """
        with _usage():
            command = parse_line(line)
        name = command.session
        if command.name == "connect":
            return self._status(connect(name, **self._session_options()))
        if command.name == "status":
            session = get_session(name)
            names = [s.name for s in sessions()]
            if session is None and names:
                return Markdown(_sessions_line("No Session {}", name, "Sessions", names))
            return self._status(session)
        if command.name == "voice" and command.words == ("--off",):
            return self._voice_off(name)
        if command.name == "fix":
            return self._fix(command)
        recording = command.name == "record" and list(command.words) != ["--stop"]
        adding = command.name == "mcp" and command.words[:1] == ("add",)
        if command.name in ("tools", "chat", "voice", "resume") or recording or adding:
            # These connect if needed, like %%realtime: tools are sent with session.update,
            # a panel talks at once, and record FILE records from the connection on.
            return self._run_command(self._session(name), command)
        session = get_session(name)
        if session is None:
            guess = _closest(name, [s.name for s in sessions()])
            hint = f" (did you mean {guess!r}?)" if guess else ""
            raise UsageError(f"no Session {name!r} yet{hint}: run %realtime connect first")
        return self._run_command(session, command)

    def _fix(self, command: LineCommand) -> None:
        """Ask about this kernel's last error as a ``%%realtime`` cell would (its options:
        --to-cell, --oob); one line when there has been no error."""
        import shlex

        from .last_error import fix_message, last_error

        error = last_error(self.shell)
        if error is None:
            display(Markdown("No error yet in this kernel: nothing to fix."))
            return
        options = ["--no-interpolate", "--session", shlex.quote(command.session)]
        self._typed = False  # the message is made here, not the cell's source
        try:
            self.realtime(" ".join([*options, *command.words]), fix_message(error))
        finally:
            self._typed = True

    def _run_command(self, session: Session, command: LineCommand) -> Any:
        action = getattr(self, f"_command_{command.name}")
        with _usage():
            return action(session, list(command.words))

    def _command_history(self, session: Session, rest: list[str]) -> None:
        from ..render.tables import history_table

        display(Markdown(history_table(session)))

    def _command_tools(self, session: Session, rest: list[str]) -> Markdown:
        if rest == ["--notebook"]:
            from ..tools.notebook_tools import enable

            enable(session, shell=self.shell)
        from ..render.tables import tools_table

        return Markdown(tools_table(session))

    def _command_mcp(self, session: Session, rest: list[str]) -> Markdown:
        from ..render.tables import mcp_table
        from .magic_args import parse_mcp

        command = parse_mcp(rest)
        if command.action == "add" and command.remote:
            session.add_mcp_server(
                command.label,
                url=command.url,
                allowed_tools=command.allowed_tools,
                require_approval=command.approval,
            )
        elif command.action == "add":
            session.add_mcp_server(
                command.label,
                command=list(command.command) or None,
                url=command.url,
                via="kernel" if command.url is not None else None,
                allowed_tools=command.allowed_tools,
                approval=command.approval,
            )
        elif command.action == "remove":
            session.remove_mcp_server(command.label)
        return Markdown(mcp_table(session))

    def _command_events(self, session: Session, rest: list[str]) -> list[dict[str, Any]]:
        from ..protocol.images import without_image_data

        events = session.events[-LineCommand("events", session.name, tuple(rest)).count :]
        return [without_image_data(event) for event in events]  # images as labels

    def _command_inspect(self, session: Session, rest: list[str]) -> Markdown | None:
        from ..render.inspector import LiveInspector, timeline_markdown

        ids = [word for word in rest if word != "--live"]
        key = ids[0] if ids else None
        if key == "session":
            everything = session.session_timeline()
            return Markdown(timeline_markdown(everything, title="Events of no turn"))
        timeline = session.timeline(key)
        if timeline is None:
            if key is None:
                raise ConfigurationError("no turn yet: nothing to inspect")
            raise ConfigurationError(
                f"no turn with a response or item {key!r} (forgotten, or not of this "
                "Session: %realtime history lists the items)"
            )
        title = f"Events of {timeline.key if key is None else key}"
        if "--live" in rest and not timeline.done:
            LiveInspector(session, timeline.key, title).start()
            return None
        return Markdown(timeline_markdown(timeline, title=title))

    def _command_reset(self, session: Session, rest: list[str]) -> None:
        session.close()
        connect(session.name, **self._session_options())

    def _command_close(self, session: Session, rest: list[str]) -> None:
        session.close()

    def _command_record(self, session: Session, rest: list[str]) -> None:
        if rest == ["--stop"]:
            session.stop_recording()
            return
        path = Path(next(word for word in rest if word != "--raw")).expanduser()
        try:
            session.record(path, raw="--raw" in rest)
        except OSError as exc:  # e.g. no permission: one line, like a typo
            raise ConfigurationError(f"cannot record to {path}: {exc.strerror}") from None

    def _command_resume(self, session: Session, rest: list[str]) -> Markdown:
        from ..client.resume import resume
        from ..render.markdown import safe_markdown
        from .magic_args import resume_arguments

        path, mode = resume_arguments(rest)

        def remember(key: str, ids: list[str]) -> None:
            self._anchors.remember((session.name, key), ids)  # a re-run replaces them

        report = resume(session, path, mode=mode, namespace=self._user_ns, remember=remember)
        return Markdown(safe_markdown(str(report)))

    def _command_chat(self, session: Session, rest: list[str]) -> None:
        from .chat import ChatPanel

        unknown = [word for word in rest if word != "--side"]
        if unknown:
            raise ConfigurationError(f"usage: %realtime chat [--side], not {' '.join(unknown)!r}")
        ChatPanel(session).show(sidecar="--side" in rest)

    def _command_voice(self, session: Session, rest: list[str]) -> None:
        from .voice_turns import show_voice

        if rest:
            session.set_input_transcription(rest[1] if rest[0] == "--transcribe" else None)
        show_voice(session)

    def _voice_off(self, name: str) -> Markdown:
        from ..render.markdown import inline_code
        from .voice_turns import hide_voice

        if not hide_voice(name):
            raise UsageError(f"no voice control is on for Session {name!r}")
        return Markdown(f"Voice is off for Session {inline_code(name)}: it answers as before.")

    def _status(self, session: Session | None) -> Markdown:
        from ..render.inspector import session_totals
        from ..render.markdown import inline_code, safe_inline, safe_markdown
        from ..render.settings import settings_markdown

        if session is None:
            return Markdown("No Session yet: `%realtime connect` or run a `%%realtime` cell.")
        state = session.status.describe()
        active = safe_inline(session.active_response_id or "none")  # server-made
        line = (
            f"Session {inline_code(session.name)}: {state} to "
            f"{safe_markdown(session.endpoint.describe())}; "
            f"{session.item_count} items; active response: {active}; "
            f"pending requests: {session.pending_responses}; "
            f"{safe_inline(session_totals(session))}.\n\n"  # names a model a server may send
            + settings_markdown(session.settings, session.pending_settings, session.settings_lost)
        )
        warning = deprecation_warning(str(session.session_config.get("model") or session.model))
        return Markdown(f"{line}\n\n{safe_inline(warning)}" if warning else line)


def _closest(name: str, names: list[str]) -> str | None:
    """The Session name ``name`` was most likely meant to be, if one is close."""
    import difflib

    close = difflib.get_close_matches(name, [n for n in names if n != name], n=1, cutoff=0.6)
    return close[0] if close else None


def _sessions_line(start: str, name: str, label: str, names: list[str]) -> str:
    """``start`` (``{}`` names ``name``), the Sessions there are, under ``label``, and the
    one ``name`` was likely meant to be: names shown as inline code, inert whatever they
    hold."""
    from ..render.markdown import inline_code

    guess = _closest(name, names)
    hint = f" Did you mean {inline_code(guess)}?" if guess else ""
    listed = ", ".join(inline_code(n) for n in names)
    return f"{start.format(inline_code(name))} ({label}: {listed}).{hint}"


def _new_session_note(name: str, others: list[str]) -> str:
    """The line a cell shows when its ``--session`` made a new Session beside others."""
    start = "rt_notebook: new Session {}, a conversation of its own"
    return f"*{_sessions_line(start, name, 'the others', others)}*"


def _fail_if_failed(result: ResponseResult) -> None:
    """A failed answer ends the cell with an error (one line, see ``cell_errors``) under
    its footer: "Run All" and headless runs stop there, saying why."""
    if result.status == "failed":
        raise RealtimeError(f"the answer failed: {result.reason or 'the server gave no reason'}")


def _keep(
    session: Session, result: ResponseResult, added: list[str], place: str | None
) -> list[tuple[str, ItemSnapshot]]:
    """Note the items a response added to ``added``; an answer to a cell placed in the
    middle (``place``: the item it follows) is first added there. Returns what was placed."""
    if not result.out_of_band:
        added += [item.id for item in result.items]
        return []
    if place is None:
        return []  # --oob: nothing enters the conversation
    placed = insert_answer(session, place, result)
    added += [new_id for new_id, _ in placed]
    return placed


def _round_of(
    session: Session,
    result: ResponseResult,
    placed: list[tuple[str, ItemSnapshot]],
    overrides: ResponseOptions,
) -> ToolRound | None:
    """The tool round answering ``result``'s calls: the runner's own, or (an answer
    placed in the middle) one run where its calls were ``placed``."""
    from ..tools import toolbox

    if not result.out_of_band:
        return toolbox(session).round_for(str(result.id))
    calls = [
        (new_id, call.call_id or "", call.name or "", call.arguments or "")
        for new_id, call in placed
        if call.type == "function_call"
    ]
    if not calls:
        return None  # none could be placed (no call_id): the user answers, if anyone
    return toolbox(session).run_in_place(
        str(result.id), calls, after=placed[-1][0], overrides=overrides
    )


def _mcp_asks_approval(session: Session) -> bool:
    """Whether a remote MCP server of ``session`` asks before its calls."""
    from ..tools.mcp_servers import mcp_servers  # loaded only where MCP servers are

    return mcp_servers(session).asks_approval()


def _in_thread(target: Any, *args: Any) -> None:
    """Run ``target`` on a thread of its own (a done callback may run on the I/O thread,
    which must not wait for the items it adds)."""
    import threading

    threading.Thread(target=target, args=args, name="rt_notebook-place", daemon=True).start()


def _place_finished(session: Session, place: str, handle: ResponseHandle, added: list[str]) -> None:
    """Place a finished background answer after the cell's item (see ``_post``)."""
    if handle.error is not None:
        return
    with contextlib.suppress(RealtimeError):  # closed meanwhile: nothing to place it in
        added += [new_id for new_id, _ in insert_answer(session, place, handle.wait(0))]


def _check_in_session(session: Session, args: Any) -> None:
    """Refuse options naming things this Session does not have (before anything is sent)."""
    wanted = [] if args.after in (None, "root") else [args.after]
    wanted += [i.strip() for i in (args.input or "").split(",") if i.strip()]
    for item_id in wanted:
        if session.item_index(item_id) is None:
            raise ConfigurationError(
                f"no item {item_id!r} in Session {session.name!r} (%realtime history lists them)"
            )
    if args.function_output:
        calls = {item.call_id for item in session.items if item.type == "function_call"}
        if args.function_output not in calls:
            raise ConfigurationError(
                f"no function call {args.function_output!r} in Session {session.name!r} "
                "to answer (%realtime history lists the calls)"
            )
    overrides = response_overrides(args)
    if overrides.get("tools"):
        session.tools.schemas(overrides["tools"])  # refuses names nobody registered
    choice = overrides.get("tool_choice")
    if isinstance(choice, dict):
        declared = {tool.get("name") for tool in session.session_config.get("tools") or []}
        from ..tools import toolbox

        if choice["name"] not in {*toolbox(session), *declared, *(overrides.get("tools") or [])}:
            raise ConfigurationError(
                f"--tool-choice {choice['name']}: no tool of that name (%realtime tools lists them)"
            )


def _plain_help() -> None:
    """Help as ``%realtime?`` and ``%%realtime?`` show it: plain text, no reST markup.

    ``%realtime?`` shows the line magic's help: it lists the cell magic's options too.
    """
    cell = RealtimeMagics.realtime
    usage = (cell.__doc__ or "").removeprefix("::\n\n").replace("  %%realtime", "%%realtime", 1)
    cell.__doc__ = usage
    line: Any = RealtimeMagics.realtime_line
    commands = textwrap.dedent((line.__doc__ or "").partition("\n")[2]).strip()
    summary = (line.__doc__ or "").partition("\n")[0]
    line.__doc__ = f"{summary}\n\n{commands}\n\n{usage}"


_plain_help()
