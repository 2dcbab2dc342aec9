"""Pure bounded rendering of a huge answer's final output: what the page draws of it.

A front end renders a cell's ``text/markdown`` output whole, every time the notebook
opens: JupyterLab's renderer (marked, then its sanitizer for a reopened notebook, then
syntax highlighting of every code block and a pass over every link) kept the page busy
for minutes on a 1.6 MB answer dense in code and links. So an answer whose Markdown passes
:data:`~rt_notebook.render.stream_edits.MARKDOWN_LIMIT` also gets a ``text/html``
representation, which Jupyter front ends prefer to ``text/markdown``: its first blocks,
up to the limit, rendered by :func:`~rt_notebook.render.markdown.markdown_html` (the
project's safe renderer: no raw HTML, no images, script links refused), then as much again
as plain text in one ``<pre>`` (nothing in it is parsed, highlighted or linked), and a
note saying how much more is not drawn. The output's ``text/markdown`` and ``text/plain``
stay the exact full answer, for every other reader of the notebook (nbconvert's Markdown,
a text export, a script); the drawing is bounded whatever the answer's length, so the
page's sanitizer, typesetter and layout never see megabytes.
"""

from __future__ import annotations

import html

from ..redaction import scrub
from .blocks import BlockScanner
from .markdown import markdown_html, normalise_lines
from .stream_edits import MARKDOWN_LIMIT

__all__ = ["bounded_html", "needs_bounds"]


def needs_bounds(markdown: str, limit: int = MARKDOWN_LIMIT) -> bool:
    """Whether an answer's final Markdown is too long to render whole."""
    return len(markdown) > limit


def bounded_html(raw: str, footer: str = "", limit: int = MARKDOWN_LIMIT) -> str:
    """HTML for ``raw`` (the answer's unsanitized Markdown): the blocks that fit in
    ``limit`` characters rendered, then up to ``limit`` more as plain text, then a note on
    what is left out of the drawing, then ``footer`` (Markdown) rendered."""
    cut = BlockScanner().feed(raw[:limit])  # the last block boundary within the limit
    rest = scrub(normalise_lines(raw[cut:]))
    shown, left = rest[:limit], len(rest) - min(len(rest), limit)
    note = (
        f"<p><em>Rendered as Markdown up to {limit // 1000} KB; the next "
        f"{len(shown):,} characters follow as plain text"
        + (f", and {left:,} more are not drawn" if left else "")
        + ". The whole answer is this output's text/markdown and text/plain.</em></p>"
    )
    parts = [
        markdown_html(raw[:cut]) if cut else "",
        note,
        f'<pre class="rt-notebook-rest">{html.escape(shown, quote=False)}</pre>',
        markdown_html(footer) if footer else "",
    ]
    return "\n".join(part for part in parts if part)
