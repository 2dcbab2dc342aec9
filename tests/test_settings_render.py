"""``%realtime status``'s settings line: accepted, pending and lost settings, inert whatever
they hold (instructions are user text; a lost-settings message is the server's)."""

from __future__ import annotations

import pytest

from rt_notebook.render.settings import SHOWN_CHARACTERS, settings_markdown
from tests.test_markdown_safety import PAYLOADS, problems


def test_accepted_pending_and_lost_settings_are_all_named():
    line = settings_markdown(
        {
            "instructions": "Answer in French.",
            "reasoning_effort": "low",
            "reasoning": {"effort": "low"},
            "tools": [{"type": "function", "name": "lookup"}],
            "truncation": {"type": "retention_ratio", "retention_ratio": 0.5},
        },
        [{"tool_choice": "required"}],
        "the server refused the session settings …, so tools are back to the defaults",
    )
    assert line.startswith("Settings: instructions `Answer in French.`, reasoning_effort `low`")
    assert "tools `lookup`" in line
    assert '"retention_ratio": 0.5' in line
    assert "reasoning `" not in line  # shown once, as reasoning_effort
    assert "pending (not acknowledged yet): tool_choice `required`" in line
    assert "**Lost on the last reconnect:**" in line
    assert "\n" not in line


def test_no_settings_say_the_server_defaults():
    assert settings_markdown({}, [], None) == "Settings: the server defaults"


def test_long_values_are_cut():
    line = settings_markdown({"instructions": "x" * 500}, [], None)
    assert "x" * (SHOWN_CHARACTERS - 1) + "…" in line
    assert "x" * SHOWN_CHARACTERS not in line


@pytest.mark.parametrize("payload", PAYLOADS)
def test_hostile_settings_render_inert(payload):
    line = settings_markdown({"instructions": payload, payload[:20]: payload}, [], payload)
    assert problems(line) == []
