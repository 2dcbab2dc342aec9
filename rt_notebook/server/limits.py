"""Sans-I/O memory caps of one connection of the embedded server.

The service bounds a session by its context window and its 60-minute lifetime and
documents no byte limits beyond 15 MiB per ``input_audio_buffer.append``; the embedded
server runs in the user's kernel, so it caps what one connection may make it hold, and
answers an event that would pass a cap with an ``error`` (the event is not applied, the
connection goes on):

- :data:`MAX_CONVERSATION_CHARS`: the characters the conversation's items hold (text,
  transcripts, function arguments and outputs, base64 audio and images), 64 Mi: several hundred
  times a 32,768-token context of text, or about 8 minutes of committed PCM16 24 kHz
  audio. ``conversation.item.delete`` frees room.
- :data:`MAX_INPUT_AUDIO_BYTES`: the input audio buffer, 32 MiB of PCM: about 11 minutes
  of PCM16 24 kHz mono between two commits (server voice detection commits each turn, and
  drops the silence before speech, long before that).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_CONVERSATION_CHARS", "MAX_INPUT_AUDIO_BYTES", "item_chars"]

MAX_CONVERSATION_CHARS = 64 * 1024 * 1024
MAX_INPUT_AUDIO_BYTES = 32 * 1024 * 1024

_ITEM_TEXTS = ("arguments", "output", "name")
_PART_TEXTS = ("text", "transcript", "audio", "image_url")


def item_chars(item: Mapping[str, Any]) -> int:
    """The characters one item holds (the strings that can be large)."""
    chars = sum(len(value) for key in _ITEM_TEXTS if isinstance(value := item.get(key), str))
    for part in item.get("content") or ():
        if isinstance(part, Mapping):
            chars += sum(
                len(value) for key in _PART_TEXTS if isinstance(value := part.get(key), str)
            )
    return chars
