"""Widget assets: an ES module's source with the shared helpers in front of it.

anywidget loads each widget's ``_esm`` as one module, so a helper two widgets share
(``icons.js``) cannot be imported by them; it is put in front of each module's source.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["with_icons", "with_thumbs"]

_HERE = Path(__file__).parent


def with_icons(name: str) -> str:
    """The source of ``name`` (a module in this folder) after ``icons.js``."""
    shared = (_HERE / "icons.js").read_text(encoding="utf-8")
    return f"{shared}\n{(_HERE / name).read_text(encoding='utf-8')}"


def with_thumbs(name: str) -> str:
    """The source of ``name`` after ``thumbs.js`` (pasted images and their thumbnails)."""
    shared = (_HERE / "thumbs.js").read_text(encoding="utf-8")
    return f"{shared}\n{(_HERE / name).read_text(encoding='utf-8')}"
