"""Conversation control against the embedded server: items as data, placement, deletion,
out-of-band responses beside a running one, and the magic's option parsing."""

from __future__ import annotations

import types

import pytest

from rt_notebook.errors import ConfigurationError, ServerError
from rt_notebook.frontends.magic_args import parse_metadata, response_overrides
from rt_notebook.render.tables import history_table
from tests.timing import WAIT, within


def server_order(session):
    """Every mirrored item, each confirmed by the server (conversation.item.retrieve)."""
    return [session.retrieve_item(item.id).id for item in session.items]


def test_insert_at_root_and_after_an_item(session):
    first = session.add_message("first")
    last = session.add_message("last")
    root = session.add_message("at the root", after="root")
    middle = session.add_message("in the middle", after=first)
    assert [item.id for item in session.items] == [root, first, middle, last]
    assert server_order(session) == [root, first, middle, last]
    with pytest.raises(ServerError):
        session.add_message("nowhere", after="item_doesnotexist")
    assert len(session.items) == 4


def test_delete_and_retrieve_keep_mirror_and_server_in_step(session):
    keep = session.add_message("keep me")
    drop = session.add_message("drop me")
    session.delete_item(drop)
    assert [item.id for item in session.items] == [keep]
    with pytest.raises(ServerError):
        session.retrieve_item(drop)
    assert session.retrieve_item(keep).text == "keep me"


def test_history_lists_items_with_call_ids(session):
    session.add_message("a | pipe")
    session.add_item(
        {"type": "function_call", "call_id": "call_1234", "name": "get_x", "arguments": "{}"}
    )
    table = history_table(session)
    assert "a \\| pipe" in table
    assert "get_x({}) call_1234" in table


def test_an_out_of_band_response_runs_beside_an_active_one(paced_server, make_session):
    session = make_session(paced_server)
    running = session.ask(" ".join(f"word{n}" for n in range(200)))
    aside = session.create_response(
        conversation="none",
        metadata={"purpose": "aside"},
        input=[
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Just between us"}],
            }
        ],
    ).wait(WAIT)
    assert not running.done()
    assert aside.out_of_band
    assert aside.metadata == {"purpose": "aside"}
    assert "Just between us" in aside.text
    assert running.wait(within(60)).status == "completed"
    texts = [item.text for item in session.items]
    assert len(texts) == 2
    assert not any("Just between us" in text for text in texts)


def test_an_out_of_band_answer_can_read_conversation_items(session):
    remembered = session.add_message("The password is swordfish")
    session.add_message("Something else entirely")
    result = session.create_response(
        conversation="none", input=[{"type": "item_reference", "id": remembered}]
    ).wait(within(10))
    assert "swordfish" in result.text
    assert len(session.items) == 2


# %%realtime options ------------------------------------------------------------------------


def options(**given):
    defaults = dict.fromkeys(
        ("instructions", "modalities", "voice", "max_output_tokens", "tools", "tool_choice"),
        None,
    )
    return types.SimpleNamespace(**{**defaults, "metadata": None, **given})


def test_cell_options_map_to_response_create_overrides():
    assert response_overrides(
        options(
            instructions="Short.",
            modalities="text, audio",
            voice="marin",
            max_output_tokens="200",
            tools="get_weather, read_cell",
            tool_choice="get_weather",
            metadata="team=docs,run=3",
        )
    ) == {
        "instructions": "Short.",
        "modalities": ["text", "audio"],
        "voice": "marin",
        "max_output_tokens": 200,
        "tools": ["get_weather", "read_cell"],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "metadata": {"team": "docs", "run": "3"},
    }
    assert response_overrides(options(tools="none", tool_choice="none")) == {
        "tools": [],
        "tool_choice": "none",
    }
    assert response_overrides(options(max_output_tokens="inf")) == {"max_output_tokens": "inf"}


def test_metadata_as_json_or_pairs():
    assert parse_metadata('{"a": 1, "b": "two"}') == {"a": "1", "b": "two"}
    assert parse_metadata(" a = 1 , b=x=y ") == {"a": "1", "b": "x=y"}
    for bad in ("{nope", "[1]", "novalue", "=x"):
        with pytest.raises(ConfigurationError):
            parse_metadata(bad)
