"""Pure bubble rendering: conversation items in, HTML that cannot run code out.

The chat panel shows each item in an ``ipywidgets.HTML`` widget, and that widget sets
``innerHTML`` without sanitizing anything. So every byte of its HTML is produced here:

* Model text goes through :func:`~rt_notebook.render.markdown.markdown_html`, the HTML
  side of the one Markdown policy (no raw HTML, images shown as links, no script links).
* Every other value is either chosen from a fixed set (the bubble's ``class``: a known
  role or item kind, else ``other``) or escaped with :func:`html.escape` (attribute
  values, names, call ids, statuses, arguments, outputs, errors), after
  :func:`~rt_notebook.redaction.scrub` removed any credential.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING

from ..redaction import scrub
from ..render.markdown import markdown_html

if TYPE_CHECKING:
    from ..responses import ItemSnapshot

__all__ = [
    "error_html",
    "is_streaming",
    "item_html",
    "markdown_html",
    "outgoing_html",
    "pretty_json",
]

ROLE_LABELS = {"user": "You", "assistant": "Assistant", "system": "System"}
# Response statuses worth showing on a bubble (completed is the quiet default).
_NOTABLE = frozenset({"cancelled", "failed", "incomplete"})
# The only bubble kinds a class attribute may name (rt-chat-KIND), styled in chat.css.
_KINDS = frozenset({*ROLE_LABELS, "function-call", "function-output", "error", "other"})


def pretty_json(text: str) -> str:
    """``text`` indented if it is JSON, else as it is (arguments may still be streaming)."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def _bubble(kind: str, label: str, body: str, attrs: dict[str, str]) -> str:
    kind = kind if kind in _KINDS else "other"
    data = "".join(f' data-{key}="{_escape(value)}"' for key, value in attrs.items())
    return (
        f'<div class="rt-chat-bubble rt-chat-{kind}"{data}>'
        f'<div class="rt-chat-meta">{label}</div>'
        f'<div class="rt-chat-body">{body}</div></div>'
    )


def _escape(text: str) -> str:
    return html.escape(scrub(text))


def _preformatted(text: str) -> str:
    return f"<pre><code>{_escape(text)}</code></pre>"


def is_streaming(item: ItemSnapshot, response_status: str | None) -> bool:
    """Whether an item is still growing (its final state is shown without pacing)."""
    if item.response_id is None:
        return False  # client-created items are complete when they arrive
    return (item.status or "in_progress") == "in_progress" and response_status in (
        None,
        "in_progress",
    )


def item_html(
    item: ItemSnapshot, response_status: str | None = None, reason: str | None = None
) -> str:
    """One conversation item as a bubble; ``response_status`` is its response's status and
    ``reason`` why that response failed or stopped short (shown with the status)."""
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
        flag = f"{response_status} ({reason})" if reason else str(response_status)
        suffix = f' <span class="rt-chat-flag">{_escape(flag)}</span>'
    if item.type == "function_call":
        label = f"Function call <code>{_escape(item.name or '?')}</code>{suffix}"
        return _bubble(
            "function-call", label, _preformatted(pretty_json(item.arguments or "")), attrs
        )
    if item.type == "function_call_output":
        label = f"Function output <code>{_escape(item.call_id or '')}</code>"
        return _bubble(
            "function-output", label, _preformatted(pretty_json(item.output or "")), attrs
        )
    role = item.role or "assistant"
    label = _escape(ROLE_LABELS.get(role, role)) + suffix
    return _bubble(role, label, markdown_html(item.text), attrs)


# What a message the panel sent, not yet in the conversation, says about itself.
_OUTGOING_LABELS = {
    "queued": "queued",  # waiting for its turn (another answer is running)
    "stopped": "not sent: stopped",  # Stop cancelled its turn before it was sent
    "failed": "not sent: error",  # its turn failed before the server had it
}


def outgoing_html(item_id: str, text: str, state: str) -> str:
    """A user message the panel sent that the server has not acknowledged (yet)."""
    state = state if state in _OUTGOING_LABELS else "queued"
    label = f'You <span class="rt-chat-flag">{_OUTGOING_LABELS[state]}</span>'
    attrs = {"item-id": item_id, "type": "message", "role": "user", "status": state}
    return _bubble("user", label, markdown_html(text), attrs)


def error_html(message: str) -> str:
    """An error bubble (server ``error`` events and failures of the panel's own requests)."""
    body = f"<p>{_escape(message)}</p>"
    return _bubble("error", "Error", body, {"type": "error", "role": "", "status": "error"})
