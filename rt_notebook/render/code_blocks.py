"""Rendering, pure: the code blocks of a Markdown answer, as the text of one new cell.

``%%realtime --to-cell`` (and ``%realtime fix --to-cell``) put the code of an answer into a
new cell below, as jupyter-ai's ``%%ai -f code`` does. The blocks are found by the parser
the answers are rendered with (markdown-it-py, CommonMark), so what the user sees as code
is exactly what is taken: fenced blocks (any language, or none) and indented blocks, also
inside lists and quotes, in the order they appear. Several blocks become one cell, joined
by a blank line: a cell runs top to bottom as the answer read. The code is taken verbatim
(HTML, backticks and Markdown in it stay text), only line separators made ``\\n`` and
registered credentials replaced by ``***`` (a notebook file must never hold a key).
"""

from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt

from ..redaction import scrub
from .markdown import normalise_lines

__all__ = ["cell_text", "code_blocks"]


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # CommonMark, as the answers are rendered: raw HTML is not code, so it is never taken.
    return MarkdownIt("commonmark", {"html": False})


def code_blocks(text: str) -> list[str]:
    """The contents of the code blocks of ``text`` (Markdown), in order, each without its
    fence and final newline; blocks with nothing but whitespace are skipped."""
    tokens = _parser().parse(normalise_lines(text))
    blocks = [token.content for token in tokens if token.type in ("fence", "code_block")]
    return [scrub(block.rstrip("\n")) for block in blocks if block.strip()]


def cell_text(text: str) -> str | None:
    """The new cell for an answer: its code blocks joined by a blank line, or ``None``
    when it has none."""
    blocks = code_blocks(text)
    return "\n\n".join(blocks) if blocks else None
