"""Pure rendering rules: Markdown safety, {name} interpolation, transcripts."""

from __future__ import annotations

import json
from pathlib import Path

from rt_notebook.frontends.magics import interpolate
from rt_notebook.frontends.transcript import load_recording, to_json, to_markdown
from rt_notebook.render.markdown import safe_markdown


def test_safe_markdown_leaves_ordinary_text_alone():
    text = "# Title\n\n**bold** and `code` with a [link](https://example.org)."
    assert safe_markdown(text) == text


def test_safe_markdown_escapes_raw_html_outside_code():
    text = 'hi <img src=x onerror="window.__rt_xss=1"> <script>alert(1)</script>'
    safe = safe_markdown(text)
    assert "<img" not in safe
    assert "<script" not in safe
    assert "&lt;img" in safe


def test_safe_markdown_keeps_fenced_code():
    text = "see:\n\n```html\n<b>bold</b>\n```\n"
    assert "<b>bold</b>" in safe_markdown(text + "<i>")


def test_safe_markdown_defuses_script_links_and_entities():
    safe = safe_markdown("[x](JavaScript:alert(1)) [y](java&#115;cript:1)")
    assert "javascript:" not in safe.lower()
    assert "&#115;" not in safe.replace("&amp;#115;", "")


def test_interpolate_expands_known_names_only():
    namespace = {"city": "Paris", "data": {"k": [1, 2]}, "n": 3}
    assert interpolate("Weather in {city}?", namespace) == "Weather in Paris?"
    assert interpolate("{data[k]} and {n}", namespace) == "[1, 2] and 3"
    assert interpolate("{unknown} stays", namespace) == "{unknown} stays"
    assert interpolate('json {"a": 1}', namespace) == 'json {"a": 1}'


def test_interpolate_unescapes_doubled_braces_like_str_format():
    namespace = {"city": "Paris"}
    assert interpolate("{{city}} is {city}", namespace) == "{city} is Paris"
    assert interpolate("{{city}} is {city}", namespace) == "{{city}} is {city}".format(**namespace)
    assert interpolate("a {{ b", namespace) == "a { b"
    assert interpolate("{{{city}}}", namespace) == "{Paris}"
    assert interpolate('{{"town": "{city}"}}', namespace) == '{"town": "Paris"}'
    # Nested JSON closes with }} but never opened with {{: kept as written.
    assert interpolate('{"a": {"b": 1}}', namespace) == '{"a": {"b": 1}}'


def test_transcript_from_recording():
    fixture = Path(__file__).parent / "fixtures" / "text_turn_ga.jsonl"
    conversation = load_recording(fixture.read_text().splitlines())
    data = to_json(conversation)
    assert [item["text"] for item in data["items"]] == ["Name a colour.", "Teal blue."]
    assert data["responses"] == [
        {
            "id": "resp_R1",
            "status": "completed",
            "usage": {"total_tokens": 9, "input_tokens": 6, "output_tokens": 3},
        }
    ]
    markdown = to_markdown(conversation)
    assert "**Assistant:**\n\nTeal blue." in markdown
    assert json.loads(json.dumps(data)) == data  # plain data all the way down


def test_safe_markdown_keeps_inline_code_readable():
    safe = safe_markdown("use `List<int>` and `a && b`, not <b>bold</b>")
    assert "<code>List&#60;int&#62;</code>" in safe
    assert "<code>a &#38;&#38; b</code>" in safe
    assert "&lt;b>bold&lt;/b>" in safe


def test_safe_markdown_escaped_backtick_is_not_code():
    safe = safe_markdown("\\`<img src=x onerror=1>`")
    assert "<img" not in safe


def test_safe_markdown_trusts_only_top_level_fences():
    nested = safe_markdown("- item\n\n  ```\n  <img src=x onerror=1>\n  ```\n")
    assert "<img" not in nested
