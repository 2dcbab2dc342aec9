"""Rendering, pure append-only streaming: what the page holds of an answer, and what to send
next.

The page shows a streamed answer as sealed Markdown blocks (each rendered once, never
touched again), a Markdown tail (re-rendered by the page from the text it holds) and,
past :data:`MARKDOWN_LIMIT`, plain text. :class:`StreamEdits` keeps a mirror of what the
page holds and turns the answer's raw text, as it grows, into :class:`Edit` messages that
carry only what is new:

- ``k`` / ``a``: keep the first ``k`` characters of the tail (absent: all of it), then
  append ``a``. Sanitizing is not always prefix-stable (an open code fence is closed by the
  sanitizer, and its closing run moves as code arrives), so an edit may take back a few
  characters; ordinary text only ever appends;
- ``b``: then a new sealed block; an ``int`` (the first that many characters of the
  page's tail become the block: nearly always, since sanitized Markdown of ordinary text
  is the text itself) or a ``str`` (the block's Markdown, when sanitizing it alone spells
  it differently than the tail did; the tail edit then already left the rest);
- ``pk`` / ``p``: the same for the plain-text part past the limit;
- ``r``: a snapshot (:meth:`StreamEdits.snapshot`): the page forgets what it holds first.

An edit that is only ``a`` travels as the bare string (most messages while text streams).

Every Markdown piece is :func:`~rt_notebook.render.markdown.safe_markdown` of one block or
of the tail (the sanitizer's rule: pieces sanitized apart and shown apart are as safe as
the whole); plain text has credentials removed
(:func:`~rt_notebook.redaction.scrub`) and is shown as text, never parsed.

Bounded rendering: once the Markdown shown (sealed blocks and tail) would pass
:data:`MARKDOWN_LIMIT` characters, the rest of the answer (from the end of the last
sealed block) is sent as plain text, which the page folds behind a "show all" control of
its own. The final output is the exact answer either way (see the cell view).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict

from ..redaction import scrub
from .blocks import BlockScanner
from .markdown import safe_markdown

__all__ = [
    "MARKDOWN_LIMIT",
    "Edit",
    "PageMirror",
    "StreamEdits",
    "apply_edit",
    "common_prefix",
]

# Characters of Markdown a streamed answer is rendered as, at most; the rest is plain text.
# ~100 KB: JupyterLab renders that much in well under a second even when it is dense in
# code and links, whereas a megabyte of it blocks the page for minutes.
MARKDOWN_LIMIT = 100_000


class Edit(TypedDict, total=False):
    """One message to the page (short keys: they travel with every message)."""

    b: list[int | str]  # new sealed blocks: a prefix length of the tail, or Markdown
    k: int  # keep this much of the tail (absent: all)
    a: str  # then append this to the tail
    pk: int  # keep this much of the plain part (absent: all)
    p: str  # then append this to the plain part
    r: int  # 1: a snapshot: forget everything first (for a page that missed edits)


def common_prefix(a: str, b: str) -> int:
    """The length of the longest common prefix of ``a`` and ``b`` (slice compares, fast)."""
    if b.startswith(a):
        return len(a)
    low, high = 0, min(len(a), len(b))
    while low < high:  # invariant: a[:low] == b[:low], and a[:high + 1] != b[:high + 1]
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


class StreamEdits:
    """Mirrors what the page holds of one answer; :meth:`update` says what to send."""

    def __init__(
        self,
        render: Callable[[str], str] = safe_markdown,
        *,
        limit: int = MARKDOWN_LIMIT,
    ) -> None:
        self._render = render  # raw piece -> the Markdown the page may render
        self.limit = limit
        self._scanner = BlockScanner()
        self.sealed = 0  # raw[:sealed] is in the page's sealed blocks
        self.cut: int | None = None  # raw[cut:] goes as plain text (bounded rendering)
        self.blocks = 0  # sealed blocks the page holds
        self.sealed_blocks: list[str] = []  # their Markdown (for a snapshot)
        self.rendered = 0  # characters of Markdown in those blocks
        self.tail = ""  # the Markdown tail the page holds
        self.plain = ""  # the plain text the page holds

    def update(self, raw: str) -> Edit | None:
        """The edit that brings the page to ``raw`` (the whole raw text so far), or None."""
        edit = Edit()
        if self.cut is None:
            boundary = self._scanner.feed(raw)
            if boundary > self.sealed:
                self._seal(edit, raw, boundary)
            # One block (a long code block) too big to render: plain from its start. (Not
            # in the edit that seals: its tail edit is already spent on the seal.)
            too_big = len(raw) - self.sealed > self.limit - self.rendered
            if self.cut is None and "b" not in edit and too_big:
                self.cut = self.sealed
        if self.cut is None:
            if "b" not in edit:
                self._edit_tail(edit, self._render(raw[self.sealed :]))
        else:
            self._edit_tail(edit, "")
            self._edit_plain(edit, scrub(raw[self.cut :]))
        return edit or None

    def _seal(self, edit: Edit, raw: str, boundary: int) -> None:
        """Seal ``raw[sealed:boundary]`` as one block (or cut there, past the limit)."""
        block = self._render(raw[self.sealed : boundary])
        if self.rendered + len(block) > self.limit:
            self.cut = self.sealed  # this block and everything after it: plain text
            return
        rest = self._render(raw[boundary:])
        whole = self._render(raw[self.sealed :])
        if whole == block + rest:
            # Nearly always: the page's tail grows to the whole, then the block is cut
            # off its front (the page applies the tail edit before the seals).
            self._edit_tail(edit, whole)
            edit["b"] = [len(block)]
            self.tail = rest
        else:
            self._edit_tail(edit, rest)
            edit["b"] = [block]  # the block as Markdown; the page's tail is left alone
        self.sealed = boundary
        self.blocks += 1
        self.rendered += len(block)
        self.sealed_blocks.append(block)

    def snapshot(self) -> Edit:
        """Everything the page should hold, as one edit that resets it (a page that joined
        late: a reloaded page restores the widget but not the messages it missed)."""
        edit = Edit(r=1)
        if self.sealed_blocks:
            edit["b"] = list(self.sealed_blocks)
        if self.tail:
            edit["a"] = self.tail
        if self.plain:
            edit["p"] = self.plain
        return edit

    def _edit_tail(self, edit: Edit, tail: str) -> None:
        keep = common_prefix(self.tail, tail)
        if keep < len(self.tail):
            edit["k"] = keep
        if len(tail) > keep:
            edit["a"] = tail[keep:]
        self.tail = tail

    def _edit_plain(self, edit: Edit, plain: str) -> None:
        keep = common_prefix(self.plain, plain)
        if keep < len(self.plain):
            edit["pk"] = keep
        if len(plain) > keep:
            edit["p"] = plain[keep:]
        self.plain = plain


class PageMirror:
    """What a page that applies edits holds (the page's own rule, for tests)."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.tail = ""
        self.plain = ""


def apply_edit(page: PageMirror, edit: Edit | str) -> None:
    """Apply ``edit`` as the page's ES module does (``stream.js``: ``applyEdit``; a bare
    string is an edit that only appends it)."""
    if isinstance(edit, str):
        edit = Edit(a=edit)
    if edit.get("r"):
        page.blocks, page.tail, page.plain = [], "", ""
    page.tail = page.tail[: edit.get("k", len(page.tail))] + edit.get("a", "")
    for block in edit.get("b", []):
        if isinstance(block, int):
            page.blocks.append(page.tail[:block])
            page.tail = page.tail[block:]
        else:
            page.blocks.append(block)
    page.plain = page.plain[: edit.get("pk", len(page.plain))] + edit.get("p", "")
