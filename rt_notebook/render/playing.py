"""Views layer, barge-in: the spoken answers of each Session that may be playing now.

Every view that plays an answer registers its player here: a ``%%realtime --modalities
audio`` cell's (blocking or ``--background``), the voice control's and the chat panel's.
When the user talks over them (a microphone press, or speech the server detects
hands-free) or presses the panel's Stop, :func:`interrupt` stops each one of that Session:
the browser stops it and reports the samples heard, and the view that owns the player
truncates its answer there (``conversation.item.truncate``), so the model remembers what
the user heard. An answer no browser plays is cancelled instead.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..client.responses import ResponseHandle
    from ..client.session import Session
    from ..widgets.player import AudioPlayer

__all__ = ["interrupt", "playing", "register"]

# A player in one of these states plays nothing any more.
FINISHED = ("ended", "stopped", "dropped")
# Kept per Session at most (answers no browser ever reported on are dropped oldest first).
LIMIT = 32


@dataclass(eq=False)
class _Entry:
    handle: ResponseHandle
    player: AudioPlayer

    @property
    def live(self) -> bool:
        if self.player.status in FINISHED:
            return False
        return self.player.browser_ready or not self.handle.done()


_lock = threading.Lock()
_entries: weakref.WeakKeyDictionary[Session, list[_Entry]] = weakref.WeakKeyDictionary()


def register(session: Session, handle: ResponseHandle, player: AudioPlayer) -> None:
    """``player`` plays ``handle``'s answer in ``session`` (until it ends or is stopped)."""
    entry = _Entry(handle, player)
    with _lock:
        entries = [e for e in _entries.get(session, []) if e.live]
        _entries[session] = [*entries, entry][-LIMIT:]


def playing(session: Session) -> list[AudioPlayer]:
    """The players of ``session``'s answers that may still be playing, oldest first."""
    with _lock:
        return [entry.player for entry in _entries.get(session, []) if entry.live]


def interrupt(session: Session) -> int:
    """Stop every answer of ``session`` that plays (each is then truncated where it was
    heard, by its view); return how many were stopped or cancelled."""
    with _lock:
        entries = [entry for entry in _entries.get(session, []) if entry.live]
    for entry in entries:
        if entry.player.browser_ready:
            entry.player.stop()  # the browser says what was heard; its view truncates
        elif not entry.handle.done():
            entry.handle.cancel()  # nothing plays it: just stop the answer
    return len(entries)
