"""Pure Markdown safety: model text in, Markdown that cannot carry raw HTML out.

JupyterLab sanitizes Markdown output only when the output is *untrusted*; outputs produced
in the running session are trusted, so raw HTML in model text (``<img onerror=…>``,
``<script>``) would reach ``innerHTML`` and run. Model text is untrusted input, so before
it is handed to Jupyter's Markdown renderer:

- outside code, every ``&`` becomes ``&amp;`` (no entity can spell a tag or a scheme),
  every ``<`` becomes ``&lt;`` (it still reads as ``<``), and script-capable link schemes
  are broken with a zero-width space;
- inline code that holds ``<`` or ``&`` becomes a ``<code>`` element whose text we escape
  ourselves, so it still reads exactly as written;
- fenced and indented code blocks are kept as they are, but only top-level, unindented
  ones: every Markdown parser agrees on those, so none can read their lines as HTML.

Safety never depends on agreeing with the browser's parser about inline code: a span we
take for code becomes escaped ``<code>`` text, and one we miss is escaped as plain text.
Text without ``<``, ``&`` or a dangerous scheme (nearly every answer) is returned as it is.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

from markdown_it import MarkdownIt

__all__ = ["safe_markdown"]

# Link schemes a browser would execute; matched case-insensitively, allowing the
# whitespace and control characters browsers ignore inside a scheme.
_DANGEROUS_SCHEME = re.compile(
    r"(j[\s\x00-\x1f]*a[\s\x00-\x1f]*v[\s\x00-\x1f]*a[\s\x00-\x1f]*s[\s\x00-\x1f]*c[\s\x00-\x1f]*"
    r"r[\s\x00-\x1f]*i[\s\x00-\x1f]*p[\s\x00-\x1f]*t|vbscript|data)[\s\x00-\x1f]*:",
    re.IGNORECASE,
)
# An inline code span on one line: a backtick run (not backslash-escaped) closed by a run
# of the same length (CommonMark's rule, without spans that cross lines).
_CODE_SPAN = re.compile(r"(?<!\\)(`+)(?!`)(.+?)(?<!`)\1(?!`)")


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark")


def safe_markdown(text: str) -> str:
    """Return ``text`` with raw HTML and script links neutralised, code kept readable."""
    if "<" not in text and "&" not in text and not _DANGEROUS_SCHEME.search(text):
        return text
    lines = text.splitlines(keepends=True)
    in_code = [False] * len(lines)
    for start, end in _code_block_lines(text, lines):
        for index in range(start, min(end, len(lines))):
            in_code[index] = True
    return "".join(
        line if code else _neutralise_line(line) for line, code in zip(lines, in_code, strict=True)
    )


def _code_block_lines(text: str, lines: list[str]) -> list[tuple[int, int]]:
    """Line ranges of top-level code blocks every parser reads as code."""
    ranges = []
    for token in _parser().parse(text):
        if token.level != 0 or token.map is None:
            continue
        start, end = token.map
        if token.type == "fence" and lines[start].startswith(("```", "~~~")):
            ranges.append((start + 1, end - 1))  # the fence lines themselves are not code
        elif token.type == "code_block":
            ranges.append((start, end))
    return ranges


def _neutralise_line(line: str) -> str:
    pieces = []
    position = 0
    for span in _CODE_SPAN.finditer(line):
        pieces.append(_neutralise_text(line[position : span.start()]))
        pieces.append(_code_span(span.group(0), span.group(2)))
        position = span.end()
    pieces.append(_neutralise_text(line[position:]))
    return "".join(pieces)


def _code_span(source: str, content: str) -> str:
    if "<" not in content and "&" not in content:
        return source  # nothing to escape: let the renderer show it natively
    if content.startswith(" ") and content.endswith(" ") and content.strip():
        content = content[1:-1]  # CommonMark strips one space from each side
    return f"<code>{html.escape(content, quote=False)}</code>"


def _neutralise_text(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    return _DANGEROUS_SCHEME.sub("\\1\u200b:", text)
