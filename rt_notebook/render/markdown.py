"""Pure Markdown safety: model text in, Markdown that cannot carry raw HTML out.

JupyterLab sanitizes Markdown output only when the output is *untrusted*; outputs produced
in the running session are trusted, so raw HTML in model text (``<img onerror=…>``,
``<script>``) would reach ``innerHTML`` and run. Model text is untrusted input, so before
it is handed to Jupyter's Markdown renderer, outside code blocks, every ``&`` becomes
``&amp;`` (so no entity can spell a tag or a scheme), every ``<`` becomes ``&lt;`` (it still
reads as ``<``) and script-capable link schemes are broken with a zero-width space.

Text without ``<``, ``&`` or a dangerous scheme (nearly every answer) is returned as it is,
so fidelity is lost only where HTML could have been present.
"""

from __future__ import annotations

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


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark")


def safe_markdown(text: str) -> str:
    """Return ``text`` with raw HTML and script links neutralised, code blocks untouched."""
    if "<" not in text and "&" not in text and not _DANGEROUS_SCHEME.search(text):
        return text
    lines = text.splitlines(keepends=True)
    in_code = [False] * len(lines)
    for token in _parser().parse(text):
        if token.type in ("fence", "code_block") and token.map is not None:
            start, end = token.map
            # A fence's own ``` lines are not code, but they hold no "<" that matters.
            for index in range(start, min(end, len(lines))):
                in_code[index] = True
    return "".join(
        line if code else _neutralise(line) for line, code in zip(lines, in_code, strict=True)
    )


def _neutralise(line: str) -> str:
    line = line.replace("&", "&amp;").replace("<", "&lt;")
    return _DANGEROUS_SCHEME.sub("\\1\u200b:", line)
