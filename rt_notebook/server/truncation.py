"""Sans-I/O server: the session's ``truncation`` setting, applied to what a response reads.

On the service, a conversation longer than the model's input limit loses its oldest items
from the model's context (``"auto"``); ``{"type": "retention_ratio", "retention_ratio": r,
"token_limits": {"post_instructions": n}}`` truncates once the conversation passes ``n``
tokens and then keeps only ``r`` of them, so truncation happens seldom and cached prefixes
last; ``"disabled"`` never truncates. The conversation itself is never changed: only what
the response is given to answer from (the responder's context, the usage it reports); the
newest item always stays.
Tokens are counted as the rest of the server counts them (:mod:`.plan`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rt_notebook.protocol.events import Event
from rt_notebook.server.plan import count_input_tokens, item_size

__all__ = ["CONTEXT_TOKENS", "truncated"]

CONTEXT_TOKENS = 28_224
"""Conversation tokens a response may read when no limit is set (the service's example:
a 32k-token model with 4,096 output tokens)."""


def truncated(
    context: Sequence[Event],
    size: tuple[int, int],
    truncation: Any,
    bytes_per_ms: int,
) -> Sequence[Event]:
    """``context`` without the oldest items ``truncation`` drops (``size``: its measure,
    see :func:`~rt_notebook.server.plan.item_size`, so the common case reads no item)."""
    if truncation == "disabled":
        return context
    ratio, limit = 1.0, CONTEXT_TOKENS
    if isinstance(truncation, Mapping) and truncation.get("type") == "retention_ratio":
        ratio = float(truncation.get("retention_ratio", 1.0))
        limit = int((truncation.get("token_limits") or {}).get("post_instructions") or limit)
    if _tokens(size, bytes_per_ms) <= limit:
        return context
    items = list(context)
    budget = ratio * limit
    tokens = [_tokens(item_size(item), bytes_per_ms) for item in items]
    total = sum(tokens)
    first = 0
    # The newest item stays whatever its size: it is what the response answers.
    while first < len(items) - 1 and total > budget:
        total -= tokens[first]
        first += 1
    return items[first:]


def _tokens(size: tuple[int, int], bytes_per_ms: int) -> int:
    text, audio = count_input_tokens("", size, bytes_per_ms)
    return text + audio
