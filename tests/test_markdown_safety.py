"""Pure: the one Markdown policy (render/markdown.py) and the escaping of every HTML value.

Outputs are checked by rendering them with two independent Markdown parsers configured as
JupyterLab renders trusted output (raw HTML passed through, every link target kept), then
reading the HTML: no element or attribute outside a short allow-list, no image, no script
link. A seeded generator fuzzes hostile mixtures of separators, fences, HTML, links,
images, autolinks, reference definitions and entity tricks.
"""

from __future__ import annotations

import html
import json
import random
import re
from html.parser import HTMLParser

import mistune
import pytest
from markdown_it import MarkdownIt

from rt_notebook.client.responses import ItemSnapshot
from rt_notebook.render.markdown import (
    fenced,
    inline_code,
    is_safe_url,
    markdown_html,
    safe_inline,
    safe_markdown,
)
from rt_notebook.render.markdown_tree import TAGS, markdown_tree, tree_text
from rt_notebook.render.panel_doc import KINDS, error_entry, item_body, item_meta

SEPARATORS = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\r", "\r\n"]
ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "a", "ul", "ol", "li",
    "blockquote", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"href", "title", "class", "start", "style", "align", "target", "rel"}


class _Walker(HTMLParser):
    def __init__(self, bubble: bool = False) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.tags = ALLOWED_TAGS | ({"div", "span"} if bubble else set())
        self.bubble = bubble

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.tags:
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            if self.bubble and re.fullmatch(r"data-[a-z-]+", name):
                continue
            if name not in ALLOWED_ATTRIBUTES:
                self.problems.append(f"<{tag} {name}=…>")
            if name == "href" and value is not None and not is_safe_url(value):
                self.problems.append(f"<{tag} href={value!r}>")
            if name == "style" and value and "url" in value.lower():
                self.problems.append(f"<{tag} style={value!r}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def _permissive_markdown_it() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": True})
    parser.enable(["table", "strikethrough"])
    parser.validateLink = lambda url: True  # type: ignore[method-assign]
    return parser


RENDERERS = {
    "markdown-it": _permissive_markdown_it().render,
    "mistune": mistune.create_markdown(escape=False, plugins=["strikethrough", "table", "url"]),
}


def problems(markdown: str) -> list[str]:
    """What is unsafe in ``markdown`` as either parser renders it (empty when safe)."""
    found = []
    for name, render in RENDERERS.items():
        walker = _Walker()
        walker.feed(str(render(markdown)))
        walker.close()
        found += [f"{name}: {problem}" for problem in walker.problems]
    # A URL's scheme starts the URL (after a letter or digit it is another scheme), and a
    # link target holds no whitespace (a colon that whitespace follows ends it).
    script = r"(?i)(?<![a-z0-9+.-])(javascript|vbscript)\\?:(?![ \t\n])"
    if re.search(script, _outside_code(markdown)):
        found.append("a script scheme outside code")
    return found


def _outside_code(markdown: str) -> str:
    markdown = re.sub(r"(?ms)^(`{3,})[^\n`]*\n.*?^\1$", "", markdown)
    return re.sub(r"<code>[^<]*</code>", "", markdown)


# Fixed payloads -------------------------------------------------------------------------

PAYLOADS = [
    '<img src=x onerror="window.__rt_xss=1">',
    "<script>window.__rt_xss=2</script>",
    "<iframe src=https://example.org></iframe>",
    "<svg onload=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](java\tscript:alert(1))",
    "[click](javascript\\:alert(1))",
    "[click](java&#115;cript:alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](javascript&colon;alert(1))",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](<javascript:alert(1)>)",
    "<javascript:alert(1)>",
    "[ref]\n\n[ref]: javascript:alert(1)",
    "![ref]\n\n[ref]: https://example.org/leak.png",
    "![alt](https://example.org/leak.png)",
    "![alt](https://example.org/leak.png 'title')",
    "!\\[not an image](https://example.org)",
    "\\![still no image](https://example.org/x.png)",
    "![a][b]\n\n[b]: <https://example.org/x.png>",
    "&lt;img src=x onerror=alert(1)&gt;",
    "&#60;img src=x onerror=alert(1)&#62;",
    "`<img src=x onerror=alert(1)>`",
    "`<b> [x](javascript:alert(1)) ![i](https://example.org/i.png)`",
    "``` inline ``` <img src=x>",
    "\\`<img src=x onerror=1>`",
    "- item\n\n  ```\n  <img src=x onerror=1>\n  ```\n",
    "> quote\n> ```\n> <img src=x onerror=1>\n> ```\n",
    "```\n<img src=x>\n",  # unclosed fence
    "````\n```\n<img src=x>\n````\n<img src=y>",
    "~~~\n<img src=x>\n~~~\n<img src=y>",
    "    <img src=x> indented code\n\n<img src=y>",
    "<div>\n```\n</div>\n<img src=x onerror=1>\n```",
    "<!--\n```\n-->\n<img src=x onerror=1>\n```",
    "$$\\href{javascript:alert(1)}{x}$$",
    "<style>body{background:url(https://example.org/x)}</style>",
    '<math><mtext><table><mglyph><style><img src=x onerror="alert(1)">',
    "<<script>script>alert(1)<</script>/script>",
]


def _separator_payloads() -> list[str]:
    tricks = []
    for sep in SEPARATORS:
        tricks += [
            f"text{sep}```\n<img src=x onerror=alert(1)>\n```",
            f"```{sep}<img src=x onerror=alert(1)>\n```",
            f"```\ncode{sep}```\n<img src=x onerror=alert(1)>",
            f"- a{sep}  ```\n<img src=x>\n```",
            f"[x]:{sep}javascript:alert(1)\n\n[x]",
            f"![a]({sep}https://example.org/x.png)",
        ]
    return tricks


@pytest.mark.parametrize("payload", PAYLOADS + _separator_payloads())
def test_hostile_markdown_renders_safely_in_both_parsers(payload):
    assert problems(safe_markdown(payload)) == []


@pytest.mark.parametrize("payload", PAYLOADS + _separator_payloads())
def test_hostile_markdown_is_safe_in_the_panel(payload):
    walker = _Walker()
    walker.feed(markdown_html(payload))
    assert walker.problems == []


def test_the_six_separators_before_a_fence_no_longer_smuggle_an_img():
    for sep in ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]:
        safe = safe_markdown(f"intro{sep}```\nx\n```\n<img src=x onerror=alert(1)>")
        assert "<img" not in safe, repr(sep)


def test_ordinary_answers_are_returned_as_they_are():
    for text in [
        "# Title\n\n**bold** and `code` with a [link](https://example.org).",
        "1. step\n2. step\n\n```python\nprint('hi')\n```\n",
        "metadata: fine, Data: 5 rows, javascript is a language",
        "| a | b |\n|---|---|\n| 1 | 2 |",
    ]:
        assert safe_markdown(text) == text


def test_code_blocks_keep_their_characters():
    code = "if a < b && c:\n    print('<b>')\n"
    safe = safe_markdown(f"Look:\n```python\n{code}```\nafter <i>")
    assert f"```python\n{code}```" in safe
    rendered = _permissive_markdown_it().render(safe)
    assert html.escape(code, quote=False) in rendered.replace("&quot;", '"').replace("&#x27;", "'")
    assert "&lt;i&gt;" in rendered  # the text after the fence is escaped


def test_code_block_language_is_one_plain_word():
    assert safe_markdown("```py <img src=x>\n<b>\n```").startswith("```py\n")
    assert safe_markdown("```<img>\n<b>\n```").startswith("```\n")


def test_images_become_links_and_keep_their_text():
    safe = safe_markdown("![a cat](https://example.org/cat.png)")
    rendered = _permissive_markdown_it().render(safe)
    assert "<img" not in rendered
    assert '<a href="https://example.org/cat.png">a cat</a>' in rendered
    panel = markdown_html("![a cat](https://example.org/cat.png)")
    assert "<img" not in panel
    assert 'href="https://example.org/cat.png"' in panel


def test_script_links_are_not_links_in_the_panel():
    for link in ["javascript:alert(1)", "vbscript:x", "data:text/html,x", "data:image/png,x"]:
        rendered = markdown_html(f"[x]({link})")
        assert "href" not in rendered, link


def test_inline_code_with_punctuation_renders_as_text():
    safe = safe_markdown("use `List<int>` and `[x](javascript:alert(1))`")
    rendered = _permissive_markdown_it().render(safe)
    assert "<code>List&lt;int&gt;</code>" in html.unescape(rendered).replace("<int>", "&lt;int&gt;")
    assert "<a " not in rendered
    assert problems(safe) == []


def test_sanitized_pieces_joined_by_blank_lines_stay_safe():
    rng = random.Random(7)
    for _ in range(300):
        pieces = [hostile_text(rng, 6) for _ in range(rng.randint(2, 4))]
        joined = "\n\n".join(safe_markdown(piece) for piece in pieces)
        assert problems(joined) == [], pieces


def test_fenced_cannot_be_closed_early():
    for text in ["```\n<img src=x>", "a\u2028````\n<img src=x>", "~~~\n<img>\n~~~"]:
        block = fenced(text, "json")
        assert problems(block + "\n\n<b>after</b>".replace("<", "&lt;")) == []
        rendered = _permissive_markdown_it().render(block)
        assert rendered.count("<pre>") == 1
        assert "<img" not in rendered
    assert fenced("x", "json <img>").startswith("```\n")


def test_inline_code_holds_any_name():
    for name in [
        "get_weather",
        "a`b",
        "x` <img src=x onerror=1> `",
        "n\u2028```\n<b>",
        "[a](javascript:1)",
    ]:
        code = inline_code(name)
        assert problems(f"**Tool** {code} returned") == []
        assert "\n" not in code
    assert inline_code("get_weather") == "`get_weather`"


def test_the_panel_shows_any_name_in_inline_code_as_code_with_its_own_characters():
    # inline_code writes a <code> element for names Markdown would misread; the panel's
    # parser has raw HTML off, and once showed that element as the text "<code>...".
    from rt_notebook.render.markdown_tree import markdown_tree

    rng = random.Random(20261206)
    names = ["a<b>", "x`y", "List<int>", "<script>alert(1)</script>", "</code><b>", "&amp;"]
    names += [hostile_text(rng, 6).replace("\n", " ") for _ in range(300)]
    for name in names:
        shown = " ".join(name.split()) or "?"
        code = inline_code(shown)
        if not code.startswith("<code>"):
            continue
        tree = markdown_tree(f"**Tool** {code} returned")
        assert tree[0][1:] == [["strong", "Tool"], " ", ["code", shown], " returned"], name
        walker = _Walker()
        walker.feed(markdown_html(f"**Tool** {code}"))
        assert walker.problems == [], name
        inner = re.fullmatch(r"<p><code>(.*)</code></p>\n", markdown_html(code), re.S)
        assert inner is not None, name
        assert html.unescape(inner.group(1)) == shown, name


def test_model_text_with_code_elements_stays_text_in_the_panel():
    rendered = markdown_html("a <code>x</code> b <code><img src=x onerror=1></code>")
    assert "<code>x</code>" in rendered  # as Jupyter's own renderer shows it
    assert "&lt;img src=x onerror=1&gt;" in rendered  # a tag inside: all text
    walker = _Walker()
    walker.feed(rendered)
    assert walker.problems == []


def test_safe_inline_cannot_start_a_block():
    for text in ["```\n<img src=x>\n```", "# h\n<b>", "- a\u2028- <script>", "| a | b |"]:
        line = safe_inline(text)
        assert "\n" not in line
        assert problems(line) == []


# Fuzzing ----------------------------------------------------------------------------------

ATOMS = [
    "<img src=x onerror=alert(1)>", "<script>alert(1)</script>", "<svg onload=alert(1)>",
    "<iframe src=//example.org>", "<a href=javascript:alert(1)>", "</code>", "<code>", "<",
    ">", "&", "&#60;", "&lt;", "&#x3C;", "&#106;", "&colon;", "javascript:", "JAVASCRIPT\\:",
    "java\tscript:", "vbscript:", "data:text/html,", "alert(1)", "![", "!", "[", "]", "(", ")",
    "](", "[x]: ", "https://example.org/x.png", "<https://example.org>", "<javascript:x>",
    "`", "``", "```", "````", "~~~", "    ", "  ", "- ", "1. ", "> ", "#", "\\", "$", "$$", "\n",
    "\n\n", "*", "_", "|", "\"", "'", "word", "x", " ",
]  # fmt: skip


def hostile_text(rng: random.Random, size: int = 12) -> str:
    pool = ATOMS + SEPARATORS
    return "".join(rng.choice(pool) for _ in range(rng.randint(1, size)))


def test_fuzz_hostile_mixtures_render_safely():
    rng = random.Random(20261129)
    for _ in range(3000):
        text = hostile_text(rng, 16)
        safe = safe_markdown(text)
        assert problems(safe) == [], repr(text)
        walker = _Walker()
        walker.feed(markdown_html(text))
        assert walker.problems == [], repr(text)


def test_fuzz_sanitizing_is_idempotent_in_effect():
    rng = random.Random(11)
    for _ in range(500):
        safe = safe_markdown(hostile_text(rng, 12))
        assert problems(safe_markdown(safe)) == []


# Every value that reaches the panel's page: plain data, tags and kinds from fixed sets ------

HOSTILE = '"><img src=x onerror=alert(1)> x" onmouseover="alert(2)'


def _item(**fields: str) -> ItemSnapshot:
    values = {
        "id": "item_1",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "text": f"text {HOSTILE}",
        "call_id": None,
        "name": None,
        "arguments": None,
        "output": None,
        "response_id": "resp_1",
    }
    return ItemSnapshot(**{**values, **fields})  # type: ignore[arg-type]


def tree_problems(nodes: list) -> list[str]:
    """What in a Markdown tree the page would refuse or could not show safely."""
    found: list[str] = []

    def walk(node) -> None:
        if isinstance(node, str):
            return
        tag, *rest = node
        if tag not in TAGS:
            found.append(f"<{tag}>")
        if rest and isinstance(rest[0], dict):
            attributes, rest = rest[0], rest[1:]
            for name, value in attributes.items():
                allowed = {"a": {"href"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}
                if name not in allowed.get(tag, set()):
                    found.append(f"<{tag} {name}=…>")
                if name == "href" and not re.match(r"(https?:|mailto:|#)", value, re.I):
                    found.append(f"<{tag} href={value!r}>")
        for child in rest:
            walk(child)

    for node in nodes:
        walk(node)
    return found


@pytest.mark.parametrize(
    "fields",
    [
        {"role": HOSTILE},
        {"role": "x rt-chat-user"},
        {"id": HOSTILE},
        {"status": HOSTILE},
        {"type": "function_call", "name": HOSTILE, "call_id": HOSTILE, "arguments": HOSTILE},
        {"type": "function_call_output", "call_id": HOSTILE, "output": HOSTILE},
        {"type": HOSTILE},
    ],
)
def test_every_item_field_is_text_or_from_a_fixed_set(fields):
    item = _item(**fields)
    meta = item_meta(item, HOSTILE)
    assert meta["kind"] in KINDS  # the only value that becomes a class name
    assert set(meta["data"]) == {"item-id", "type", "role", "status", "response-status"}
    assert meta["events"] == ""
    body = item_body(item)
    assert tree_problems(body) == []
    assert HOSTILE in tree_text(body) or HOSTILE in json.dumps(body)  # shown, as text


def test_fuzz_hostile_mixtures_make_trees_of_allowed_elements_only():
    rng = random.Random(23)
    for _ in range(800):
        text = hostile_text(rng, 14)
        assert tree_problems(markdown_tree(text)) == [], repr(text)


def test_error_entries_are_text_and_scrubbed():
    from rt_notebook.redaction import register_secret

    register_secret("sk-test-error-bubble-0123456789")
    entry = error_entry("e:0", f"{HOSTILE} key sk-test-error-bubble-0123456789")
    assert entry["blocks"] == [["p", f"{HOSTILE} key ***"]]
    assert entry["meta"]["kind"] == "error"


def test_code_nested_in_lists_and_quotes_keeps_its_characters_and_its_place():
    text = "1. Install:\n\n   ```bash\n   pip install x && y\n   ```\n2. Then:\n\n"
    text += "> ```\n> a < b\n> ```\n"
    rendered = _permissive_markdown_it().render(safe_markdown(text))
    assert "<li>\n<p>Install:</p>\n<pre><code>pip install x &#38;&#38; y</code></pre>\n</li>" in (
        rendered
    )
    assert "<blockquote>\n<pre><code>a &#60; b</code></pre>\n</blockquote>" in rendered
    assert html.unescape("pip install x &#38;&#38; y") == "pip install x && y"
    assert problems(safe_markdown(text + "<img src=x>")) == []
