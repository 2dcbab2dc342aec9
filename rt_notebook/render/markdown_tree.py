"""Rendering, pure Markdown safety, third output: model text as a tree of plain data, never
HTML.

The chat panel's page code builds the DOM itself (``createElement`` and ``textContent``;
no ``innerHTML`` anywhere), from what this module produces with the same parser and the
same policy as :func:`~rt_notebook.render.markdown.markdown_html`: raw HTML off (tags in
the text are text), images off (``![alt](url)`` reads as ``!`` and a link), link targets
checked by :func:`~rt_notebook.render.markdown.is_safe_url`, credentials scrubbed, every
line separator a newline. No parser runs in the page, so nothing depends on two parsers
agreeing, and no bundler is needed for a Markdown library in an anywidget module.

A node is a string (text) or a list ``[tag, attributes?, *children]``: ``tag`` from
:data:`TAGS` (the page refuses any other), ``attributes`` a dict only when there are any
(``href`` on ``a``, ``start`` on ``ol``, ``align`` on table cells). A text is a list of
nodes (its blocks). The page checks tags and attributes again, so a mistake here still
cannot make an element that runs or fetches anything.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from ..redaction import scrub
from .markdown import chat_parser, is_safe_url, normalise_lines

__all__ = ["TAGS", "Node", "markdown_tree", "tree_text"]

Node = str | list[Any]

# Every element the tree may name; the page's renderer has the same list.
TAGS = frozenset(
    {
        *("p", "br", "hr", "em", "strong", "s", "code", "pre", "a", "ul", "ol", "li"),
        *("blockquote", "h1", "h2", "h3", "h4", "h5", "h6"),
        *("table", "thead", "tbody", "tr", "th", "td"),
    }
)
_ALIGN = {"text-align:left": "left", "text-align:right": "right", "text-align:center": "center"}


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return chat_parser()  # markdown_html's configuration (render/markdown.py)


def markdown_tree(text: str) -> list[Node]:
    """Model text (Markdown) as a list of block nodes (see the module's docstring)."""
    root: list[Any] = ["", None]
    _build(_parser().parse(normalise_lines(scrub(text))), root)
    return root[2:]


def tree_text(nodes: list[Node]) -> str:
    """The text a tree shows (for tests and summaries)."""
    parts: list[str] = []

    def walk(node: Node) -> None:
        if isinstance(node, str):
            parts.append(node)
            return
        for child in node[1:]:
            if not isinstance(child, dict):
                walk(child)

    for node in nodes:
        walk(node)
    return "".join(parts)


def _element(tag: str, attributes: dict[str, str] | None = None) -> list[Any]:
    return [tag, attributes] if attributes else [tag]


def _build(tokens: list[Token], root: list[Any]) -> None:
    stack = [root]
    for token in tokens:
        parent = stack[-1]
        if token.nesting == 1:
            if token.hidden:  # a tight list's paragraph: its text goes in the item
                stack.append(parent)
                continue
            element = _element(token.tag, _attributes(token))
            if token.tag in TAGS:
                parent.append(element)
            stack.append(element if token.tag in TAGS else parent)
        elif token.nesting == -1:
            stack.pop()
        elif token.type == "inline":
            _build(token.children or [], parent)
        else:
            _leaf(token, parent)


def _leaf(token: Token, parent: list[Any]) -> None:
    kind = token.type
    if kind in ("text", "html_inline", "html_block"):  # html_*: only if HTML were on
        _text(parent, token.content)
    elif kind in {"softbreak", "hardbreak"}:
        parent.append(["br"])
    elif kind == "code_inline":
        parent.append(["code", token.content])
    elif kind in ("fence", "code_block"):
        parent.append(["pre", ["code", token.content]])
    elif kind == "hr":
        parent.append(["hr"])
    elif token.content:  # anything else the parser may add: its text, as text
        _text(parent, token.content)


def _text(parent: list[Any], text: str) -> None:
    if not text:
        return
    if len(parent) > 1 and isinstance(parent[-1], str):
        parent[-1] += text  # adjacent text nodes as one string
    else:
        parent.append(text)


def _attributes(token: Token) -> dict[str, str] | None:
    if token.tag == "a":
        href = str(token.attrGet("href") or "")
        return {"href": href} if href and is_safe_url(href) else None
    if token.tag == "ol":
        start = token.attrGet("start")
        return {"start": str(int(start))} if start is not None else None
    if token.tag in ("th", "td"):
        align = _ALIGN.get(str(token.attrGet("style") or ""))
        return {"align": align} if align else None
    return None
