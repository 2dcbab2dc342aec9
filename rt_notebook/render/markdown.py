"""Rendering, pure Markdown safety: the one policy for model text shown in cells, the panel
and prompts.

The rule, for every place model or server text is shown:

- no raw HTML: tags in the text are shown as text;
- no remote fetches: an image is shown as a link (``!`` then the link), never loaded;
- no script-capable links: ``javascript:``, ``vbscript:`` and ``data:`` targets are broken;
- whatever the line separators: ``\\r``, ``\\v``, ``\\f``, ``\\x1c``-``\\x1e``, U+0085,
  U+2028 and U+2029 all become ``\\n`` first, so every parser sees the same lines;
- registered credentials are replaced by ``***`` (:func:`~rt_notebook.redaction.scrub`).

Two outputs follow it:

:func:`safe_markdown` (``text/markdown`` cell output)
    JupyterLab renders *trusted* Markdown output (everything the running session
    produces) with its own parser (marked) and no sanitizer, so the Markdown itself must
    be inert whichever way that parser reads it. markdown-it-py only finds the code
    blocks: top-level ones are written back as canonical fences (backticks longer than any
    run inside, a plain language word) with a blank line before and after, so the code
    keeps its characters; fences nested in a list or quote become one line of
    ``<pre><code>`` in their place, every punctuation mark an entity. Everything else is
    made *inert text*, safe however a parser groups it:
    ``&`` → ``&amp;``, ``<`` → ``&lt;``, the ``!`` of ``![`` → ``&#33;``, runs of three or
    more backticks or tildes spelled as entities (no fence can open outside ours), and a
    zero-width space after a script scheme's name. Inline code whose content is already
    inert stays as it is; other inline code becomes a ``<code>`` element whose text is all
    entities, so no parser finds Markdown, HTML or math in it.
:func:`markdown_html` (``ipywidgets.HTML`` in the chat panel)
    The same parser reads the Markdown and writes the HTML, with raw HTML and images
    disabled and links checked by :func:`is_safe_url`, so nothing depends on two parsers
    agreeing. The one element it reads is ``<code>text</code>`` with no tag inside (what
    :func:`inline_code` writes), as inline code of the text, as Jupyter shows it.

Each function handles one piece on its own: sanitizing finished blocks separately and
joining them with blank lines is as safe as sanitizing the whole, and costs time in
proportion to the piece. Text with none of ``< & ![``, a separator or a script scheme
(nearly every answer) is returned as it is.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import TYPE_CHECKING

from ..redaction import scrub

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.renderer import RendererHTML
    from markdown_it.rules_inline import StateInline
    from markdown_it.token import Token
    from markdown_it.utils import EnvType, OptionsDict

__all__ = [
    "UNSAFE_SCHEMES",
    "chat_parser",
    "fenced",
    "inline_code",
    "is_safe_url",
    "markdown_html",
    "normalise_lines",
    "safe_inline",
    "safe_markdown",
]

# Link schemes a browser would run (or, for data:, render as a document).
UNSAFE_SCHEMES = ("javascript", "vbscript", "data")

# A scheme name as a browser reads it: any case, with ASCII controls and spaces anywhere
# (browsers drop tabs and newlines inside a URL and controls and spaces before it).
_SCHEME_NAME = "|".join("[\\x00-\\x20]*".join(map(re.escape, name)) for name in UNSAFE_SCHEMES)
# In text: the name must start a word (``metadata:`` is another scheme) and be followed by
# a colon (maybe backslash-escaped) that something other than whitespace follows (a link
# target cannot hold whitespace, so ``Data: 5 rows`` is prose and stays untouched).
# (Each pattern below starts with a lookahead for its first character, which lets the
# regex engine skip ahead quickly: they run over every piece of model text.)
_SCRIPT_SCHEME = re.compile(
    rf"(?=[JVDjvd])(?<![A-Za-z0-9+.\-])({_SCHEME_NAME})(?=[\x00-\x20]*\\?:(?![ \t\n]))",
    re.IGNORECASE,
)
# At the start of a link target (after the parser decoded it).
_UNSAFE_URL = re.compile(rf"[\x00-\x20]*(?:{_SCHEME_NAME})[\x00-\x20]*:", re.IGNORECASE)

# Every line separator some parser or browser honours; all become "\n".
_SEPARATORS = re.compile("\r\n?|[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
# Anything that can make Markdown unsafe; text without any is inert as it is.
# (With the script schemes, which need a colon.)
_HAZARD = re.compile("[<&\x00\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]|!\\[")
# What inert text spells differently (the scheme rule is applied after it). An entity
# reference also gets a zero-width space after its "&", so that a renderer that decodes
# "&amp;" once and forgets to re-escape it still cannot produce "&colon;" or "&#60;".
_TEXT_HAZARD = re.compile(
    r"(?=[&<!`~])(?:(?P<entity>&)(?=#[0-9]+;|#[xX][0-9a-fA-F]+;|[A-Za-z][A-Za-z0-9]*;)"
    r"|[&<]|!(?=\[)|`{3,}|~{3,})"
)
# An inline code span on one line: a backtick run that no backslash or backtick precedes,
# closed by a run of the same length (CommonMark's rule, without spans that cross lines).
_CODE_SPAN = re.compile(r"(?=`)(?<![\\`])(`{1,2})(?!`)(.+?)(?<!`)\1(?!`)")
# Text without these holds no code block (a fence, or a line indented like code).
_MAYBE_CODE = re.compile(r"```|~~~|^(?: {0,3}\t| {4})", re.MULTILINE)
# A code block's language as written back: one plain word.
_LANGUAGE = re.compile(r"[A-Za-z0-9_+#.\-]{1,40}")
# Characters written as numeric entities inside our <code> elements: every ASCII
# punctuation mark, so no parser finds Markdown, HTML, math or a scheme in them.
_PUNCTUATION = re.compile(r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]""")


# Public functions ---------------------------------------------------------------------


def normalise_lines(text: str) -> str:
    """``text`` with every line separator as ``\\n`` and NUL as U+FFFD."""
    return _SEPARATORS.sub("\n", text).replace("\x00", "\ufffd")


def safe_markdown(text: str) -> str:
    """Model text as Markdown that renders it without raw HTML, images or script links.

    Pieces of a text (its finished blocks, then the growing tail) may be sanitized one by
    one and joined with a blank line (``"\\n\\n"``) between them: every output closes what
    it opens, so the joined text is as safe as each piece. The cost is linear in the piece.
    """
    text = scrub(text)
    if not _HAZARD.search(text) and not (":" in text and _SCRIPT_SCHEME.search(text)):
        return text
    text = normalise_lines(text)
    # Lines made inert one by one; a nested code block becomes one line of our own HTML.
    lines: list[str | None] = [_inert_line(line) for line in text.split("\n")]
    top, nested = _code_blocks(text)
    for start, end, prefix, content in nested:
        lines[start : min(end, len(lines))] = [None] * (min(end, len(lines)) - start)
        lines[start] = _inert_text(prefix) + _pre_element(content)
    parts: list[str] = []
    position = 0
    for start, end, content, language in top:
        parts.append(_join(lines[position:start]))
        parts.append(_fence(content, language))
        position = end
    parts.append(_join(lines[position:]))
    if len(parts) == 1:
        return parts[0]
    # Blank lines around each fence: it opens at the start of a block in every parser.
    joined = "\n\n".join(part.strip("\n") for part in parts if part.strip())
    return joined + "\n" if text.endswith("\n") else joined


def safe_inline(text: str) -> str:
    """One line of inert Markdown (a table cell, a label, a footer): no block can start."""
    return _inert_line(" ".join(normalise_lines(scrub(text)).split("\n")))


def fenced(text: str, language: str = "") -> str:
    """``text`` as a fenced code block that nothing in it can close early."""
    return _fence(normalise_lines(scrub(text)), language)


def inline_code(text: str) -> str:
    """``text`` (a name, an id, a command) as inline code that nothing in it can break."""
    text = " ".join(normalise_lines(scrub(text)).split("\n"))
    if text.strip() and "`" not in text and _inert_text(text) == text:
        return f"`{text}`"  # as safe read as text as it is read as code
    return _code_element(text)


def is_safe_url(url: str) -> bool:
    """Whether a link target may be shown as a link (it runs no script)."""
    return not _UNSAFE_URL.match(url)


def markdown_html(text: str) -> str:
    """Model text (Markdown) as HTML that cannot run code or fetch anything."""
    return str(_html_parser().render(normalise_lines(scrub(text))))


# Markdown output ------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _block_parser() -> MarkdownIt:
    # HTML off: our output holds no raw HTML, so a tag line must not hide a fence after it.
    # Only block structure is needed: inline parsing (most of the cost) is switched off.
    # markdown-it loads here, not at import: an answer with nothing to make inert (most
    # of them, and a kernel's first) never needs it.
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).disable(["inline", "text_join"])


_Block = tuple[int, int, str, str]


def _code_blocks(text: str) -> tuple[list[_Block], list[_Block]]:
    """Top-level code blocks as (first line, end line, content, language), and fences
    nested in lists or quotes as (first line, end line, container prefix, content)."""
    top: list[_Block] = []
    nested: list[_Block] = []
    if not _MAYBE_CODE.search(text):
        return top, nested  # no fence and no indented line: no code block to find
    lines = text.split("\n")
    for token in _block_parser().parse(text):
        if token.map is None or token.type not in ("fence", "code_block"):
            continue
        start, end = token.map
        if token.level == 0:
            words = token.info.split() if token.type == "fence" else []
            top.append((start, end, token.content, words[0] if words else ""))
        elif token.type == "fence" and token.markup in lines[start]:
            prefix = lines[start][: lines[start].index(token.markup)]
            nested.append((start, end, prefix, token.content))
    return top, nested


def _fence(content: str, language: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", content)), default=0)
    fence = "`" * max(3, longest + 1)
    if not _LANGUAGE.fullmatch(language):
        language = ""
    return f"{fence}{language}\n{content.removesuffix(chr(10))}\n{fence}"


def _join(lines: list[str | None]) -> str:
    return "\n".join(line for line in lines if line is not None)


def _pre_element(content: str) -> str:
    # One line whatever the content, so it stays inside its list item or quote; every
    # punctuation mark an entity, so it is inert text however a parser reads the line.
    escaped = _PUNCTUATION.sub(lambda m: f"&#{ord(m.group(0))};", content.removesuffix("\n"))
    return "<pre><code>" + escaped.replace("\n", "&#10;") + "</code></pre>"


def _inert_line(line: str) -> str:
    pieces = []
    position = 0
    for span in _CODE_SPAN.finditer(line):
        pieces.append(_inert_text(line[position : span.start()]))
        content = span.group(2)
        # Kept as written only if it would be just as safe read as plain text.
        pieces.append(span.group(0) if _inert_text(content) == content else _code_element(content))
        position = span.end()
    pieces.append(_inert_text(line[position:]))
    return "".join(pieces)


def _inert_text(text: str) -> str:
    text = _TEXT_HAZARD.sub(_spell_out, text)
    return _SCRIPT_SCHEME.sub("\\1\u200b", text) if ":" in text else text


def _spell_out(match: re.Match[str]) -> str:
    found = match.group(0)
    if match.group("entity"):
        return "&amp;\u200b"
    if found == "&":
        return "&amp;"
    if found == "<":
        return "&lt;"
    return "".join(f"&#{ord(char)};" for char in found)  # "!" before "[", fence runs


def _code_element(content: str) -> str:
    if content.startswith(" ") and content.endswith(" ") and content.strip():
        content = content[1:-1]  # CommonMark strips one space from each side
    return "<code>" + _PUNCTUATION.sub(lambda m: f"&#{ord(m.group(0))};", content) + "</code>"


# HTML output ------------------------------------------------------------------------------


def chat_parser() -> MarkdownIt:
    """A new parser with the panel's policy (for :func:`markdown_html` and the panel's
    trees): raw HTML off, images off, links checked, tables and strikethrough on, and
    the ``<code>`` elements :func:`inline_code` writes read back as inline code."""
    from markdown_it import MarkdownIt

    # breaks: a line typed with Shift+Enter is a line in the bubble, as in other chat UIs.
    parser = MarkdownIt("commonmark", {"html": False, "breaks": True})
    parser.enable(["table", "strikethrough"])
    parser.disable("image")  # "![alt](url)" reads as "!" and a link
    parser.validateLink = is_safe_url  # type: ignore[method-assign]
    # With raw HTML off, a name that needed inline_code's element (``a<b>``, a name with
    # a backtick) would show as the text "<code>a&#60;b&#62;</code>".
    parser.inline.ruler.before("backticks", "code_element", _code_element_rule)
    return parser


def _code_element_rule(state: StateInline, silent: bool) -> bool:
    """``<code>text</code>`` (no tag inside) as inline code whose content is the text
    with its entities decoded: shown as text, whatever it holds."""
    if state.src[state.pos] != "<":
        return False
    match = _CODE_ELEMENT.match(state.src, state.pos)
    if match is None:
        return False
    if not silent:
        token = state.push("code_inline", "code", 0)
        token.markup = "<code>"
        token.content = html.unescape(match.group(1))
    state.pos = match.end()
    return True


_CODE_ELEMENT = re.compile(r"<code>([^<]*)</code>")


@lru_cache(maxsize=1)
def _html_parser() -> MarkdownIt:
    parser = chat_parser()
    parser.add_render_rule("link_open", _render_link_open)
    return parser


def _render_link_open(
    renderer: RendererHTML,
    tokens: list[Token],
    index: int,
    options: OptionsDict,
    env: EnvType,
) -> str:
    # A plain link inside JupyterLab would navigate the whole application away.
    tokens[index].attrSet("target", "_blank")
    tokens[index].attrSet("rel", "noopener noreferrer nofollow")
    return renderer.renderToken(tokens, index, options, env)
