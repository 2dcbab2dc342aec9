"""Client layer, model facts (no I/O): the default Realtime model, and which models are
deprecated.

The one place that knows about models. The installed ``openai`` SDK is the source of
truth for what is current: its ``RealtimeSessionCreateRequestParam.model`` lists the
Realtime models, and that field's docstring lists the deprecated ones under "Deprecated
values", each group with its "Announced shutdown date". Both are read from the SDK on first
use (and cached), never at import, so ``%load_ext rt_notebook`` stays fast. What the SDK
does not say (the recommended replacement) is kept here, with its source.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import typing
from collections.abc import Mapping

__all__ = [
    "DEFAULT_MODEL",
    "Deprecation",
    "deprecation",
    "deprecation_warning",
    "parse_deprecations",
    "sdk_deprecations",
    "sdk_models",
]

DEFAULT_MODEL = "gpt-realtime-2.1"
"""The model of new Sessions: the newest one the installed SDK does not mark deprecated
(OpenAI's current Realtime guides use it; a test fails when the SDK deprecates it)."""

# What replaces a deprecated model, where someone published it. The SDK's note only links
# https://developers.openai.com/api/docs/deprecations (its stored copies found on
# 2026-12-06 do not show the Realtime rows); the model pages of gpt-realtime-2.1-mini
# compare it with "GPT-Realtime Mini", and Retell's deprecation notice
# (https://docs.retellai.com/deprecation-notice/2027/01-19_model_replacements, read
# 2026-12-06) migrates gpt-realtime to gpt-realtime-2.1 and gpt-realtime-mini to
# gpt-realtime-2.1-mini. No replacement found for gpt-audio-mini.
REPLACEMENTS: Mapping[str, str] = {
    "gpt-realtime": "gpt-realtime-2.1",
    "gpt-realtime-2025-08-28": "gpt-realtime-2.1",
    "gpt-realtime-mini": "gpt-realtime-2.1-mini",
    "gpt-realtime-mini-2025-10-06": "gpt-realtime-2.1-mini",
    "gpt-realtime-mini-2025-12-15": "gpt-realtime-2.1-mini",
}

# The SDK module whose ``model`` field lists the Realtime models and the deprecated ones.
_SDK_MODULE = "openai.types.realtime.realtime_session_create_request_param"
_SDK_TYPE = "RealtimeSessionCreateRequestParam"

# One bullet of the note: `- "a", "b",\n  "c": Announced shutdown date: 2027-01-20. See …`
_BULLET = re.compile(
    r"^\s*-\s+(?P<names>(?:\"[^\"]+\"\s*,?\s*)+):\s*Announced shutdown date:\s*"
    r"(?P<date>\d{4}-\d{2}-\d{2})",
    re.MULTILINE,
)
_NAME = re.compile(r"\"([^\"]+)\"")


@dataclasses.dataclass(frozen=True, slots=True)
class Deprecation:
    """A model OpenAI announced the shutdown of."""

    model: str
    shutdown: str  # YYYY-MM-DD, as the SDK writes it
    replacement: str | None = None

    def describe(self) -> str:
        """One line: ``gpt-realtime is deprecated (shutdown 2027-01-20); use gpt-realtime-2.1``."""
        line = f"{self.model} is deprecated (OpenAI shuts it down on {self.shutdown})"
        if self.replacement:
            return f"{line}; use {self.replacement}"
        return line


@functools.cache
def sdk_models() -> tuple[str, ...]:
    """The Realtime models the installed SDK lists (its ``model`` Literal), in its order."""
    import importlib

    module = importlib.import_module(_SDK_MODULE)
    hints = typing.get_type_hints(getattr(module, _SDK_TYPE))
    names: list[str] = []
    for arm in typing.get_args(hints["model"]):
        if typing.get_origin(arm) is typing.Literal:
            names.extend(str(value) for value in typing.get_args(arm))
    return tuple(names)


@functools.cache
def sdk_deprecations() -> dict[str, Deprecation]:
    """The models the installed SDK marks deprecated, by name (from its source's note)."""
    import importlib
    import inspect

    source = inspect.getsource(importlib.import_module(_SDK_MODULE))
    return parse_deprecations(_model_docstring(source))


def parse_deprecations(note: str) -> dict[str, Deprecation]:
    """The deprecations a "Deprecated values:" note lists (empty when it has none)."""
    _, found, rest = note.partition("Deprecated values:")
    if not found:
        return {}
    deprecated: dict[str, Deprecation] = {}
    for bullet in _BULLET.finditer(rest):
        for name in _NAME.findall(bullet.group("names")):
            deprecated[name] = Deprecation(name, bullet.group("date"), REPLACEMENTS.get(name))
    return deprecated


def _model_docstring(source: str) -> str:
    """The docstring right after the ``model:`` field of the SDK's session type."""
    field = re.search(r"^\s+model:\s", source, re.MULTILINE)
    if field is None:
        return ""
    docstring = re.compile(r'"""(.*?)"""', re.DOTALL).search(source, field.end())
    return docstring.group(1) if docstring else ""


def deprecation(model: str) -> Deprecation | None:
    """What the installed SDK says about ``model``'s shutdown (``None``: not deprecated,
    or the SDK's note cannot be read)."""
    try:
        return sdk_deprecations().get(model)
    except (ImportError, AttributeError, KeyError, OSError, TypeError):
        return None  # an SDK laid out differently: no warning rather than a crash


def deprecation_warning(model: str | None) -> str | None:
    """One line for status and footers when ``model`` is deprecated, else ``None``."""
    if not model:
        return None
    found = deprecation(model)
    return f"⚠ {found.describe()}" if found else None
