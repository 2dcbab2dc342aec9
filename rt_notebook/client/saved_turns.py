"""Client layer, pure format: a turn's items as a saved answer keeps them, for
``%realtime resume``.

The final output of every ``%%realtime`` answer carries, in its ``rt_notebook`` metadata,
``turn``: the items that answer added to the conversation, as the conversation held them
(the message as sent, after ``{var}`` interpolation; the model's messages, audio as its
transcript; function calls and their outputs). A cell with a tool round writes several
answers: each one keeps the items new since the cell's previous answer, so reading a
notebook's outputs in order gives every item once.

Texts are kept escaped (:func:`saved_text`: no tag or URL scheme of model text travels in
an output, even in metadata). Secrets are scrubbed (``redaction.scrub``) and the record is
bounded (:data:`MAX_TURN_CHARS` of text in all); past the bound a text is cut with a marker and the
record says so in ``note``. Text the notebook holds already is not kept twice: an assistant
message whose text is exactly the output's ``text/plain`` (the usual answer) is marked
``"text_in": "text/plain"`` (or ``"text/markdown"`` with its ``length``, when a page
drew the stream and ``text/plain`` only names the answer), and a message that is exactly
the cell below its magic line ``"text_in": "source"``. Images are kept as their label,
hash and the ``--image`` source that made them, never as bytes: the notebook already
holds what the cell shows, and a resume encodes the source again (or says which did not
resolve).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..redaction import scrub

if TYPE_CHECKING:
    from .responses import ItemSnapshot, ResponseResult
    from .session import Session

__all__ = [
    "MAX_TURN_CHARS",
    "TURN_VERSION",
    "Recorder",
    "TurnRecorder",
    "bounded_record",
    "item_record",
    "saved_text",
    "shared_text",
]

TURN_VERSION = 1
# Text kept per answer's record: a long answer stays whole in the output's Markdown; the
# record is for rebuilding the conversation, and a notebook should not carry it twice.
MAX_TURN_CHARS = 64_000
_TEXT_FIELDS = ("text", "arguments", "output")


def saved_text(text: str) -> str:
    """``text`` as the record keeps it: no ``<``, ``>`` or ``:`` (so no tag and no URL
    scheme of model text ever travels in an output, even in its metadata), reversed by
    ``html.unescape``."""
    return html.escape(text, quote=False).replace(":", "&#58;")


def item_record(item: ItemSnapshot, sources: Sequence[str] = ()) -> dict[str, Any] | None:
    """One item as the record keeps it (``None``: a kind a client cannot re-create).

    ``sources``: how the user named the message's images (``--image`` values, ``--figure``),
    in order."""
    record: dict[str, Any] = {"id": item.id, "type": item.type}
    if item.type == "message":
        record["role"] = item.role or "user"
        record["text"] = item.text
        if item.images:
            record["images"] = [
                {
                    "label": image.label,
                    "sha256": image.sha256,
                    "detail": image.detail,
                    "source": sources[index] if index < len(sources) else None,
                }
                for index, image in enumerate(item.images)
            ]
    elif item.type == "function_call":
        record.update(call_id=item.call_id, name=item.name, arguments=item.arguments or "{}")
    elif item.type == "function_call_output":
        record.update(call_id=item.call_id, output=item.output or "")
    else:
        return None
    return record


def bounded_record(items: Iterable[dict[str, Any]], limit: int = MAX_TURN_CHARS) -> dict[str, Any]:
    """The saved ``turn``: ``items`` scrubbed, their texts cut past ``limit`` characters
    in all (each cut says how much is missing; ``note`` says the record is partial)."""
    left = limit
    cut = 0
    kept = []
    for original in items:
        item = dict(original)
        for name in _TEXT_FIELDS:
            value = item.get(name)
            if not isinstance(value, str):
                continue
            value = scrub(value)
            if len(value) > left:
                missing = len(value) - left
                cut += missing
                value = value[:left] + f"\n[… {missing:,} characters not saved]"
            left = max(0, left - len(value))
            item[name] = saved_text(value)
        kept.append(item)
    record: dict[str, Any] = {"version": TURN_VERSION, "escaped": "html", "items": kept}
    if cut:
        record["note"] = (
            f"this answer's items passed {limit:,} characters: {cut:,} were not saved, "
            "so a resume restores them cut"
        )
    return record


def shared_text(
    record: dict[str, Any], shown: str | None, mime: str = "text/plain"
) -> dict[str, Any]:
    """``record`` with the text of an assistant message that the output shows already left
    out: ``shown`` is exactly the output's ``text/plain``, or (``mime="text/markdown"``) the
    start of its ``text/markdown`` before the footer, whose length the record keeps. A
    notebook keeps an answer's text once."""
    if not shown:
        return record
    for item in record["items"]:
        if item.get("role") == "assistant" and item.get("text") == saved_text(shown):
            del item["text"]
            item["text_in"] = mime
            if mime == "text/markdown":
                item["length"] = len(shown)
            break
    return record


class TurnRecorder:
    """What each answer of one cell run saves: the items new since its previous answer.

    ``added`` is the list the magic extends with the ids the cell's run adds (its message,
    answers, tool outputs); ``sources`` names the message's images. Inputs (user and
    system messages, function outputs) are read from the Session; outputs from the result,
    so an answer placed in the middle of the conversation (copied there under new ids)
    is kept once.
    """

    def __init__(
        self,
        session: Session,
        added: list[str],
        sources: Sequence[str] = (),
        body: str | None = None,
    ) -> None:
        self._session = session
        self._added = added
        self._sources = tuple(sources)
        self._body = body  # the cell below its magic line: a message equal to it is not kept
        self._saved: set[str] = set()

    def __call__(self, result: ResponseResult) -> dict[str, Any] | None:
        """The record for ``result``'s final output (``None``: nothing entered the
        conversation, as with ``--oob``)."""
        inputs = []
        for item_id in list(self._added):
            if item_id in self._saved:
                continue
            self._saved.add(item_id)
            item = self._session.item(item_id)
            if item is not None and _is_input(item):
                inputs.append(item)
        if not inputs and result.out_of_band and not self._saved:
            return None  # --oob: the conversation holds none of it
        records = []
        for item in [*inputs, *result.items]:
            self._saved.add(item.id)
            sources = self._sources if item.role == "user" and item in inputs else ()
            record = item_record(item, sources)
            if record is not None:
                records.append(record)
        turn = bounded_record(records)
        for record in turn["items"]:
            body = saved_text(self._body) if self._body else None
            if record.get("role") == "user" and body and record.get("text") == body:
                del record["text"]  # the cell's source holds it (no {var} in it)
                record["text_in"] = "source"
        return turn


def _is_input(item: ItemSnapshot) -> bool:
    return item.type == "function_call_output" or (
        item.type == "message" and item.role != "assistant"
    )


Recorder = Callable[["ResponseResult"], "dict[str, Any] | None"]
