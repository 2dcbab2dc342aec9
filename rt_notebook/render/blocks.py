"""Rendering, pure: Markdown block boundaries in a growing text, each line scanned once.

A streamed answer is shown as finished blocks, each published once, followed by a growing
tail that is updated. A block is finished when the text continues after a blank line with
a line that starts in column 0 (so it cannot continue a list item or an indented code
block) outside a fenced code block: Markdown reads everything before that point the same
way whatever follows. Cutting there can only change how loose a list looks, never what is
code and what is text. Fences are tracked as CommonMark defines them (up to three spaces
of indentation, a closing run at least as long as the opening one).
"""

from __future__ import annotations

import re

__all__ = ["BlockScanner"]

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


class BlockScanner:
    """Finds the end of the finished blocks of a text that only grows."""

    def __init__(self) -> None:
        self.boundary = 0  # text[:boundary] is made of finished blocks
        self._position = 0  # start of the first line not scanned yet
        self._fence: str | None = None  # the opening run of the fence we are in
        self._opener = ""  # that fence's opening line up to the end of the run
        self._after_blank = False  # the last scanned line was blank

    def feed(self, text: str) -> int:
        """Scan what ``text`` (the whole text so far) added; return :attr:`boundary`."""
        position = self._position
        while True:
            end = text.find("\n", position)
            if end < 0:
                break
            self._line(text, position, end)
            position = end + 1
        self._position = position
        # The unfinished last line already tells whether a new block starts there.
        if position < len(text) and self._starts_block(text[position]):
            self.boundary = position
        return self.boundary

    @property
    def open_fence(self) -> str | None:
        """The opening of the fenced code block the scanned lines end in (its indentation
        and run: what closes it), or ``None``."""
        return self._opener if self._fence is not None else None

    def _starts_block(self, first: str) -> bool:
        return self._fence is None and self._after_blank and first not in " \t"

    def _line(self, text: str, start: int, end: int) -> None:
        line = text[start:end]
        if self._fence is not None:
            stripped = line.strip()
            fence = self._fence
            indent = len(line) - len(line.lstrip(" "))
            if indent <= 3 and stripped.startswith(fence) and stripped == fence[0] * len(stripped):
                self._fence = None
            self._after_blank = False
            return
        if not line.strip():
            self._after_blank = True
            return
        if self._starts_block(line[0]):
            self.boundary = start
        self._after_blank = False
        match = _FENCE.match(line)
        if match and not (match.group(1)[0] == "`" and "`" in line[match.end() :]):
            self._fence = match.group(1)
            self._opener = match.group(0)
