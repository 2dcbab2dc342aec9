"""Pure bubble rendering: conversation items in, HTML that cannot run code out.

The chat panel shows each item in an ``ipywidgets.HTML`` widget, and that widget sets
``innerHTML`` without sanitizing anything. So every byte of its HTML is produced here, with
these rules:

* Model text is rendered by markdown-it-py with raw HTML *disabled*: tags in the text come
  out as escaped text, never as elements, and code keeps its characters. Here the same
  parser reads the Markdown and writes the HTML, so (unlike text/markdown cell output,
  which :func:`~rt_notebook.render.markdown.safe_markdown` prepares for another parser)
  nothing depends on two parsers agreeing.
* Links keep only targets markdown-it's ``validateLink`` accepts (no ``javascript:``,
  ``vbscript:``, ``file:``, ``data:``) and open in a new tab without an opener.
* Images are disabled: a remote image would be fetched as soon as it is shown, which is a
  channel a prompt-injected answer could use to leak the conversation.
* Every attribute value and every non-Markdown text (names, arguments, outputs, errors) is
  escaped with :func:`html.escape`.
"""

from __future__ import annotations

import html
import json
from functools import lru_cache
from typing import TYPE_CHECKING

from markdown_it import MarkdownIt
from markdown_it.token import Token

if TYPE_CHECKING:
    from markdown_it.renderer import RendererHTML
    from markdown_it.utils import EnvType, OptionsDict

    from ..responses import ItemSnapshot

__all__ = ["error_html", "is_streaming", "item_html", "markdown_html", "pretty_json"]

ROLE_LABELS = {"user": "You", "assistant": "Assistant", "system": "System"}
# Response statuses worth showing on a bubble (completed is the quiet default).
_NOTABLE = frozenset({"cancelled", "failed", "incomplete"})


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # breaks: a line typed with Shift+Enter is a line in the bubble, as in other chat UIs.
    parser = MarkdownIt("commonmark", {"html": False, "breaks": True})
    parser.enable(["table", "strikethrough"])
    parser.disable("image")
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


def markdown_html(text: str) -> str:
    """Model text (Markdown) as safe HTML."""
    return str(_parser().render(text))


def pretty_json(text: str) -> str:
    """``text`` indented if it is JSON, else as it is (arguments may still be streaming)."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def _bubble(kind: str, label: str, body: str, attrs: dict[str, str]) -> str:
    data = "".join(f' data-{key}="{html.escape(value)}"' for key, value in attrs.items())
    return (
        f'<div class="rt-chat-bubble rt-chat-{kind}"{data}>'
        f'<div class="rt-chat-meta">{label}</div>'
        f'<div class="rt-chat-body">{body}</div></div>'
    )


def _preformatted(text: str) -> str:
    return f"<pre><code>{html.escape(text)}</code></pre>"


def is_streaming(item: ItemSnapshot, response_status: str | None) -> bool:
    """Whether an item is still growing (its final state is shown without pacing)."""
    if item.response_id is None:
        return False  # client-created items are complete when they arrive
    return (item.status or "in_progress") == "in_progress" and response_status in (
        None,
        "in_progress",
    )


def item_html(item: ItemSnapshot, response_status: str | None = None) -> str:
    """One conversation item as a bubble; ``response_status`` is its response's status."""
    status = item.status or "in_progress"
    streaming = is_streaming(item, response_status)
    attrs = {
        "item-id": item.id,
        "type": item.type,
        "role": item.role or "",
        "status": "in_progress" if streaming else status,
        "response-status": response_status or "",
    }
    suffix = ""
    if streaming:
        suffix = ' <span class="rt-chat-streaming">streaming…</span>'
    elif response_status in _NOTABLE:
        suffix = f' <span class="rt-chat-flag">{html.escape(response_status or "")}</span>'
    if item.type == "function_call":
        label = f"Function call <code>{html.escape(item.name or '?')}</code>{suffix}"
        return _bubble(
            "function-call", label, _preformatted(pretty_json(item.arguments or "")), attrs
        )
    if item.type == "function_call_output":
        label = f"Function output <code>{html.escape(item.call_id or '')}</code>"
        return _bubble(
            "function-output", label, _preformatted(pretty_json(item.output or "")), attrs
        )
    role = item.role or "assistant"
    label = html.escape(ROLE_LABELS.get(role, role)) + suffix
    return _bubble(role, label, markdown_html(item.text), attrs)


def error_html(message: str) -> str:
    """An error bubble (server ``error`` events and failures of the panel's own requests)."""
    body = f"<p>{html.escape(message)}</p>"
    return _bubble("error", "Error", body, {"type": "error", "role": "", "status": "error"})
