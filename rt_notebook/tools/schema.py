"""Pure function-tool schemas: a Python callable in, a Realtime function tool out.

:func:`function_tool` builds a :class:`Tool`: the JSON schema comes from the signature's
type hints through pydantic, the description from the docstring (parameter docs too,
Google/NumPy/Sphinx style, through griffe), and :meth:`Tool.validate` checks the model's
arguments against the same schema. No I/O, no threads.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic
import pydantic_core

from ..client.tool_host import ToolOptions
from ..errors import ConfigurationError
from ..protocol.options import Unpack

__all__ = [
    "DEFAULT_TIMEOUT",
    "TOOL_OPTIONS",
    "Tool",
    "ToolArgumentsError",
    "ToolOptions",
    "check_tool_options",
    "encode_output",
    "error_output",
    "function_tool",
]

DEFAULT_TIMEOUT = 30.0
# Names the Realtime API accepts for functions.
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


TOOL_OPTIONS: frozenset[str] = frozenset(ToolOptions.__annotations__)


def check_tool_options(options: Mapping[str, Any]) -> None:
    """Refuse a name that is no tool option, as a misspelt keyword argument is refused
    (``**options`` takes any name at run time)."""
    unknown = sorted(set(options) - TOOL_OPTIONS)
    if unknown:
        raise TypeError(
            f"unexpected tool option {unknown[0]!r} (options: {', '.join(sorted(TOOL_OPTIONS))})"
        )


class ToolArgumentsError(ValueError):
    """The model's arguments are not valid JSON or do not match the tool's schema."""


@dataclass(frozen=True, eq=False)
class Tool:
    """A Python callable the model may call. Calling the Tool calls the function."""

    name: str
    description: str
    function: Callable[..., Any] = field(repr=False)
    parameters: dict[str, Any] = field(repr=False)  # JSON schema of the arguments object
    approval: bool = False  # ask the user before every run
    timeout: float = DEFAULT_TIMEOUT  # seconds a run may take before it counts as failed
    _arguments: type[pydantic.BaseModel] = field(repr=False, default=pydantic.BaseModel)
    # Parameters passed by position (positional-only ones); the rest go by keyword.
    _positional: tuple[str, ...] = field(repr=False, default=())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    @property
    def schema(self) -> dict[str, Any]:
        """The Realtime function-tool definition (``session.tools`` / ``response.tools``)."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        }

    def validate(self, arguments: str | Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """Parse and validate the model's arguments; return ``(args, kwargs)`` for the call.

        Raises :class:`ToolArgumentsError` with a message meant for the model.
        """
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments or "{}")
            except json.JSONDecodeError as exc:
                raise ToolArgumentsError(f"arguments are not valid JSON: {exc}") from None
        if not isinstance(arguments, Mapping):
            raise ToolArgumentsError("arguments must be a JSON object")
        try:
            model = self._arguments.model_validate(arguments)
        except pydantic.ValidationError as exc:
            raise ToolArgumentsError(_describe_validation_error(exc)) from None
        # Defaults are filled in by validation, so every parameter has a value here.
        values = {
            info.alias or name: getattr(model, name)
            for name, info in type(model).model_fields.items()
        }
        args = [values.pop(name) for name in self._positional]
        return args, values

    def run(self, arguments: str | Mapping[str, Any]) -> Any:
        """Validate ``arguments`` and call the function (awaiting it if it is async)."""
        args, kwargs = self.validate(arguments)
        return self.call_validated(args, kwargs)

    def call_validated(self, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Call the function with arguments :meth:`validate` returned (awaited if async)."""
        result = self.function(*args, **kwargs)
        if inspect.isawaitable(result):
            # Tools run on worker threads, which have no running loop: a fresh one is fine.
            result = asyncio.run(_await(result))
        return result


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _describe_validation_error(exc: pydantic.ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False, include_context=False):
        where = ".".join(str(part) for part in error["loc"]) or "arguments"
        problems.append(f"{where}: {error['msg']}")
    return "invalid arguments: " + "; ".join(problems)


def function_tool(function: Callable[..., Any], **options: Unpack[ToolOptions]) -> Tool:
    """Build a :class:`Tool` from a callable's signature and docstring.

    Type hints become the JSON schema (through pydantic, so ``Annotated[..., Field(...)]``,
    ``Literal``, enums, dataclasses and models work); parameters without a hint accept any
    JSON value. ``*args`` / ``**kwargs`` are refused: the model can only send named
    arguments.
    """
    check_tool_options(options)
    if isinstance(function, Tool):
        function = function.function
    name = options.get("name") or str(getattr(function, "__name__", ""))
    description = options.get("description")
    if not _NAME.match(name):
        raise ConfigurationError(
            f"tool name {name!r} must be 1-64 letters, digits, '_' or '-' (pass name=...)"
        )
    summary, parameter_docs = _docstring(function)
    fields: dict[str, Any] = {}
    positional: list[str] = []
    signature = _signature(function, name)
    for index, parameter in enumerate(signature.parameters.values()):
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise ConfigurationError(
                f"tool {name}: *{parameter.name} cannot be filled by the model; "
                "use named parameters"
            )
        if parameter.kind is parameter.POSITIONAL_ONLY:
            positional.append(parameter.name)
        annotation = Any if parameter.annotation is parameter.empty else parameter.annotation
        default = ... if parameter.default is parameter.empty else parameter.default
        # Field names are neutral (p0, p1, ...) and the parameter name is the alias, so
        # parameters called "json", "schema" or "model_x" cannot clash with BaseModel.
        fields[f"p{index}"] = (
            annotation,
            pydantic.Field(
                default,
                alias=parameter.name,
                description=parameter_docs.get(parameter.name),
            ),
        )
    try:
        model = pydantic.create_model(
            f"{name}_arguments",
            __config__=pydantic.ConfigDict(extra="forbid"),
            **fields,
        )
        parameters = model.model_json_schema()
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError) as exc:
        raise ConfigurationError(f"tool {name}: {exc}") from None
    parameters.pop("title", None)
    return Tool(
        name=name,
        description=description if description is not None else summary,
        function=function,
        parameters=parameters,
        approval=options.get("approval", False),
        timeout=options.get("timeout", DEFAULT_TIMEOUT),
        _arguments=model,
        _positional=tuple(positional),
    )


def _signature(function: Callable[..., Any], name: str) -> inspect.Signature:
    """The signature with string annotations resolved (``from __future__ import annotations``)."""
    try:
        return inspect.signature(function, eval_str=True)
    except (NameError, SyntaxError):
        # An annotation naming something undefined: the model may send any value there.
        signature = inspect.signature(function)
        return signature.replace(
            parameters=[
                p.replace(annotation=Any) if isinstance(p.annotation, str) else p
                for p in signature.parameters.values()
            ]
        )
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the signature of {name}: {exc}") from None


def _docstring(function: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """The docstring's first paragraph and its parameter docs (read by griffe)."""
    doc = inspect.getdoc(function) or ""
    summary = doc.split("\n\n", 1)[0].strip()
    summary = " ".join(summary.split())
    if not doc:
        return summary, {}
    from griffe import Docstring, DocstringSectionKind  # a dependency; loaded on first use

    griffe_log = logging.getLogger("griffe")
    level = griffe_log.level
    # griffe warns about parameters documented without a type; that is normal here.
    griffe_log.setLevel(logging.ERROR)
    try:
        sections = Docstring(doc, lineno=1).parse("auto")
    except Exception:  # a docstring griffe cannot parse still has a summary
        return summary, {}
    finally:
        griffe_log.setLevel(level)
    parameters: dict[str, str] = {}
    for section in sections:
        if section.kind is DocstringSectionKind.parameters:
            for parameter in section.value:
                if parameter.description:
                    parameters[parameter.name] = " ".join(parameter.description.split())
    return summary, parameters


def encode_output(result: Any) -> str:
    """A tool's result as ``function_call_output.output``: strings as they are, the rest
    as JSON (pydantic's encoder: models, dataclasses, dates, sets; ``str()`` otherwise)."""
    from ..protocol.sendable import sendable_text

    if isinstance(result, str):
        return sendable_text(result)  # a lone surrogate would make the output unsendable
    try:
        return pydantic_core.to_json(result, fallback=str).decode()
    except pydantic_core.PydanticSerializationError:  # e.g. a lone surrogate in a string
        return json.dumps(result, default=str)  # escaped: ASCII, always sendable


def error_output(message: str) -> str:
    """The output that tells the model a call failed."""
    return json.dumps({"error": message})
