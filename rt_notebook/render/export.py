"""Rendering, pure transcript export: item snapshots in, Markdown, plain data or notebook
cells out.

Widget state does not survive a reload in every frontend, so the chat panel can write
what it shows as ordinary Markdown, JSON, or ``%%realtime`` cells whose outputs hold the
answers (re-running them replays the conversation in a new Session). Items become Markdown
through :mod:`rt_notebook.render.items`, the renderer every view shares.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from ..redaction import scrub, scrub_data
from .items import (
    hard_breaks,
    image_labels,
    item_markdown,
    response_markdown,
    transcript_markdown,
)

if TYPE_CHECKING:
    from ..client.responses import ItemSnapshot

__all__ = [
    "hard_breaks",
    "item_markdown",
    "scrubbed_export",
    "transcript_cells",
    "transcript_data",
    "transcript_markdown",
]

METADATA_KEY = "rt_notebook"


def transcript_data(
    items: Sequence[ItemSnapshot],
    errors: Sequence[str] = (),
    responses: Sequence[dict[str, Any]] = (),
    **header: Any,
) -> dict[str, Any]:
    """The conversation as JSON-ready data: ``header`` fields, items, responses, errors
    (credentials scrubbed, as in every other export: see :func:`scrubbed_export`)."""
    return scrubbed_export(
        {
            **header,
            "items": [{**item.as_dict(), "response_id": item.response_id} for item in items],
            "responses": list(responses),
            "errors": list(errors),
        }
    )


def scrubbed_export(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of exported ``data`` with every registered credential (and anything shaped
    like one) replaced by ``***``, as the Markdown and the cell views show it. A chat
    panel's ``to_dict()`` / ``to_json()`` pass through here."""
    return cast(dict[str, Any], scrub_data(data))


# Notebook cells ---------------------------------------------------------------------


def _turns(items: Sequence[ItemSnapshot]) -> Iterator[tuple[ItemSnapshot, list[ItemSnapshot]]]:
    """Split the conversation into (input item, the output items that follow it)."""
    current: ItemSnapshot | None = None
    outputs: list[ItemSnapshot] = []
    for item in items:
        is_input = item.type == "function_call_output" or (
            item.type == "message" and item.response_id is None
        )
        if is_input:
            if current is not None:
                yield current, outputs
            current, outputs = item, []
        elif current is None:
            yield item, []  # model output with no input before it: a cell of its own
        else:
            outputs.append(item)
    if current is not None:
        yield current, outputs


def _magic_line(item: ItemSnapshot, answered: bool) -> str:
    options = []
    text = item.output if item.type == "function_call_output" else item.text
    if item.type == "function_call_output":
        options.append(f"--function-output {item.call_id}")
    elif item.role and item.role != "user":
        options.append(f"--role {item.role}")
    if not answered:
        options.append("--no-response")
    if "{" in (text or ""):
        options.append("--no-interpolate")  # the text is not a template
    return " ".join(["%%realtime", *options])


def _answer_output(item: ItemSnapshot, outputs: Sequence[ItemSnapshot], session: str) -> Any:
    import nbformat.v4

    from ..client.saved_turns import bounded_record, item_record

    markdown = response_markdown(outputs)
    response_id = next((item.response_id for item in outputs if item.response_id), None)
    # The turn's items, as a cell's answer keeps them: %realtime resume reads this export.
    turn = bounded_record(filter(None, map(item_record, [item, *outputs])))
    return nbformat.v4.new_output(
        "display_data",
        data={"text/markdown": markdown, "text/plain": markdown},
        metadata={METADATA_KEY: {"response_id": response_id, "session": session, "turn": turn}},
    )


def _audio_output(pcm: bytes, cap_seconds: float) -> Any:
    import nbformat.v4

    from .voice import audio_bundle

    return nbformat.v4.new_output("display_data", data=audio_bundle(pcm, cap_seconds))


def transcript_cells(
    items: Sequence[ItemSnapshot],
    session: str = "default",
    audio: Mapping[str, bytes] | None = None,
    cap_seconds: float = 300.0,
) -> list[Any]:
    """The conversation as nbformat v4 cells: one ``%%realtime`` code cell per input item,
    the model's output items as that cell's Markdown output; a spoken answer (``audio``:
    response id -> PCM16 24 kHz) also as playable audio, up to ``cap_seconds``."""
    import nbformat.v4

    cells = []
    for item, outputs in _turns(items):
        if item.response_id is not None:  # model output without an input cell
            cells.append(nbformat.v4.new_markdown_cell(item_markdown(item)))
            continue
        labels = image_labels(item)
        if labels:
            # A cell's source holds text only: say what it also sent, and how to again.
            shown = ", ".join(f"\\[{label}\\]" for label in labels)
            note = f"*This message also held {shown}: add `--image SOURCE` to send it again.*"
            cells.append(nbformat.v4.new_markdown_cell(note))
        text = item.output if item.type == "function_call_output" else item.text
        source = f"{_magic_line(item, bool(outputs))}\n{scrub(text or '')}"
        cell = nbformat.v4.new_code_cell(source)
        if outputs:
            cell.outputs = [_answer_output(item, outputs, session)]
            response_id = next((o.response_id for o in outputs if o.response_id), None)
            if audio and response_id is not None and response_id in audio:
                cell.outputs.insert(0, _audio_output(audio[response_id], cap_seconds))
        cells.append(cell)
    return cells
