"""The sans-I/O conversation mirror, fed recorded and hand-made server events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rt_notebook.protocol.conversation import (
    Conversation,
    ErrorReceived,
    ItemAdded,
    ItemDelta,
    ResponseDone,
)
from rt_notebook.protocol.events import to_beta

FIXTURES = Path(__file__).parent / "fixtures"
CONFORMANCE = Path(__file__).parent / "conformance"  # real traffic; see its README


def replay(path: Path) -> Conversation:
    conversation = Conversation()
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record["direction"] == "received":
            conversation.apply(record["data"])
    return conversation


def events(path: Path) -> list[dict]:
    return [
        json.loads(line)["data"]
        for line in path.read_text().splitlines()
        if json.loads(line)["direction"] == "received"
    ]


def test_text_turn_builds_items_in_order_with_text():
    conversation = replay(FIXTURES / "text_turn_ga.jsonl")
    assert [(i.id, i.role, i.text) for i in conversation.items] == [
        ("item_U1", "user", "Name a colour."),
        ("item_A1", "assistant", "Teal blue."),
    ]
    response = conversation.responses["resp_R1"]
    assert response.status == "completed"
    assert response.usage == {"total_tokens": 9, "input_tokens": 6, "output_tokens": 3}
    assert conversation.active_response_id is None
    assert conversation.rate_limits[0]["remaining"] == 39991  # after response.done


def test_deltas_report_changes_and_accumulate():
    conversation = Conversation()
    changes = [c for e in events(FIXTURES / "text_turn_ga.jsonl") for c in conversation.apply(e)]
    deltas = [c for c in changes if isinstance(c, ItemDelta)]
    assert [d.delta for d in deltas] == ["Teal", " blue."]
    assert all(d.response_id == "resp_R1" for d in deltas)
    assert isinstance(changes[-1], ResponseDone)


def test_active_response_tracked_until_done():
    conversation = Conversation()
    for event in events(FIXTURES / "text_turn_ga.jsonl"):
        conversation.apply(event)
        if event["type"] == "response.output_text.delta":
            assert conversation.active_response_id == "resp_R1"
    assert conversation.active_response_id is None


def test_beta_dialect_gives_the_same_mirror():
    ga = replay(FIXTURES / "text_turn_ga.jsonl")
    beta = Conversation()
    for event in events(FIXTURES / "text_turn_ga.jsonl"):
        beta.apply(to_beta(event))
    assert [i.as_dict() for i in beta.items] == [i.as_dict() for i in ga.items]


def test_item_done_with_null_previous_item_id_does_not_move_the_item():
    conversation = replay(FIXTURES / "text_turn_ga.jsonl")
    # The fixture's assistant conversation.item.done has previous_item_id null.
    assert conversation.index_of("item_A1") == 1


def test_insert_at_root_and_after_an_item():
    conversation = replay(FIXTURES / "text_turn_ga.jsonl")
    root = {
        "type": "conversation.item.added",
        "previous_item_id": None,
        "item": {"id": "item_S0", "type": "message", "role": "system", "content": []},
    }
    after = {
        "type": "conversation.item.added",
        "previous_item_id": "item_U1",
        "item": {"id": "item_M1", "type": "message", "role": "user", "content": []},
    }
    assert conversation.apply(root) == [ItemAdded("item_S0", 0)]
    assert conversation.apply(after) == [ItemAdded("item_M1", 2)]
    assert [i.id for i in conversation.items] == ["item_S0", "item_U1", "item_M1", "item_A1"]


@pytest.mark.parametrize(
    ("item_id", "previous", "order"),
    [
        ("c", "a", "acbde"),  # back
        ("b", "d", "acdbe"),  # forward
        ("a", None, "abcde"),  # at root already: stays
        ("e", None, "eabcd"),  # to the root
        ("b", "zz", "acdeb"),  # an unknown anchor: to the end
        ("c", "b", "abcde"),  # in place already: stays
    ],
)
def test_an_item_added_again_moves_where_the_server_puts_it(item_id, previous, order):
    """A known item announced again (a restore) keeps its place, or moves to the new one;
    every position stays right."""
    conversation = Conversation()
    anchor = None
    for known in "abcde":
        conversation.apply(
            {
                "type": "conversation.item.added",
                "previous_item_id": anchor,
                "item": {"id": known, "type": "message", "role": "user", "content": []},
            }
        )
        anchor = known
    again = {
        "type": "conversation.item.added",
        "previous_item_id": previous,
        "item": {"id": item_id, "type": "message", "role": "user", "content": []},
    }
    assert conversation.apply(again) == [ItemAdded(item_id, order.index(item_id))]
    assert "".join(conversation.item_ids()) == order
    assert [conversation.index_of(known) for known in order] == list(range(5))
    assert conversation.position_rebuilds == 0


def test_deleted_item_leaves_the_conversation():
    conversation = replay(FIXTURES / "text_turn_ga.jsonl")
    conversation.apply({"type": "conversation.item.deleted", "item_id": "item_U1"})
    assert [i.id for i in conversation.items] == ["item_A1"]


def test_error_names_the_client_event():
    conversation = Conversation()
    error = {
        "type": "invalid_request_error",
        "code": "invalid_value",
        "event_id": "event_mine",
        "message": "bad",
        "param": "type",
    }
    changes = conversation.apply({"type": "error", "event_id": "event_x", "error": error})
    assert changes == [ErrorReceived(error, "event_mine")]
    assert conversation.errors == [error]


def test_out_of_band_response_output_is_not_in_the_conversation():
    conversation = replay(FIXTURES / "text_turn_ga.jsonl")
    oob = [
        {
            "type": "response.created",
            "response": {
                "id": "resp_O",
                "status": "in_progress",
                "conversation_id": None,
                "metadata": {"k": "v"},
            },
        },
        {
            "type": "response.output_item.added",
            "response_id": "resp_O",
            "item": {"id": "item_O", "type": "message", "role": "assistant", "content": []},
        },
        {
            "type": "response.output_text.delta",
            "response_id": "resp_O",
            "item_id": "item_O",
            "delta": "side",
        },
        {
            "type": "response.done",
            "response": {
                "id": "resp_O",
                "status": "completed",
                "conversation_id": None,
                "output": [],
            },
        },
    ]
    for event in oob:
        conversation.apply(event)
        assert conversation.active_response_id is None  # never the conversation's
    assert conversation.response_text("resp_O") == "side"
    assert [i.id for i in conversation.items] == ["item_U1", "item_A1"]
    assert conversation.responses["resp_O"].metadata == {"k": "v"}


def test_unknown_events_change_nothing():
    conversation = Conversation()
    assert conversation.apply({"type": "output_audio_buffer.started"}) == []
    assert conversation.apply({"no": "type"}) == []


EXPECTED = {
    "ga_message_history_seeding_text.jsonl": [
        ("user", "My name is Alice and my favorite color is teal."),
        ("assistant", "Nice to meet you, Alice!"),
        ("user", "What is my name and favorite color?"),
        ("assistant", "Your name is Alice, and your favorite color is teal!"),
    ],
    "ga_text_in_audio_out_turn.jsonl": [
        ("user", "Say a short greeting."),
        ("assistant", "Hi there!"),
    ],
    "beta_connect_and_transcript_audio.jsonl": [
        ("user", "Say hello in exactly three words."),
        ("assistant", "Hi there, friend!"),
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_conformance_captures_give_the_right_messages(name):
    conversation = replay(CONFORMANCE / name)
    assert [(i.role, i.text) for i in conversation.items] == EXPECTED[name]
    assert all(r.status == "completed" for r in conversation.responses.values())


def test_conformance_tool_round():
    conversation = replay(CONFORMANCE / "ga_tool_call_round.jsonl")
    kinds = [i.type for i in conversation.items]
    assert kinds == ["message", "function_call", "function_call_output", "message"]
    call = conversation.items[1]
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "London"}
    assert conversation.items[2].call_id == call.call_id
    assert conversation.items[3].text == "It is foggy and 12 degrees in London."


def test_conformance_error_overtaking_acknowledgements():
    conversation = replay(CONFORMANCE / "ga_message_history_seeding_with_error_invalid_value.jsonl")
    assert conversation.errors[0]["param"] == "item.content[0].type"
    assert [i.role for i in conversation.items] == ["user", "user", "assistant"]


def test_renaming_copies_only_what_changes():
    from rt_notebook.protocol.events import to_ga

    ga_item = {
        "type": "conversation.item.added",
        "item": {"id": "i", "role": "assistant", "content": [{"type": "output_text"}]},
    }
    assert to_ga(ga_item) is ga_item  # already GA: no copy on the receive path
    beta_item = {**ga_item, "item": {**ga_item["item"], "content": [{"type": "text"}]}}
    assert to_ga(beta_item)["item"]["content"] == [{"type": "output_text"}]
    assert beta_item["item"]["content"] == [{"type": "text"}]  # the input is left alone
