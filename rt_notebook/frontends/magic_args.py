"""Front end, pure part: the magics' command lines, split as a shell would and checked whole.

Nothing here touches a Session, IPython or the network, so every refusal happens before
anything is sent: a cell with a typo never adds its message, and fixing and re-running it
never leaves two copies. Every refusal is a :class:`~rt_notebook.errors.ConfigurationError`
with a one-line message; the magics show it as a ``UsageError`` (no traceback).
"""

from __future__ import annotations

import json
import keyword
import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ..protocol.options import RESPONSE_OPTIONS, ResponseOptions
from ..protocol.payloads import (
    MAX_OUTPUT_TOKENS,
    METADATA_MAX_KEY,
    METADATA_MAX_PAIRS,
    METADATA_MAX_VALUE,
)

__all__ = [
    "FIX_OPTIONS",
    "LINE_COMMANDS",
    "LineCommand",
    "McpCommand",
    "check_cell",
    "option_flag",
    "parse_line",
    "parse_mcp",
    "parse_metadata",
    "reasoning_effort",
    "response_overrides",
    "resume_arguments",
    "split",
]

# The %%realtime option that sets a response option (ResponseOptions), where the names differ.
_FLAG_OF_OPTION = {"conversation": "oob"}


def option_flag(option: str) -> str:
    """The name (as parsed) of the ``%%realtime`` option that sets response ``option``."""
    return _FLAG_OF_OPTION.get(option, option)


# The options that only shape a response: meaningless with --no-response.
_RESPONSE_OPTIONS = (
    *sorted(option_flag(option) for option in RESPONSE_OPTIONS),
    "out",
    "background",
    "timeout",
    "format",
    "to_cell",
)
_TOOL_CHOICES = ("auto", "none", "required")


def split(line: str) -> list[str]:
    """The words of a magic's line as a POSIX shell splits them (quotes removed)."""
    try:
        return shlex.split(line)
    except ValueError as exc:  # "No closing quotation", "No escaped character"
        raise ConfigurationError(f"cannot read the options: {str(exc).lower()}") from None


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# %%realtime --------------------------------------------------------------------------------


def check_cell(args: Any) -> None:
    """Refuse bad values and combinations of ``%%realtime`` options (``args`` is the
    parsed namespace); return quietly when the whole line makes sense."""
    _check_combinations(args)
    _check_values(args)
    response_overrides(args)  # parses (and so checks) the values a response takes


def _check_combinations(args: Any) -> None:
    if args.oob and args.no_response:
        raise ConfigurationError(
            "--oob adds no item and --no-response asks for no answer: together they do nothing"
        )
    if args.no_response:
        given = [_flag(name) for name in _RESPONSE_OPTIONS if getattr(args, name)]
        if args.timeout is not None and "--timeout" not in given:
            given.append("--timeout")
        if given:
            raise ConfigurationError(
                f"--no-response only adds the item, so {', '.join(given)} would do nothing: "
                "drop one or the other"
            )
    if args.oob:
        for name, why in (
            ("after", "nothing is inserted out of band; --input ITEM_IDS chooses the context"),
            ("function_output", "a function's output must enter the conversation"),
            ("append", "an out-of-band cell adds no items to keep or replace"),
        ):
            if getattr(args, name):
                raise ConfigurationError(f"--oob with {_flag(name)}: {why}")
    elif args.input:
        raise ConfigurationError("--input gives an out-of-band response its context: add --oob")
    if args.function_output and args.role is not None:
        raise ConfigurationError("--function-output items have no role: drop --role")
    if args.background and args.timeout is not None:
        raise ConfigurationError(
            "--background does not wait, so --timeout has nothing to limit: "
            "with --out VAR, VAR.wait(SECONDS) waits for the answer"
        )
    _check_images(args)


def _check_images(args: Any) -> None:
    """Images go in the cell's user message (their sources are read by the magic)."""
    images = getattr(args, "image", None) or getattr(args, "figure", False)
    if images and args.function_output:
        raise ConfigurationError("--function-output items hold text only: drop --image/--figure")
    if images and args.role not in (None, "user"):
        raise ConfigurationError(f"images go in user messages, not {args.role} messages")
    if getattr(args, "image_detail", None) and not images:
        raise ConfigurationError("--image-detail applies to images: add --image or --figure")


def _check_values(args: Any) -> None:
    if args.timeout is not None and (math.isnan(args.timeout) or args.timeout <= 0):
        raise ConfigurationError(
            f"--timeout wants a positive number of seconds, not {args.timeout:g}"
        )
    for name in ("voice", "after", "function_output", "session", "tool_choice"):
        value = getattr(args, name)
        if value is not None and not value.strip():
            raise ConfigurationError(f"{_flag(name)} needs a value, not an empty string")
    if args.out is not None and (not args.out.isidentifier() or keyword.iskeyword(args.out)):
        raise ConfigurationError(f"--out wants a Python variable name, not {args.out!r}")


def response_overrides(args: Any) -> ResponseOptions:
    """The response options (``Session.create_response`` keywords) a cell's options ask
    for; ``--oob`` gives ``conversation`` and the ``--input`` references (the magic adds
    the cell's message after them)."""
    overrides: ResponseOptions = {}
    if args.instructions is not None:
        overrides["instructions"] = args.instructions
    if args.modalities is not None:
        overrides["modalities"] = _modalities(args.modalities)
    if args.voice:
        overrides["voice"] = args.voice.strip()
    if args.max_output_tokens is not None:
        overrides["max_output_tokens"] = _max_output_tokens(args.max_output_tokens)
    if getattr(args, "reasoning_effort", None) is not None:
        overrides["reasoning_effort"] = reasoning_effort(args.reasoning_effort)
    tools = None
    if args.tools is not None:
        tools = _names(args.tools, "--tools")
        if "none" in tools and tools != ["none"]:
            raise ConfigurationError("--tools none means no tools: do not list names with it")
        overrides["tools"] = [] if tools == ["none"] else tools
    if args.tool_choice:
        choice = args.tool_choice.strip()
        if choice == "required" and tools == ["none"]:
            raise ConfigurationError("--tool-choice required needs a tool, and --tools is none")
        if choice not in _TOOL_CHOICES and tools is not None and choice not in tools:
            raise ConfigurationError(f"--tool-choice {choice}: that tool is not in --tools")
        overrides["tool_choice"] = (
            choice if choice in _TOOL_CHOICES else {"type": "function", "name": choice}
        )
    if args.metadata is not None:
        overrides["metadata"] = parse_metadata(args.metadata)
    if getattr(args, "oob", False):
        overrides["conversation"] = "none"
        references = [i.strip() for i in (args.input or "").split(",") if i.strip()]
        overrides["input"] = [{"type": "item_reference", "id": item_id} for item_id in references]
    return overrides


def _names(text: str, option: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise ConfigurationError(f"{option} wants comma-separated names, not {text!r}")
    return names


def _modalities(text: str) -> list[str]:
    wanted = _names(text, "--modalities")
    unknown = [name for name in wanted if name not in ("text", "audio")]
    if unknown:
        raise ConfigurationError(
            f"--modalities takes text and/or audio (comma-separated), not {', '.join(unknown)}"
        )
    return wanted


def reasoning_effort(text: str, option: str = "--reasoning-effort") -> str:
    """A reasoning effort the ``openai`` SDK's types name (loaded here, not at import)."""
    import typing

    from openai.types.realtime.realtime_reasoning_effort import RealtimeReasoningEffort

    allowed = typing.get_args(RealtimeReasoningEffort)
    if text.strip() not in allowed:
        raise ConfigurationError(f"{option} takes {', '.join(allowed)}, not {text!r}")
    return text.strip()


def _max_output_tokens(text: str) -> int | str:
    text = text.strip()
    if text == "inf":
        return text
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_OUTPUT_TOKENS:
        raise ConfigurationError(
            f"--max-output-tokens wants a whole number from 1 to {MAX_OUTPUT_TOKENS} or inf, "
            f"not {text!r}"
        )
    return limit


def parse_metadata(text: str) -> dict[str, str]:
    """``key=value,key2=value2`` or a JSON object, as string pairs within the API's limits."""
    text = text.strip()
    if text.startswith("{"):
        try:
            pairs = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"--metadata is not valid JSON: {exc}") from None
        if not isinstance(pairs, dict):
            raise ConfigurationError("--metadata must be a JSON object")
        metadata = {str(key): str(value) for key, value in pairs.items()}
    else:
        metadata = {}
        for pair in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise ConfigurationError(f"--metadata wants key=value pairs, not {pair!r}")
            metadata[key.strip()] = value.strip()
    if len(metadata) > METADATA_MAX_PAIRS:
        raise ConfigurationError(f"--metadata takes at most {METADATA_MAX_PAIRS} pairs")
    for key, value in metadata.items():
        if len(key) > METADATA_MAX_KEY or len(value) > METADATA_MAX_VALUE:
            raise ConfigurationError(
                f"--metadata keys are at most {METADATA_MAX_KEY} characters and values at "
                f"most {METADATA_MAX_VALUE} (key {key[:20]!r}…)"
            )
    return metadata


# %realtime ---------------------------------------------------------------------------------

# command -> its arguments, as the usage line shows them.
LINE_COMMANDS = {
    "connect": "",
    "status": "",
    "history": "",
    "events": "[N]",
    "reset": "",
    "close": "",
    "record": "FILE [--raw] | --stop",
    "tools": "[--notebook]",
    "chat": "[--side]",
    "voice": "[--transcribe MODEL | --no-transcribe | --off]",
    "inspect": "[RESPONSE_ID | ITEM_ID | session] [--live]",
    "fix": "[--to-cell] [--oob]",
    "resume": "[NOTEBOOK.ipynb | RECORDING.jsonl | EXPORT.json] [--replace | --append]",
    "mcp": (
        "add LABEL (URL | --command CMD | --url URL) [--allow TOOL,…] "
        "[--approve always|never|TOOL,…] | list | remove LABEL"
    ),
}
# The options %realtime fix passes on to the %%realtime cell it stands for.
FIX_OPTIONS = ("--to-cell", "--oob")
# Commands that take only flags: the flags each takes.
_FLAG_COMMANDS = {"tools": ("--notebook",), "fix": FIX_OPTIONS}


@dataclass(frozen=True)
class LineCommand:
    """A checked ``%realtime`` line: the command, its Session's name, its other words."""

    name: str
    session: str
    words: tuple[str, ...]

    @property
    def count(self) -> int:
        """``events [N]``: how many events to show."""
        return int(self.words[0]) if self.words else 20


def parse_line(line: str) -> LineCommand:
    """Read a ``%realtime`` line (``--session NAME`` anywhere); refuse what cannot work."""
    words = split(line)
    session = "default"
    rest: list[str] = []
    position = 0
    while position < len(words):
        word = words[position]
        position += 1
        if word == "--session" or word.startswith("--session="):
            name = word.partition("=")[2]
            if word == "--session" and position < len(words):
                name = words[position]
                position += 1
            if not name.strip() or name.startswith("-"):
                raise ConfigurationError("--session needs a name: --session NAME")
            session = name
        else:
            rest.append(word)
    command, arguments = (rest[0], tuple(rest[1:])) if rest else ("status", ())
    if command not in LINE_COMMANDS:
        raise ConfigurationError(
            f"unknown %realtime command {command!r}: {', '.join(LINE_COMMANDS)}"
        )
    _check_line_arguments(command, arguments)
    if command == "mcp":
        parse_mcp(arguments)
    if command == "resume":
        resume_arguments(arguments)
    return LineCommand(command, session, arguments)


def _check_line_arguments(command: str, words: Sequence[str]) -> None:
    usage = f"usage: %realtime {command} {LINE_COMMANDS[command]}".rstrip()
    if command == "events":
        if len(words) > 1 or (words and not (words[0].isdigit() and int(words[0]) > 0)):
            raise ConfigurationError(f"{usage} (N: how many, a whole number above 0)")
    elif command == "record":
        files = [word for word in words if word != "--raw"]
        if len(files) != 1 or (files == ["--stop"] and len(words) != 1):
            raise ConfigurationError(usage)
        if files[0] != "--stop":
            _check_record_path(Path(files[0]).expanduser(), usage)
    elif command in ("chat", "mcp", "resume"):
        pass  # the chat panel checks its own options; parse_mcp, resume_arguments
    elif command == "inspect":
        ids = [word for word in words if word != "--live"]
        if len(ids) > 1 or len(words) - len(ids) > 1 or any(w.startswith("-") for w in ids):
            raise ConfigurationError(usage)
    elif command == "voice":
        _check_voice_arguments(words, usage)
    elif command in _FLAG_COMMANDS:  # flags only, each at most once
        if any(w not in _FLAG_COMMANDS[command] for w in words) or len(set(words)) < len(words):
            raise ConfigurationError(usage)
    elif words:
        raise ConfigurationError(f"{usage} (no arguments, not {' '.join(words)!r})")


def resume_arguments(words: Sequence[str]) -> tuple[str | None, str | None]:
    """``%realtime resume``'s file (``None``: this notebook) and mode (``"replace"``,
    ``"append"`` or ``None``)."""
    usage = f"usage: %realtime resume {LINE_COMMANDS['resume']}"
    modes = [word[2:] for word in words if word in ("--replace", "--append")]
    files = [word for word in words if word not in ("--replace", "--append")]
    if len(modes) > 1:
        raise ConfigurationError(f"{usage} (--replace or --append, not both)")
    if len(files) > 1 or any(word.startswith("-") for word in files):
        raise ConfigurationError(usage)
    return (files[0] if files else None), (modes[0] if modes else None)


def _check_voice_arguments(words: Sequence[str], usage: str) -> None:
    transcribe = len(words) == 2 and words[0] == "--transcribe" and not words[1].startswith("-")
    if words and not (transcribe or list(words) in (["--no-transcribe"], ["--off"])):
        raise ConfigurationError(f"{usage} (MODEL: a transcription model, e.g. whisper-1)")


def _check_record_path(path: Path, usage: str) -> None:
    if path.name.startswith("-"):
        raise ConfigurationError(usage)
    if path.is_dir():
        raise ConfigurationError(f"{path} is a folder: record FILE wants a file name in it")
    if not path.parent.is_dir():
        raise ConfigurationError(f"cannot record to {path}: there is no folder {path.parent}")


@dataclass(frozen=True)
class McpCommand:
    """A checked ``%realtime mcp`` line: ``add``, ``list`` or ``remove`` and its options."""

    action: str
    label: str = ""
    command: tuple[str, ...] = ()  # --command, split as a shell would
    url: str | None = None
    allowed_tools: tuple[str, ...] | None = None
    approval: bool | tuple[str, ...] = False
    # A URL written after the label: a remote server the service runs (--url: the kernel).
    remote: bool = False


def parse_mcp(words: Sequence[str]) -> McpCommand:
    """Read the words after ``%realtime mcp``; refuse typos and bad combinations."""
    usage = f"usage: %realtime mcp {LINE_COMMANDS['mcp']}"
    if not words or words[0] not in ("add", "list", "remove"):
        raise ConfigurationError(usage)
    action, rest = words[0], list(words[1:])
    if action == "list":
        if rest:
            raise ConfigurationError(f"usage: %realtime mcp list (no arguments, not {rest[0]!r})")
        return McpCommand("list")
    if not rest or rest[0].startswith("-"):
        raise ConfigurationError(f"usage: %realtime mcp {action} LABEL ...")
    from ..tools.mcp_servers.naming import check_label

    label = check_label(rest.pop(0))
    if action == "remove":
        if rest:
            raise ConfigurationError(f"usage: %realtime mcp remove LABEL (not {rest[0]!r})")
        return McpCommand("remove", label)
    if rest and not rest[0].startswith("-"):
        url = rest.pop(0)
        options = _mcp_options(rest, usage)
        if "--command" in options or "--url" in options:
            raise ConfigurationError(
                "%realtime mcp add LABEL URL is a server the service runs; "
                "--command and --url are for servers the kernel runs: one of them"
            )
        command = _mcp_add(label, {**options, "--url": url, "--approve": _approve(options)})
        return replace(command, remote=True)
    return _mcp_add(label, _mcp_options(rest, usage))


def _approve(options: dict[str, str]) -> str:
    """A remote server's ``--approve``: ``always`` unless told (the service's default)."""
    return options.get("--approve", "always")


def _mcp_options(rest: list[str], usage: str) -> dict[str, str]:
    """``--name VALUE`` / ``--name=VALUE`` pairs of ``%realtime mcp add``, each at most once."""
    options: dict[str, str] = {}
    while rest:
        flag = rest.pop(0)
        name, _, inline = flag.partition("=")
        if name not in ("--command", "--url", "--allow", "--approve"):
            raise ConfigurationError(f"%realtime mcp add: unknown option {flag!r} ({usage})")
        if name in options:
            raise ConfigurationError(f"%realtime mcp add: {name} given twice")
        if not inline:
            if not rest or rest[0].startswith("--"):
                raise ConfigurationError(f"%realtime mcp add: {name} needs a value")
            inline = rest.pop(0)
        options[name] = inline
    return options


def _mcp_add(label: str, options: dict[str, str]) -> McpCommand:
    if ("--command" in options) == ("--url" in options):
        raise ConfigurationError("%realtime mcp add LABEL takes --command CMD or --url URL, one")
    command = tuple(split(options["--command"])) if "--command" in options else ()
    if "--command" in options and not command:
        raise ConfigurationError("%realtime mcp add: --command needs the program to run")
    url = options.get("--url")
    if url is not None and not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"--url must be an http:// or https:// URL, not {url!r}")
    allowed = tuple(_names(options["--allow"], "--allow")) if "--allow" in options else None
    approve = options.get("--approve", "never")
    approval: bool | tuple[str, ...]
    if approve in ("always", "never"):
        approval = approve == "always"
    else:
        approval = tuple(_names(approve, "--approve"))
    return McpCommand("add", label, command, url, allowed, approval)
