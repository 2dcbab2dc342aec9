"""The server's ``truncation`` setting, on plain items: what a response reads."""

from __future__ import annotations

from rt_notebook.server.plan import item_size
from rt_notebook.server.truncation import CONTEXT_TOKENS, truncated


def message(n, words):
    text = " ".join(f"w{n}_{k}" for k in range(words))
    return {
        "id": f"item_{n}",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": text}],
    }


def measure(items):
    sizes = [item_size(item) for item in items]
    return sum(w for w, _ in sizes), sum(c for _, c in sizes)


def ids(items):
    return [item["id"] for item in items]


RATIO = {
    "type": "retention_ratio",
    "retention_ratio": 0.5,
    "token_limits": {"post_instructions": 100},
}


def test_under_the_limit_nothing_is_dropped():
    items = [message(n, 10) for n in range(9)]  # 90 words
    assert truncated(items, measure(items), RATIO, 48) is items


def test_past_the_limit_the_oldest_go_until_the_ratio_is_left():
    items = [message(n, 10) for n in range(12)]  # 120 words > 100
    kept = truncated(items, measure(items), RATIO, 48)
    assert ids(kept) == [f"item_{n}" for n in range(7, 12)]  # 50 words: half the limit


def test_auto_uses_the_model_limit_and_disabled_never_truncates():
    items = [message(n, 1000) for n in range(CONTEXT_TOKENS // 1000 + 2)]
    auto = truncated(items, measure(items), "auto", 48)
    assert ids(auto) == ids(items)[2:]
    assert measure(auto)[0] <= CONTEXT_TOKENS
    assert truncated(items, measure(items), "disabled", 48) is items


def test_the_newest_item_stays_whatever_its_size():
    items = [message(0, 10), message(1, CONTEXT_TOKENS + 5)]
    assert ids(truncated(items, measure(items), "auto", 48)) == ["item_1"]
