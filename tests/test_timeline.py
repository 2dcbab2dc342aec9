"""The pure timeline: attribution to turns, folded deltas, byte caps; the price table."""

from __future__ import annotations

import json

import pytest

from rt_notebook.client import pricing
from rt_notebook.protocol.timeline import Timelines
from rt_notebook.protocol.turns import Request, Turn


def _turn(item_id: str) -> Turn:
    item = {"type": "conversation.item.create", "item": {"id": item_id, "type": "message"}}
    turn = Turn([Request("item", item, key=item_id)], {"metadata": {}})
    assert turn.params is not None
    turn.params["metadata"]["rt_notebook_request"] = turn.tag
    return turn


def _sent_item(timelines: Timelines, item_id: str, event_id: str, now: float) -> None:
    event = {"type": "conversation.item.create", "event_id": event_id, "item": {"id": item_id}}
    timelines.sent(event, len(json.dumps(event)), now)


def _create(timelines: Timelines, turn: Turn, event_id: str, now: float) -> None:
    event = {"type": "response.create", "event_id": event_id, "response": turn.params}
    timelines.sent(event, 50, now)


def _received(timelines: Timelines, event: dict[str, object], now: float) -> str | None:
    return timelines.received(event, len(json.dumps(event)), now)


def _response(response_id: str, turn: Turn | None) -> dict[str, object]:
    metadata = None if turn is None else {"rt_notebook_request": turn.tag}
    return {"id": response_id, "metadata": metadata}


def test_two_interleaved_turns_each_get_exactly_their_events() -> None:
    timelines = Timelines()
    first, second = _turn("item_a"), _turn("item_b")
    timelines.begin(first, 0.0)
    timelines.begin(second, 0.1)
    timelines.queued(second)
    _sent_item(timelines, "item_a", "ev1", 0.2)
    _create(timelines, first, "ev2", 0.3)
    _received(timelines, {"type": "conversation.item.added", "item": {"id": "item_a"}}, 0.4)
    _received(timelines, {"type": "response.created", "response": _response("r1", first)}, 0.5)
    _received(timelines, {"type": "rate_limits.updated", "rate_limits": []}, 0.55)
    _received(
        timelines,
        {"type": "response.output_item.added", "response_id": "r1", "item": {"id": "out1"}},
        0.6,
    )
    for n in range(5):
        delta = {"type": "response.output_text.delta", "response_id": "r1", "delta": "x" * n}
        _received(timelines, delta, 0.7 + n / 100)
    # A response the server started (VAD): no tag, no live turn owns it.
    _received(timelines, {"type": "response.created", "response": _response("vad", None)}, 0.8)
    _received(timelines, {"type": "response.output_text.delta", "response_id": "vad"}, 0.81)
    _received(timelines, {"type": "conversation.item.done", "item": {"id": "out1"}}, 0.85)
    _received(timelines, {"type": "response.done", "response": _response("r1", first)}, 0.9)
    timelines.end(first)
    _sent_item(timelines, "item_b", "ev3", 1.0)
    _received(
        timelines, {"type": "error", "error": {"event_id": "ev3", "message": "bad item"}}, 1.1
    )
    _received(timelines, {"type": "error", "error": {"message": "no event id"}}, 1.2)
    timelines.end(second)

    one = timelines.find("r1")
    assert one is not None
    assert one.key == first.tag
    assert [(e.direction, e.type, e.count) for e in one.entries] == [
        ("sent", "conversation.item.create", 1),
        ("sent", "response.create", 1),
        ("received", "conversation.item.added", 1),
        ("received", "response.created", 1),
        ("received", "response.output_item.added", 1),
        ("received", "response.output_text.delta", 5),
        ("received", "conversation.item.done", 1),
        ("received", "response.done", 1),
    ]
    assert timelines.find("out1") is not None  # an output item names its turn too
    latency = one.latency()
    assert latency.queued is None
    assert latency.created == pytest.approx(0.2)
    assert latency.first_delta == pytest.approx(0.4)
    assert latency.done == pytest.approx(0.6)
    deltas = one.entries[5]
    assert deltas.last_at == pytest.approx(0.74)
    assert deltas.size == sum(
        len(
            json.dumps(
                {"type": "response.output_text.delta", "response_id": "r1", "delta": "x" * n}
            )
        )
        for n in range(5)
    )

    two = timelines.find("item_b")
    assert two is not None
    assert two.key == second.tag
    assert [(e.type, e.error) for e in two.entries] == [
        ("conversation.item.create", False),
        ("error", True),
    ]
    assert two.latency().queued == pytest.approx(0.9)
    assert timelines.find() is not None
    assert timelines.find().key == second.tag

    session = timelines.copy_session()
    assert [(e.type, e.count) for e in session.entries] == [
        ("rate_limits.updated", 1),
        ("response.created", 1),
        ("response.output_text.delta", 1),
        ("error", 1),
    ]


def test_the_turn_found_by_the_core_when_the_server_drops_metadata() -> None:
    timelines = Timelines()
    turn = _turn("item_a")
    timelines.begin(turn, 0.0)
    turn.response_id = "r1"  # the client core matched it by order
    _received(timelines, {"type": "response.created", "response": {"id": "r1"}}, 0.1)
    assert _received(timelines, {"type": "response.done", "response": {"id": "r1"}}, 0.2) == (
        turn.tag
    )


def test_finished_turns_are_forgotten_past_the_byte_cap_and_bodies_dropped() -> None:
    timelines = Timelines(cap=48_000)
    big = "y" * 5000
    tags = []
    for n in range(20):
        turn = _turn(f"item_{n}")
        tags.append(turn.tag)
        timelines.begin(turn, float(n))
        event = {"type": "conversation.item.create", "item": {"id": f"item_{n}", "text": big}}
        for _ in range(3):
            timelines.sent(event, len(json.dumps(event)), float(n))
        timelines.end(turn)
    kept = [tag for tag in tags if timelines.find(tag) is not None]
    assert 0 < len(kept) < 20
    assert kept == tags[-len(kept) :]  # the most recent ones
    assert timelines.find("item_0") is None
    last = timelines.find(tags[-1])
    assert last is not None
    # A turn keeps at most a quarter of the cap in bodies: the third body is dropped.
    assert [e.event is not None for e in last.entries] == [True, True, False]


def test_the_session_level_list_is_bounded_and_folds_runs() -> None:
    timelines = Timelines(session_cap=10_000)
    for n in range(1000):
        timelines.received({"type": "rate_limits.updated", "n": n}, 100, float(n))
    for n in range(300):
        timelines.sent({"type": "input_audio_buffer.append", "audio": "A"}, 1000, 2000.0 + n)
    session = timelines.copy_session()
    assert len(session.entries) < 40
    assert session.entries[-1].type == "input_audio_buffer.append"
    assert session.entries[-1].count == 300
    assert session.size == 1000 * 100 + 300 * 1000


USAGE = {
    "total_tokens": 1000,
    "input_tokens": 700,
    "output_tokens": 300,
    "input_token_details": {
        "text_tokens": 400,
        "audio_tokens": 300,
        "image_tokens": 0,
        "cached_tokens": 250,
        "cached_tokens_details": {"text_tokens": 200, "audio_tokens": 50, "image_tokens": 0},
    },
    "output_token_details": {"text_tokens": 100, "audio_tokens": 200},
}


def test_cost_is_usage_times_the_table() -> None:
    prices = pricing.price_for("gpt-realtime-2.1", official=True)
    assert prices is not None
    expected = (
        200 * prices["text_input"]
        + 200 * prices["text_cached_input"]
        + 250 * prices["audio_input"]
        + 50 * prices["audio_cached_input"]
        + 100 * prices["text_output"]
        + 200 * prices["audio_output"]
    ) / 1_000_000
    assert pricing.cost(USAGE, prices) == pytest.approx(expected)


def test_no_cost_for_unknown_models_unofficial_endpoints_or_unpriced_tokens() -> None:
    assert pricing.price_for("my-local-model", official=True) is None
    assert pricing.price_for("gpt-realtime", official=False) is None  # a local backend
    assert pricing.price_for("gpt-realtime-mini", official=True) != pricing.price_for(
        "gpt-realtime", official=True
    )
    only_text = {"text_input": 1.0, "text_output": 2.0}
    assert pricing.cost(USAGE, only_text) is None  # audio tokens it cannot price
    assert pricing.cost({"total_tokens": 10}, only_text) is None  # no details: no guess
    table = pricing.builtin_table()
    assert table["date"]
    assert table["source"]


def test_a_user_table_prices_any_endpoint_and_typos_are_refused() -> None:
    try:
        pricing.set_prices({"local": {"text_input": 1.0}})
        assert pricing.price_for("local", official=False) == {"text_input": 1.0}
        with pytest.raises(ValueError, match="unknown price kind"):
            pricing.set_prices({"local": {"text_inptu": 1.0}})
        with pytest.raises(ValueError, match=">= 0"):
            pricing.set_prices({"local": {"text_input": -1}})
    finally:
        pricing.set_prices({})
    assert pricing.price_for("local", official=False) is None


def test_the_event_log_is_bounded_in_bytes_and_count() -> None:
    from rt_notebook.protocol.timeline import EventLog

    log = EventLog(max_events=100, max_bytes=10_000)
    for n in range(50):
        log.append({"type": "big", "n": n}, 1000)
    assert [e["n"] for e in log] == list(range(40, 50))
    for n in range(500):
        log.append({"type": "small", "n": n}, 1)
    assert len(log) == 100
    log.append({"type": "huge"}, 10**9)  # the newest one stays, alone
    assert [e["type"] for e in log] == ["huge"]


def test_the_inspector_view_is_inert_markdown_with_no_credentials() -> None:
    from rt_notebook.redaction import register_secret
    from rt_notebook.render.inspector import timeline_markdown
    from rt_notebook.render.markdown import markdown_html

    secret = "sk-inspector-test-secret-1234567890"
    register_secret(secret)
    timelines = Timelines()
    turn = _turn("item_a")
    timelines.begin(turn, 0.0)
    hostile = "<img src=x onerror=alert(1)>```</code>| x |"
    timelines.sent(
        {
            "type": "conversation.item.create",
            "item": {"id": "item_a", "text": f"{hostile} Authorization: Bearer {secret}"},
        },
        100,
        0.1,
    )
    timelines.received({"type": "error", "error": {"event_id": None, "message": hostile}}, 50, 0.2)
    _received(timelines, {"type": "response.created", "response": _response("r1", turn)}, 0.3)
    _received(timelines, {"type": f"{hostile}.delta", "response_id": "r1", "delta": hostile}, 0.4)
    for timeline in (timelines.find(), timelines.copy_session()):
        assert timeline is not None
        text = timeline_markdown(timeline, title=f"Events of {hostile}")
        html = markdown_html(text)
        assert "<img" not in html
        assert secret not in text
        assert html.count("<tr>") == len(timeline.entries) + 1  # no row split by a pipe
