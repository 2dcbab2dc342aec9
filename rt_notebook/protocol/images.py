"""Sans-I/O image parts: ``input_image`` data URIs read without decoding the picture.

A user message's ``input_image`` part carries an image as a base64 ``data:`` URI. This
module reads what every view needs from one (the format, the width and height from the
PNG ``IHDR`` chunk or the JPEG ``SOF`` marker, the byte size, a hash) with the standard
library only, so the mirror, the renderer, the inspector and the embedded server can show
an image as a label ("image 640x480 PNG, 41 KB") and never print its base64 text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DETAILS",
    "ImagePart",
    "data_uri",
    "decoded_data_uri",
    "image_parts",
    "sniff",
    "without_image_data",
]

DETAILS = ("auto", "low", "high")
_MIME = {"PNG": "image/png", "JPEG": "image/jpeg"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless...), not DHT/JPG/DAC.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def sniff(data: bytes) -> tuple[str, int, int] | None:
    """``(format, width, height)`` of PNG or JPEG ``data`` ("PNG" or "JPEG"), read from
    its header; ``None`` when it is neither or its header is cut or corrupt."""
    if data.startswith(_PNG_SIGNATURE):
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        width, height = struct.unpack(">II", data[16:24])
        return ("PNG", width, height) if width and height else None
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[str, int, int] | None:
    index = 2
    while index + 4 <= len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            index += 2
            continue
        (length,) = struct.unpack(">H", data[index + 2 : index + 4])
        if length < 2:
            return None
        if marker in _SOF_MARKERS:
            if index + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[index + 5 : index + 9])
            return ("JPEG", width, height) if width and height else None
        index += 2 + length
    return None


def data_uri(data: bytes, fmt: str) -> str:
    """``data`` (PNG or JPEG bytes) as a base64 data URI."""
    return f"data:{_MIME[fmt]};base64,{base64.b64encode(data).decode('ascii')}"


@dataclass(frozen=True, slots=True)
class ImagePart:
    """One ``input_image`` part: its data URI and detail, described without its bytes.

    Its ``repr`` is its label: the base64 text never reaches a traceback or a table.
    """

    url: str = field(repr=False)
    detail: str | None = None
    format: str | None = None  # "PNG", "JPEG" or None (unreadable, or not a data URI)
    width: int = 0
    height: int = 0
    size: int = 0  # decoded bytes
    sha256: str = ""

    @classmethod
    def from_url(cls, url: str, detail: str | None = None) -> ImagePart:
        """Read a part's ``image_url`` (a remote URL or a broken URI: format ``None``)."""
        data = decoded_data_uri(url)
        if data is None:
            return cls(url, detail)
        sniffed = sniff(data)
        fmt, width, height = sniffed if sniffed is not None else (None, 0, 0)
        digest = hashlib.sha256(data).hexdigest()
        return cls(url, detail, fmt, width, height, len(data), digest)

    @property
    def label(self) -> str:
        """``image 640x480 PNG, 41 KB`` (``image (unreadable)`` when it is not one)."""
        if self.format is None:
            return "image (not a readable PNG or JPEG data URI)"
        return f"image {self.width}\u00d7{self.height} {self.format}, {_kilobytes(self.size)}"

    @property
    def short_label(self) -> str:
        """``image 640x480 PNG`` (what the offline echo says it got)."""
        if self.format is None:
            return "image (unreadable)"
        return f"image {self.width}\u00d7{self.height} {self.format}"

    def summary(self) -> dict[str, Any]:
        """The part as plain data without its bytes: format, size, hash, detail."""
        return {
            "type": "input_image",
            "label": self.label,
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "bytes": self.size,
            "sha256": self.sha256,
            "detail": self.detail,
        }

    def wire(self) -> dict[str, Any]:
        """The ``input_image`` content part as sent."""
        part: dict[str, Any] = {"type": "input_image", "image_url": self.url}
        if self.detail is not None:
            part["detail"] = self.detail
        return part

    def __repr__(self) -> str:
        return f"<ImagePart {self.label}>"


def _kilobytes(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{max(1, round(size / 1024))} KB"


def decoded_data_uri(url: str) -> bytes | None:
    """The bytes of a base64 ``data:`` URI; ``None`` for anything else."""
    if not url.startswith("data:"):
        return None
    header, comma, payload = url.partition(",")
    if not comma or not header.endswith(";base64"):
        return None
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


def image_parts(content: object) -> list[ImagePart]:
    """The ``input_image`` parts of an item's content, in order."""
    if not isinstance(content, list):
        return []
    parts = []
    for part in content:
        if isinstance(part, Mapping) and part.get("type") == "input_image":
            url = part.get("image_url")
            detail = part.get("detail")
            if isinstance(url, str):
                parts.append(ImagePart.from_url(url, detail if isinstance(detail, str) else None))
    return parts


def without_image_data(value: Any) -> Any:
    """A copy of event data with each ``input_image`` part's data URI replaced by its
    label and hash (for views that print events)."""
    if isinstance(value, Mapping):
        copy = {key: without_image_data(item) for key, item in value.items()}
        url = value.get("image_url")
        if value.get("type") == "input_image" and isinstance(url, str):
            part = ImagePart.from_url(url)
            copy["image_url"] = (
                f"<{part.label}, sha256 {part.sha256[:16]}>" if part.sha256 else part.label
            )
        return copy
    if isinstance(value, list):
        return [without_image_data(item) for item in value]
    return value
