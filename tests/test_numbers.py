"""Numbers from outside checked where they enter: counts, usage, durations."""

from __future__ import annotations

import math

import pytest

from rt_notebook.client import pricing
from rt_notebook.protocol.conversation import Conversation
from rt_notebook.protocol.numbers import MAX_COUNT, clean_usage, count, nonzero_usage, seconds_of


@pytest.mark.parametrize(
    "value", ["12", 1.5, True, None, -1, 10**400, MAX_COUNT + 1, math.nan, [], {}]
)
def test_what_is_not_a_count_is_none(value):
    assert count(value) is None


def test_counts_pass():
    assert count(0) == 0
    assert count(MAX_COUNT) == MAX_COUNT


def test_usage_keeps_only_plausible_counts():
    usage = {
        "total_tokens": "lots",
        "input_tokens": 12,
        "output_tokens": 10**400,
        "input_token_details": {"text_tokens": 12, "audio_tokens": math.inf},
        "output_token_details": "none",
        "type": "tokens",
        7: "a non-string key",
    }
    assert clean_usage(usage) == {
        "input_tokens": 12,
        "input_token_details": {"text_tokens": 12},
        "type": "tokens",
    }
    assert clean_usage("lots") is None
    assert clean_usage([1, 2]) is None


def test_saved_usage_leaves_out_zero_counts_and_costs_the_same():
    usage = {
        "total_tokens": 1257,
        "input_tokens": 636,
        "output_tokens": 621,
        "input_token_details": {
            "text_tokens": 636,
            "audio_tokens": 0,
            "image_tokens": 0,
            "cached_tokens": 36,
            "cached_tokens_details": {"text_tokens": 36, "audio_tokens": 0, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": 0, "audio_tokens": 621},
        "type": "tokens",
    }
    kept = nonzero_usage(usage)
    assert kept == {
        "total_tokens": 1257,
        "input_tokens": 636,
        "output_tokens": 621,
        "input_token_details": {
            "text_tokens": 636,
            "cached_tokens": 36,
            "cached_tokens_details": {"text_tokens": 36},
        },
        "output_token_details": {"audio_tokens": 621},
        "type": "tokens",
    }
    prices = {kind: 1.0 + i for i, kind in enumerate(pricing.PRICE_KINDS)}
    cost = pricing.cost(usage, prices)
    assert cost is not None
    assert pricing.cost(kept, prices) == cost  # a missing count is 0
    assert nonzero_usage({"total_tokens": 0, "input_token_details": {"text_tokens": 0}}) == {}


def test_a_hostile_usage_reaches_the_mirror_cleaned_and_prices_do_not_raise():
    conversation = Conversation()
    conversation.apply(
        {
            "type": "response.done",
            "response": {"id": "resp_1", "status": "completed", "usage": {"total_tokens": "x"}},
        }
    )
    usage = conversation.responses["resp_1"].usage
    assert usage == {}
    assert pricing.cost(usage, {"text_input": 1.0}) is None


@pytest.mark.parametrize(
    ("samples", "rate", "seconds"),
    [
        (48_000, 24_000, 2.0),
        (10**400, 24_000, 0.0),
        (48_000, 10**400, 0.0),
        (48_000, math.nan, 0.0),
        (48_000, 0, 0.0),
        (48_000, True, 0.0),
        ("48000", 24_000, 0.0),
    ],
)
def test_seconds_of_never_raises(samples, rate, seconds):
    assert seconds_of(samples, rate) == seconds


def test_speech_times_from_the_server_are_checked():
    from rt_notebook.frontends.voice_control import VoiceTurns

    turns = VoiceTurns()
    turns.appended(48_000)
    turns.event({"type": "input_audio_buffer.speech_started", "audio_start_ms": 0})
    turns.event({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 10**400})
    assert turns.event({"type": "input_audio_buffer.committed", "item_id": "item_1"}) == "turn"
    assert turns.turns[-1].seconds == 1.0  # from the audio counted, not the absurd time
