"""Widget messages: the images a page pasted or dropped into the chat panel's composer.

The composer (``composer.js``) sends a submit's images as binary comm buffers, one per
image, with ``images: [{token, type}]`` in the message's JSON (same order): the bytes never
travel as base64 text and never enter widget state, so a saved notebook holds none of them.
``token`` is the page's name for its own copy of the bytes (its thumbnails are drawn from
that copy); the kernel only hands it back. This module checks what arrived: a bounded
number of images, each bounded in size, with a well-formed token.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..client.images import MAX_FILE_BYTES

__all__ = ["MAX_PASTED", "PastedImage", "pasted_images"]

# More than anyone pastes into one message; the rest of a flood is dropped.
MAX_PASTED = 16
_TOKEN = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True, slots=True)
class PastedImage:
    """One pasted or dropped image: its bytes as the page read them (any format the
    browser called ``image/*``; the kernel encodes it like ``--image``), the page's token
    for its thumbnail (``""`` when malformed) and how errors name it."""

    data: bytes = field(repr=False)
    token: str
    name: str

    def __repr__(self) -> str:
        return f"<PastedImage {self.name}, {len(self.data)} bytes>"


def pasted_images(described: Any, buffers: Sequence[Any] | None) -> list[PastedImage]:
    """The images of one submit message: ``described`` (its ``images`` list) paired with
    the message's ``buffers``; malformed descriptions and oversized buffers are skipped."""
    if not isinstance(described, list) or not buffers:
        return []
    images = []
    for index, (about, buffer) in enumerate(zip(described, buffers, strict=False)):
        if index >= MAX_PASTED:
            break
        data = bytes(buffer)
        if not data or len(data) > MAX_FILE_BYTES:
            continue
        token = about.get("token") if isinstance(about, dict) else None
        token = token if isinstance(token, str) and _TOKEN.match(token) else ""
        images.append(PastedImage(data, token, f"pasted image {index + 1}"))
    return images
