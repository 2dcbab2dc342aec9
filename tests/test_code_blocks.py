"""The code of an answer as one cell (``--to-cell``), and the ``%realtime fix`` line."""

from __future__ import annotations

import pytest

from rt_notebook.errors import ConfigurationError
from rt_notebook.frontends.magic_args import parse_line
from rt_notebook.redaction import register_secret
from rt_notebook.render.code_blocks import cell_text, code_blocks


def test_fenced_blocks_of_any_language_in_order():
    text = "Hi\n\n```python\na = 1\n```\n\nthen\n\n~~~bash\nls -l\n~~~\n"
    assert code_blocks(text) == ["a = 1", "ls -l"]
    assert cell_text(text) == "a = 1\n\nls -l"


def test_blocks_in_lists_and_quotes_and_indented_blocks_count():
    text = "- step\n\n  ```\n  in_list()\n  ```\n\n> ```\n> quoted()\n> ```\n\n    indented()\n"
    assert code_blocks(text) == ["in_list()", "quoted()", "indented()"]


def test_no_code_gives_none():
    assert cell_text("Just `inline` code and <pre>html</pre>, no block.") is None
    assert cell_text("```\n   \n```") is None  # only whitespace


def test_hostile_contents_are_kept_verbatim():
    inner = "```\n<script>alert(1)</script>\n<img src=x onerror=alert(2)>\n~~~"
    assert cell_text(f"````\n{inner}\n````") == inner


def test_an_unclosed_fence_runs_to_the_end_as_markdown_reads_it():
    assert cell_text("```python\nx = 1\ny = 2") == "x = 1\ny = 2"


def test_keys_are_scrubbed_and_separators_normalised():
    register_secret("sk-code-blocks-secret-123")
    text = "```\nclient = OpenAI(api_key='sk-code-blocks-secret-123')\r\nx\u2028y\n```"
    assert cell_text(text) == "client = OpenAI(api_key='***')\nx\ny"


@pytest.mark.parametrize("line", ["fix", "fix --to-cell", "fix --oob --to-cell"])
def test_fix_takes_its_flags(line):
    assert parse_line(line).name == "fix"


@pytest.mark.parametrize("line", ["fix --to-cel", "fix --to-cell --to-cell", "fix 3"])
def test_fix_refuses_anything_else(line):
    with pytest.raises(ConfigurationError, match=r"usage: %realtime fix \[--to-cell\] \[--oob\]"):
        parse_line(line)
