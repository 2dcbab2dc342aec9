"""Client layer: images from the notebook (files, Figures, PIL images, arrays, bytes) as
``input_image`` parts, encoded and scaled down before anything is sent.

Limits. The Realtime reference says only that ``input_image`` takes PNG or JPEG as a
base64 data URI with a ``detail`` of auto, low or high. The vision guide (images in user
messages, the same models' image input) says the service sees at most 512x512 at low
detail and 768 px on the short side by 2,000 on the long side at high detail, and takes
at most 20 MB per image. Sending more pixels than that only costs upload time, so images
are scaled down to fit :data:`MAX_LONG_SIDE` x :data:`MAX_SHORT_SIDE` (``low``:
:data:`LOW_DETAIL_SIDE` square). The bytes are capped at :data:`MAX_IMAGE_BYTES` (8 MiB,
about 11 MiB of base64): under the 15 MiB the service documents for one client event
(``input_audio_buffer.append``), its only documented frame budget.

Pillow is optional (``pip install 'rt-notebook[images]'``): PNG or JPEG bytes and files
already within the limits are sent as they are; everything else (Figures excepted, which
matplotlib encodes itself) needs it, and says so in one line.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ..protocol.images import DETAILS, ImagePart, data_uri, decoded_data_uri, sniff

__all__ = [
    "LOW_DETAIL_SIDE",
    "MAX_IMAGE_BYTES",
    "MAX_LONG_SIDE",
    "MAX_SHORT_SIDE",
    "image_part",
    "image_parts",
    "resolve_source",
]

MAX_LONG_SIDE = 2000
MAX_SHORT_SIDE = 768
LOW_DETAIL_SIDE = 512
MAX_IMAGE_BYTES = 8 * 1024 * 1024
# A file read whole before it is looked at: far above any picture worth sending.
MAX_FILE_BYTES = 256 * 1024 * 1024
JPEG_QUALITY = 85
_PILLOW_HINT = "pip install 'rt-notebook[images]'"
_OUT = re.compile(r"^(?:Out\[(\d+)\]|_(\d+))$")


def image_parts(
    sources: Sequence[Any], detail: str | None = None, namespace: Mapping[str, Any] | None = None
) -> list[ImagePart]:
    """Every source as an :class:`ImagePart` (see :func:`image_part`); the first that
    cannot be one raises :class:`ConfigurationError` before any is sent."""
    return [image_part(source, detail, namespace) for source in sources]


def image_part(
    source: Any,
    detail: str | None = None,
    namespace: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
) -> ImagePart:
    """``source`` encoded as PNG or JPEG, scaled down to the limits, as an image part.

    ``source``: a file path (``str`` or ``Path``) or a base64 data URI, a matplotlib
    ``Figure``, a PIL image, a numpy array (HxW, HxWx3 or HxWx4), PNG/JPEG bytes, an object
    with ``_repr_png_`` or ``_repr_jpeg_`` (``IPython.display.Image``), or an
    :class:`ImagePart`. With a
    ``namespace``, a string is first a variable name, ``Out[N]`` or ``_N``. ``name`` is
    how an error names the source (default ``--image SOURCE``).
    """
    if detail is not None and detail not in DETAILS:
        raise ConfigurationError(f"image detail must be auto, low or high, not {detail!r}")
    if isinstance(source, ImagePart):
        return source if detail is None else ImagePart.from_url(source.url, detail)
    described = _describe(source)
    if isinstance(source, str) and namespace is not None:
        source, described = resolve_source(source, namespace)
    name = name or f"--image {described}"
    data = _bytes_of(source, name)
    return _fit(data, name, detail)


def resolve_source(text: str, namespace: Mapping[str, Any]) -> tuple[Any, str]:
    """What a ``--image SOURCE`` names: ``Out[N]`` / ``_N`` (a cell's result), a variable,
    else a file path (a remote URL is refused); returns it and how to name it."""
    text = text.strip()
    match = _OUT.match(text)
    if match:
        number = int(match.group(1) or match.group(2))
        outputs = namespace.get("Out")
        if not isinstance(outputs, Mapping) or number not in outputs:
            raise ConfigurationError(f"--image {text}: cell {number} returned nothing")
        return outputs[number], text
    if text.isidentifier() and text in namespace:
        return namespace[text], text
    return text, text


def _describe(source: Any) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return type(source).__name__


def _bytes_of(source: Any, name: str) -> bytes | Any:
    """PNG/JPEG bytes, or a PIL image (from arrays and PIL sources)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, Path)):
        return _read_file(source)
    if _is_figure(source):
        buffer = io.BytesIO()
        source.savefig(buffer, format="png")
        return buffer.getvalue()
    if _is_pil(source):
        return source
    if hasattr(source, "__array_interface__") or type(source).__module__.startswith("numpy"):
        return _from_array(source, name)
    for method in ("_repr_png_", "_repr_jpeg_"):
        render = getattr(source, method, None)
        if callable(render):
            data = _repr_bytes(render())
            if data is not None:
                return data
    raise ConfigurationError(
        f"{name}: {type(source).__name__} is not an image (give a file, a Figure, "
        "a PIL image, an array, or PNG/JPEG bytes)"
    )


def _repr_bytes(data: Any) -> bytes | None:
    """What a ``_repr_png_`` / ``_repr_jpeg_`` returned, as bytes: raw bytes, or base64 text
    (IPython's ``display.Image`` returns that), either maybe paired with its metadata."""
    if isinstance(data, tuple) and data:
        data = data[0]
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if isinstance(data, str):
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return None
    return None


def _read_file(source: str | Path) -> bytes:
    text = str(source)
    if isinstance(source, str) and source.startswith("data:"):
        data = decoded_data_uri(source)
        if data is None:
            raise ConfigurationError("--image: a data URI must be base64 (data:image/png;base64,…)")
        return data
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text):
        raise ConfigurationError(
            f"--image {text}: remote URLs are not fetched; download the file and give its path"
        )
    path = Path(text).expanduser()
    try:
        if path.exists() and not path.is_file():
            # A directory, a FIFO, /dev/zero: nothing to read whole (or never ending).
            raise ConfigurationError(f"--image {text}: not a regular file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ConfigurationError(f"--image {text}: the file is too large to be an image")
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(
            f"--image {text}: no such file, and no variable of that name"
        ) from None
    except OSError as exc:
        raise ConfigurationError(f"--image {text}: cannot read it ({exc.strerror})") from None


def _is_figure(source: Any) -> bool:
    return type(source).__module__.startswith("matplotlib") and hasattr(source, "savefig")


def _is_pil(source: Any) -> bool:
    return any(cls.__module__.startswith("PIL.") for cls in type(source).__mro__)


def _pillow(why: str) -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise ConfigurationError(f"{why} needs Pillow: {_PILLOW_HINT}") from None
    return Image


def _from_array(array: Any, name: str) -> Any:
    import numpy as np

    values = np.asarray(array)
    shape_ok = values.ndim == 2 or (values.ndim == 3 and values.shape[2] in (3, 4))
    if not shape_ok or values.size == 0:
        raise ConfigurationError(
            f"{name}: an array of shape {values.shape} is not an image "
            "(H\u00d7W, H\u00d7W\u00d73 or H\u00d7W\u00d74)"
        )
    if values.dtype == bool:
        values = values.astype(np.uint8) * 255
    elif values.dtype.kind == "f":
        if not np.isfinite(values).all():
            raise ConfigurationError(f"{name}: the array holds NaN or infinite values")
        values = np.clip(values, 0.0, 1.0) * 255 if values.max() <= 1.0 else values
        values = np.clip(values, 0, 255).astype(np.uint8)
    elif values.dtype.kind in "iu":
        values = np.clip(values, 0, 255).astype(np.uint8)
    else:
        raise ConfigurationError(f"{name}: an array of {values.dtype} is not an image")
    image_module = _pillow(f"{name} (an array)")
    return image_module.fromarray(np.ascontiguousarray(values))


def _box(detail: str | None) -> tuple[int, int]:
    """The largest (long side, short side) sent at ``detail``."""
    if detail == "low":
        return LOW_DETAIL_SIDE, LOW_DETAIL_SIDE
    return MAX_LONG_SIDE, MAX_SHORT_SIDE


def _within(width: int, height: int, detail: str | None) -> bool:
    long_side, short_side = _box(detail)
    return max(width, height) <= long_side and min(width, height) <= short_side


def _fit(data: Any, name: str, detail: str | None) -> ImagePart:
    if isinstance(data, bytes):
        sniffed = sniff(data)
        if sniffed is not None:
            fmt, width, height = sniffed
            if _within(width, height, detail) and len(data) <= MAX_IMAGE_BYTES:
                _verify(data, name)
                return ImagePart.from_url(data_uri(data, fmt), detail)
            why = f"{name} ({width}\u00d7{height} {fmt}, to be scaled down)"
        else:
            why = f"{name} (not PNG or JPEG, to be converted)"
        image_module = _pillow(why)
        try:
            image = image_module.open(io.BytesIO(data))
            image.load()
        except image_module.DecompressionBombError:
            raise ConfigurationError(
                f"{name}: too many pixels to decode safely (Pillow's limit is "
                f"{image_module.MAX_IMAGE_PIXELS:,} per image, twice over)"
            ) from None
        except Exception:  # Pillow raises many kinds for a corrupt file
            raise ConfigurationError(
                f"{name}: not a readable image (corrupt, or a format Pillow cannot read)"
            ) from None
    else:
        image = data
    return _encode(image, name, detail)


def _verify(data: bytes, name: str) -> None:
    """Decode ``data`` when Pillow is there: a header that reads well can front a
    corrupt body, which the service would refuse after the message was sent."""
    try:
        from PIL import Image
    except ImportError:
        return
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception:
        raise ConfigurationError(f"{name}: not a readable image (corrupt)") from None


def _encode(image: Any, name: str, detail: str | None) -> ImagePart:
    """``image`` scaled into the box, as the smaller of PNG and JPEG."""
    from PIL import Image

    long_side, short_side = _box(detail)
    width, height = image.size
    scale = min(1.0, long_side / max(width, height), short_side / min(width, height))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    candidates = [("PNG", _save(image, "PNG", optimize=True))]
    opaque = image
    if "A" in image.getbands():
        alpha = image.getchannel("A")
        if alpha.getextrema() != (255, 255):
            # JPEG has no transparency: flatten on white, as a page shows it.
            background = Image.new("RGB", image.size, "white")
            background.paste(image.convert("RGB"), mask=alpha)
            opaque = background
        else:
            opaque = image.convert("RGB" if image.mode == "RGBA" else "L")
    candidates.append(("JPEG", _save(opaque, "JPEG", quality=JPEG_QUALITY)))
    fmt, data = min(candidates, key=lambda pair: len(pair[1]))
    if len(data) > MAX_IMAGE_BYTES:
        raise ConfigurationError(
            f"{name}: {len(data) / 2**20:.1f} MB even scaled down, over the "
            f"{MAX_IMAGE_BYTES // 2**20} MB limit"
        )
    return ImagePart.from_url(data_uri(data, fmt), detail)


def _save(image: Any, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()
