"""Client layer, pure cost of a response: its ``usage`` times a price table that is data.

The built-in table (``prices.json`` in this package) names, for each model, the page its
figures come from and the date they were read (``sources``); a figure no page gave is left
out, and a model no page priced is listed under ``unknown``. It applies only to OpenAI's
own service. A user's table (``%config RealtimeMagics.prices`` or :func:`set_prices`) is
the user's statement of what their endpoint charges, so it applies to any endpoint but the
embedded offline server. No price for the model, or a token kind the table has no price
for: no cost at all, never a guess (:func:`cost_label` says which price is missing).
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .transport import Endpoint

__all__ = [
    "PRICE_KINDS",
    "builtin_table",
    "cost",
    "cost_label",
    "endpoint_prices",
    "price_for",
    "set_prices",
    "total_cost",
]

# What a model's entry prices, in USD per 1M tokens.
PRICE_KINDS = (
    "text_input",
    "text_cached_input",
    "text_output",
    "audio_input",
    "audio_cached_input",
    "audio_output",
    "image_input",
    "image_cached_input",
)
# A dated snapshot of a model: "gpt-realtime-2025-08-28" is priced as "gpt-realtime".
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")

_lock = threading.Lock()
_user: dict[str, dict[str, float]] = {}


@functools.cache
def builtin_table() -> dict[str, Any]:
    """The table shipped with the package: ``date``, ``source``, ``unit``, ``models``."""
    text = resources.files(__package__).joinpath("prices.json").read_text(encoding="utf-8")
    table: dict[str, Any] = json.loads(text)
    return table


def set_prices(models: Mapping[str, Mapping[str, float]]) -> None:
    """Replace the user's table: model -> {kind: USD per 1M tokens} (kinds: PRICE_KINDS).

    Raises ``ValueError`` for an unknown kind or a price that is not a number >= 0.
    """
    checked: dict[str, dict[str, float]] = {}
    for model, prices in models.items():
        if not isinstance(prices, Mapping):
            raise ValueError(f"prices for {model!r}: a mapping of kind -> USD per 1M")  # noqa: TRY004 - shown as a usage error
        entry = {}
        for kind, price in prices.items():
            if kind not in PRICE_KINDS:
                raise ValueError(f"unknown price kind {kind!r}: {', '.join(PRICE_KINDS)}")
            if isinstance(price, bool) or not isinstance(price, int | float) or price < 0:
                raise ValueError(f"price {model}.{kind} must be a number >= 0, not {price!r}")
            entry[kind] = float(price)
        checked[str(model)] = entry
    with _lock:
        _user.clear()
        _user.update(checked)


def price_for(model: str, *, official: bool) -> dict[str, float] | None:
    """The prices of ``model`` (or of the model it is a dated snapshot of): the user's
    table first, then, on OpenAI's own service (``official``), the built-in one."""
    names = [model, _SNAPSHOT.sub("", model)]
    with _lock:
        for name in names:
            if name in _user:
                return dict(_user[name])
    if official:
        table = builtin_table()
        for name in names:
            if name in table["unknown"]:
                return None  # listed: no public figure was found for it
            if name in table["models"]:
                return dict(table["models"][name])
    return None


def endpoint_prices(endpoint: Endpoint, model: str) -> dict[str, float] | None:
    """The prices that apply to ``model`` on ``endpoint``: none on the offline server,
    the built-in table only on OpenAI's own service."""
    if endpoint.offline:
        return None
    urls = (endpoint.base_url, endpoint.websocket_base_url)
    official = endpoint.azure_endpoint is None and all(
        url is None or "//api.openai.com" in url for url in urls
    )
    return price_for(model, official=official)


def cost(usage: Mapping[str, Any] | None, prices: Mapping[str, float] | None) -> float | None:
    """USD for one response's ``usage``; ``None`` when something in it has no price."""
    if not usage or prices is None:
        return None
    tokens = _tokens(usage)
    if tokens is None:
        return None
    total = 0.0
    for kind, count in tokens.items():
        if count:
            if kind not in prices:
                return None  # tokens of a kind the table does not price: no guess
            total += count * prices[kind] / 1_000_000
    return total


def cost_label(
    usages: Iterable[Mapping[str, Any]], prices: Mapping[str, float] | None, model: str
) -> str | None:
    """What a footer says about the cost of ``usages``: ``None`` when it can be computed
    (the caller formats it) or nothing at all is known about the tokens; otherwise
    ``no price for MODEL`` or ``no price for MODEL audio output`` (the missing kinds)."""
    # Only responses that used tokens: a response cancelled before any output costs nothing.
    usages = [usage for usage in usages if usage and usage.get("total_tokens") != 0]
    if not usages:
        return None
    if prices is None:
        return f"no price for {model}"
    missing: set[str] = set()
    for usage in usages:
        tokens = _tokens(usage)
        if tokens is None:
            return None  # no details: which price would apply is unknown
        missing.update(kind for kind, count in tokens.items() if count and kind not in prices)
    if not missing:
        return None
    kinds = ", ".join(kind.replace("_", " ") for kind in PRICE_KINDS if kind in missing)
    return f"no price for {model} {kinds}"


def total_cost(
    usages: Iterable[Mapping[str, Any]], prices: Mapping[str, float] | None
) -> float | None:
    """The sum of :func:`cost` over responses; ``None`` if any one has no cost."""
    total = 0.0
    for usage in usages:
        one = cost(usage, prices)
        if one is None:
            return None
        total += one
    return total


def _tokens(usage: Mapping[str, Any]) -> dict[str, int] | None:
    """Token counts by price kind (cached input counted apart from uncached)."""
    try:
        inputs = usage.get("input_token_details") or {}
        outputs = usage.get("output_token_details") or {}
        cached = inputs.get("cached_tokens_details") or {}
        counts: dict[str, int] = {}
        for modality in ("text", "audio", "image"):
            kept = int(cached.get(f"{modality}_tokens") or 0)
            counts[f"{modality}_input"] = int(inputs.get(f"{modality}_tokens") or 0) - kept
            counts[f"{modality}_cached_input"] = kept
        counts["text_output"] = int(outputs.get("text_tokens") or 0)
        counts["audio_output"] = int(outputs.get("audio_tokens") or 0)
        if not inputs and not outputs:
            return None  # plain totals: which modality they were is unknown
        if inputs.get("cached_tokens") and not cached:
            return None  # cached, but of which modality is unknown
    except (AttributeError, TypeError, ValueError):
        return None
    if any(count < 0 for count in counts.values()):
        return None
    if sum(counts.values()) != int(usage.get("total_tokens") or sum(counts.values())):
        return None  # the details do not add up: no guess
    return counts
