"""Pure rendering: conversation items as Markdown, the one renderer every view uses.

Cells (a response's output), the chat panel, ``%realtime history``, transcripts of
recordings, the panel's exports and the inspector's labels all show conversation items;
they all take their labels and Markdown from here, so an item reads the same everywhere:

- a message: its speaker (``You``, ``Assistant``, ``System``, or the role as written),
  then its text (or audio transcript) as Markdown, then a label per image it holds
  (``[image 640x480 PNG, 41 KB]``: never the image's base64 text);
- a function call: ``Function call `name``` and its arguments as a JSON code block;
- a function call's output: ``Function output (`call_id`)`` and the output as a code
  block;
- remote MCP items (:mod:`rt_notebook.protocol.mcp`): a listing as ``MCP tools of
  `label``` and one line per tool; a call as ``MCP call `tool``` with its server, its
  arguments as a JSON code block, then its output as a code block or its error; an
  approval request as ``MCP approval asked`` with the arguments; an approval response
  as its decision.

Every piece of model, server or user text passes through the one Markdown policy
(:mod:`rt_notebook.render.markdown`): message text through
:func:`~rt_notebook.render.markdown.safe_markdown`, names and ids as
:func:`~rt_notebook.render.markdown.inline_code`, labels through
:func:`~rt_notebook.render.markdown.safe_inline`, arguments and outputs as
:func:`~rt_notebook.render.markdown.fenced` code blocks. Items are read through the
:class:`Item` protocol, which both the Session's snapshots and the mirror's items satisfy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

from .markdown import fenced, inline_code, safe_inline, safe_markdown

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

__all__ = [
    "ROLE_LABELS",
    "Item",
    "hard_breaks",
    "image_labels",
    "item_body",
    "item_label",
    "item_markdown",
    "item_source",
    "item_summary",
    "pretty_json",
    "response_markdown",
    "role_label",
    "transcript_markdown",
]

ROLE_LABELS = {"user": "You", "assistant": "Assistant", "system": "System"}
# Between the sections of a transcript.
SECTION_BREAK = "\n\n---\n\n"


class Item(Protocol):
    """What rendering reads of an item (``ItemSnapshot`` and the mirror's ``Item``)."""

    @property
    def id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def role(self) -> str | None: ...
    @property
    def text(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def call_id(self) -> str | None: ...
    @property
    def arguments(self) -> str | None: ...
    @property
    def output(self) -> str | None: ...


def role_label(role: str | None) -> str:
    """The speaker of a message as plain text (``You``, ``Assistant``, …; other roles as
    written, ``message`` for none)."""
    return ROLE_LABELS.get(role or "", role or "message")


def item_label(item: Item) -> str:
    """What an item is, as plain text: the speaker, ``Function call NAME`` or
    ``Function output CALL_ID`` (names and ids are model-written: escape them to show)."""
    if item.type == "function_call":
        return f"Function call {item.name or '?'}"
    if item.type == "function_call_output":
        return f"Function output {item.call_id or '?'}"
    if item.type == "message":
        return role_label(item.role)
    label = _server(item)
    if item.type == "mcp_call":
        return f"MCP call {item.name or '?'} ({label})"
    if item.type == "mcp_list_tools":
        return f"MCP tools of {label}"
    if item.type == "mcp_approval_request":
        return f"MCP approval asked for {item.name or '?'} ({label})"
    if item.type == "mcp_approval_response":
        return f"MCP approval {item.output or '?'}"
    return item.type


def _server(item: Item) -> str:
    return getattr(item, "server_label", None) or "?"


def _mcp_body(item: Item) -> str | None:
    """A remote MCP item as safe Markdown, or ``None`` for other items."""
    server = inline_code(_server(item))
    error = getattr(item, "error", None)
    if item.type == "mcp_list_tools":
        tools = getattr(item, "tools", ())
        heading = f"**MCP tools** of {server}"
        if error:
            return f"{heading}: failed: {safe_inline(error)}"
        if not tools:
            return f"{heading}: {'none' if getattr(item, 'status', None) else 'listing…'}"
        lines = [
            f"- {inline_code(tool.get('name', '?'))}"
            + (f": {safe_inline(tool['description'])}" if tool.get("description") else "")
            for tool in tools
        ]
        return heading + "\n\n" + "\n".join(lines)
    if item.type in ("mcp_call", "mcp_approval_request"):
        verb = "MCP call" if item.type == "mcp_call" else "MCP approval asked for"
        arguments = fenced(pretty_json(item.arguments or ""), "json")
        parts = [f"**{verb}** {inline_code(item.name or '?')} (server {server})", arguments]
        if item.type == "mcp_call" and error:
            parts.append(f"**MCP error:** {safe_inline(error)}")
        elif item.type == "mcp_call" and item.output is not None:
            parts.append(fenced(pretty_json(item.output)))
        return "\n\n".join(parts)
    if item.type == "mcp_approval_response":
        request = inline_code(item.call_id or "?")
        return f"**MCP approval** ({request}): {safe_inline(item.output or '?')}"
    return None


def pretty_json(text: str) -> str:
    """``text`` indented if it is JSON, else as it is (arguments may still be streaming)."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def image_labels(item: Item) -> list[str]:
    """``image 640x480 PNG, 41 KB`` for each image of a message (items without an
    ``images`` attribute have none)."""
    return [image.label for image in getattr(item, "images", ())]


def _with_images(markdown: str, item: Item) -> str:
    labels = [f"*\\[{safe_inline(label)}\\]*" for label in image_labels(item)]
    return "\n\n".join(part for part in (markdown, *labels) if part)


def item_source(item: Item) -> str:
    """An item's Markdown before sanitizing, as it grows (a view sanitizes it block by
    block with ``safe_markdown``): message text, or a call's heading and arguments."""
    if item.type == "message":
        return _with_images(item.text or "", item)
    if item.type == "function_call":
        return f"**Function call** `{item.name or '?'}`\n\n```json\n{item.arguments or ''}\n```"
    if item.type == "mcp_call":
        # The code block is the last block while the arguments stream: it only grows.
        return (
            f"**MCP call** {inline_code(item.name or '?')} (server {inline_code(_server(item))})"
            f"\n\n```json\n{item.arguments or ''}\n```"
        )
    return ""


def item_body(item: Item) -> str:
    """An item's content as safe Markdown, without a speaker line: message text, or a
    call's heading and code block."""
    if item.type == "function_call":
        arguments = fenced(pretty_json(item.arguments or ""), "json")
        return f"**Function call** {inline_code(item.name or '?')}\n\n{arguments}"
    if item.type == "function_call_output":
        output = fenced(pretty_json(item.output or ""))
        return f"**Function output** ({inline_code(item.call_id or '?')})\n\n{output}"
    if item.type == "message":
        return _with_images(safe_markdown(item.text or ""), item)
    mcp = _mcp_body(item)
    if mcp is not None:
        return mcp
    return f"*({safe_inline(item.type)})*"


def item_markdown(item: Item, *, breaks: bool = True) -> str:
    """One item as a transcript section: a bold speaker line, then its text; a call or an
    output as its heading and code block. ``breaks``: a line typed on its own stays one
    (as in the panel's bubbles)."""
    if item.type != "message":
        return item_body(item)
    body = item_body(item) or "*(no text)*"
    if breaks:
        body = hard_breaks(body)
    return f"**{safe_inline(role_label(item.role))}:**\n\n{body}"


def response_markdown(items: Iterable[Item]) -> str:
    """A response's output items, as a cell shows the answer: message text without a
    speaker line (empty messages left out), calls with their heading."""
    parts = [item_body(item) for item in items if item.type != "message" or item.text]
    return "\n\n".join(part for part in parts if part)


def transcript_markdown(items: Sequence[Item], errors: Sequence[str] = ()) -> str:
    """A conversation as Markdown: one section per item, then the errors."""
    sections = [item_markdown(item) for item in items]
    sections += [f"**Error:** {safe_markdown(message)}" for message in errors]
    if not sections:
        return "*(empty conversation)*\n"
    return SECTION_BREAK.join(sections) + "\n"


def item_summary(item: Item, limit: int = 80) -> str:
    """One line of plain text about an item (a table cell, a label): a message's text,
    ``name(arguments) call_id`` for a call, ``→ output`` for its output; cut to ``limit``.
    Not yet safe: pass it through ``safe_inline`` where it becomes Markdown."""
    if item.type == "function_call":
        text = f"{item.name}({item.arguments}) {item.call_id}"
    elif item.type == "function_call_output":
        text = f"→ {item.output}"
    elif item.type == "mcp_call":
        result = getattr(item, "error", None) or item.output or ""
        text = f"{_server(item)}.{item.name}({item.arguments}) → {result}"
    elif item.type == "mcp_list_tools":
        names = ", ".join(tool.get("name", "?") for tool in getattr(item, "tools", ()))
        text = f"MCP tools of {_server(item)}: {names or getattr(item, 'error', None) or '…'}"
    elif item.type == "mcp_approval_request":
        text = f"approve {_server(item)}.{item.name}({item.arguments})?"
    elif item.type == "mcp_approval_response":
        text = f"MCP approval {item.output}"
    else:
        text = item.text or ""
    text = " ".join(text.split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    # Images after the (cut) text, never cut themselves: the row must say they are there.
    return " ".join([text, *(f"[{label}]" for label in image_labels(item))]).strip()


def hard_breaks(markdown: str) -> str:
    """End each line that a next line follows with a hard break, outside code blocks.

    Chat bubbles show a line typed with Shift+Enter as a line; Markdown would join it to
    the next one. Breaks at the end of a paragraph are ignored by Markdown, so only the
    lines inside paragraphs change.
    """
    if "\n" not in markdown:
        return markdown
    lines = markdown.split("\n")
    code = [False] * len(lines)
    for token in _parser().parse(markdown):
        if token.type in ("fence", "code_block") and token.map is not None:
            for index in range(token.map[0], min(token.map[1], len(lines))):
                code[index] = True
    for index, line in enumerate(lines[:-1]):
        if (
            line.strip()
            and lines[index + 1].strip()
            and not code[index]
            and not line.endswith("  ")
        ):
            lines[index] = line + "  "
    return "\n".join(lines)


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt  # on first use: most texts are one line

    return MarkdownIt("commonmark")
