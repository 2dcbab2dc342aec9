"""Sans-I/O vocabulary: the options of one response, declared once.

:class:`ResponseOptions` is what a single response may ask for besides the session's
settings. It types the keywords of ``Session.create_response``, ``ask`` and
``commit_audio`` (``**options: Unpack[ResponseOptions]``), is what
:func:`~rt_notebook.protocol.payloads.response_settings` writes in each dialect, what the
``%%realtime`` options parse into (:func:`rt_notebook.frontends.magic_args.response_overrides`) and
what a tool round's follow-up copies. Adding an option is one line here plus its use.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypedDict

if sys.version_info >= (3, 11):
    from typing import Unpack
else:  # pragma: no cover - Python 3.10
    from typing_extensions import Unpack

__all__ = ["RESPONSE_OPTIONS", "ResponseOptions", "ToolLike", "Unpack", "check_response_options"]


class ToolLike(Protocol):
    """Anything with a Realtime function-tool definition (a registered ``Tool``)."""

    @property
    def schema(self) -> dict[str, Any]: ...


class ResponseOptions(TypedDict, total=False):
    """The options of one response (``None`` or absent: the session's setting)."""

    instructions: str | None
    modalities: Sequence[str] | None  # text and/or audio
    voice: str | None
    # Definitions, names of registered tools or Tool objects (resolved before sending).
    tools: Sequence[Mapping[str, Any] | str | ToolLike] | None
    tool_choice: str | dict[str, Any] | None
    max_output_tokens: int | str | None  # 1..4096 or "inf"
    reasoning_effort: str | None  # reasoning models; checked against the SDK's values
    metadata: dict[str, str] | None
    conversation: str | None  # "none": out of band, beside the conversation
    input: list[dict[str, Any]] | None  # an out-of-band response's context


RESPONSE_OPTIONS: frozenset[str] = frozenset(ResponseOptions.__annotations__)
"""The names of the response options."""


def check_response_options(options: Mapping[str, Any], where: str) -> None:
    """Refuse a keyword that is no response option, as a misspelt keyword argument is
    refused (``**options`` accepts any name at run time)."""
    unknown = sorted(set(options) - RESPONSE_OPTIONS)
    if unknown:
        raise TypeError(
            f"{where}() got an unexpected keyword argument {unknown[0]!r} "
            f"(response options: {', '.join(sorted(RESPONSE_OPTIONS))})"
        )
