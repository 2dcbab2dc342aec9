"""Client layer: ``%realtime resume``, a saved conversation rebuilt in a Session.

Sources, by their suffix:

- a notebook (``.ipynb``): each ``%%realtime`` cell's saved answers, in cell order; each
  answer's final output keeps its items in its metadata (:mod:`rt_notebook.client.saved_turns`).
  A chat panel's notebook export keeps them the same way;
- a recording (``.jsonl``, ``%realtime record FILE``): its received events replayed into
  the conversation mirror (:func:`rt_notebook.client.recording.load_recording`), images taken
  from the items as they were sent;
- a chat panel's JSON export (``.json``): its items (images as labels only).

Nothing is asked of the model: the items are put in the Session's conversation and
restored on a new connection by the restore every reconnect uses
(``Session.restore`` → ``ClientCore.restore_snapshot``). Images come back from their
``--image`` sources when those still resolve; otherwise the message says which did not.
A resumed notebook's cells keep their anchors: re-running one replaces its turn.
"""

from __future__ import annotations

import html
import json
import os
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ConfigurationError, RealtimeError
from ..protocol.conversation import Conversation
from ..protocol.events import Dialect
from ..protocol.images import ImagePart
from ..protocol.restore import restore_items

if TYPE_CHECKING:
    from .responses import ItemSnapshot, SessionStatus

__all__ = ["ResumableSession", "ResumeReport", "load", "notebook_path", "resume"]

METADATA_KEY = "rt_notebook"
MODES = ("replace", "append")
# The magic's cells: a notebook's code cell whose first line runs it.
_CELL_MAGIC = "%%realtime"


class ResumableSession(Protocol):
    """What a resume needs of the Session it fills (a
    :class:`~rt_notebook.client.session.Session`; an interface, so that this module does not
    depend on the Session's, which calls it)."""

    @property
    def name(self) -> str: ...

    @property
    def items(self) -> list[ItemSnapshot]: ...

    @property
    def active_response_id(self) -> str | None: ...

    @property
    def status(self) -> SessionStatus: ...

    def connect(self, timeout: float = 30.0) -> object: ...

    def restore(self, conversation: Conversation, timeout: float = 30.0) -> object: ...


@dataclass
class Loaded:
    """A saved conversation read from a file: wire items in order, and what was left out."""

    # Model output carries the id of its response under "_response_id" (not sent).
    items: list[dict[str, Any]] = field(default_factory=list)
    # Cell key -> its items (the same dicts: an id given anew follows).
    anchors: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "cell 4: why"
    notes: list[str] = field(default_factory=list)  # restored, but not as saved


@dataclass(frozen=True)
class ResumeReport:
    """What a resume restored: ``restored`` items, and each thing skipped with why."""

    source: str
    restored: int
    skipped: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    replaced: int = 0  # items the Session held before, dropped by --replace

    def __str__(self) -> str:
        line = f"Resumed {self.restored} items from {self.source}"
        if self.replaced:
            line += f" (replacing {self.replaced})"
        line += f"; {len(self.skipped)} skipped"
        lines = [line + ("." if not self.skipped else ":")]
        lines += [f"- skipped {why}" for why in self.skipped]
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines)


# Where the notebook is ----------------------------------------------------------------


def notebook_path(namespace: Mapping[str, Any]) -> Path:
    """This kernel's notebook, as the front end told it (jupyter_server sets
    ``JPY_SESSION_NAME`` for a notebook's kernel; ipykernel puts it in ``__session__``)."""
    name = namespace.get("__session__") or os.environ.get("JPY_SESSION_NAME")
    if isinstance(name, str) and name.endswith(".ipynb") and Path(name).is_file():
        return Path(name)
    raise ConfigurationError(
        "resume: the front end did not say which notebook this is: "
        "name it, %realtime resume NOTEBOOK.ipynb"
    )


# Reading --------------------------------------------------------------------------------


def load(
    path: Path, session: str = "default", namespace: Mapping[str, Any] | None = None
) -> Loaded:
    """The conversation saved in ``path`` (by its suffix: notebook, recording, export)."""
    if not path.is_file():
        raise ConfigurationError(f"resume: no file {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"resume: cannot read {path} ({type(exc).__name__})") from None
    if path.suffix == ".jsonl":
        return _from_recording(text.splitlines())
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise ConfigurationError(f"resume: {path} is not JSON (a notebook or an export)") from None
    if isinstance(data, dict) and isinstance(data.get("cells"), list):
        return _from_notebook(data, session, namespace or {}, path.parent)
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        return _from_export(data["items"])
    raise ConfigurationError(
        f"resume: {path} is neither a notebook, a recording (.jsonl) nor a chat panel export"
    )


def _from_notebook(
    notebook: dict[str, Any], session: str, namespace: Mapping[str, Any], folder: Path
) -> Loaded:
    loaded = Loaded()
    for number, cell in enumerate(notebook["cells"], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        mine = _cell_items(
            loaded, cell, f"cell {number}", session=session, namespace=namespace, folder=folder
        )
        loaded.items += mine
        cell_id = cell.get("id")
        if mine and isinstance(cell_id, str) and cell_id:
            loaded.anchors.append((f"id:{cell_id}", mine))
    return loaded


def _cell_items(
    loaded: Loaded,
    cell: dict[str, Any],
    where: str,
    *,
    session: str,
    namespace: Mapping[str, Any],
    folder: Path,
) -> list[dict[str, Any]]:
    """One code cell's items, in order (what is skipped, and notes, go to ``loaded``)."""
    source = cell.get("source")
    source = "".join(source) if isinstance(source, list) else str(source or "")
    body = source.lstrip().partition("\n")[2].strip("\n")  # as the magic reads it
    outputs = [o for o in cell.get("outputs") or () if isinstance(o, dict)]
    saved = [_metadata(o) for o in outputs]
    turns = [m for m in saved if m is not None and isinstance(m.get("turn"), dict)]
    if not turns and not source.lstrip().startswith(_CELL_MAGIC):
        return []  # not a conversation cell (%realtime fix cells have turns too)
    if not turns:
        wire = _unanswered(source, body, outputs)
        if wire is None:
            loaded.skipped.append(f"{where}: {_why_nothing(outputs, saved)}")
            return []
        return [wire]
    owner = str(turns[0].get("session") or "default")
    if owner != session:
        loaded.skipped.append(f"{where}: it talked to Session {owner!r}, not {session!r}")
        return []
    mine: list[dict[str, Any]] = []
    for output, saved_answer in zip(outputs, saved, strict=True):
        if saved_answer is None or not isinstance(saved_answer.get("turn"), dict):
            continue
        turn = saved_answer["turn"]
        if turn.get("note"):
            loaded.notes.append(f"{where}: {turn['note']}")
        response_id = saved_answer.get("response_id")
        for record in _records(turn, output, body):
            wire = _wire(record, where, namespace, folder, loaded.notes)
            if wire is None:
                loaded.skipped.append(f"{where}: an item that cannot be restored")
                continue
            if _is_output(wire) and isinstance(response_id, str):
                wire["_response_id"] = response_id
            mine.append(wire)
    return mine


def _records(turn: dict[str, Any], output: dict[str, Any], body: str) -> list[Any]:
    """A saved turn's items, a text taken from the output or the cell where it says so."""
    plain = (output.get("data") or {}).get("text/plain", "")
    texts = {
        "text/plain": "".join(plain) if isinstance(plain, list) else str(plain),
        "source": body,
    }
    markdown = (output.get("data") or {}).get("text/markdown", "")
    markdown = "".join(markdown) if isinstance(markdown, list) else str(markdown)
    items = turn.get("items")
    escaped = turn.get("escaped") == "html"  # see saved_turns.saved_text
    records = []
    for record in items if isinstance(items, list) else []:
        if not isinstance(record, dict):
            records.append(record)
        elif record.get("text_in") in texts:
            records.append({**record, "text": texts[record["text_in"]]})
        elif record.get("text_in") == "text/markdown" and isinstance(record.get("length"), int):
            records.append({**record, "text": markdown[: record["length"]]})
        else:
            records.append(_unescaped(record) if escaped else record)
    return records


def _unescaped(record: dict[str, Any]) -> dict[str, Any]:
    return {
        name: html.unescape(value)
        if name in ("text", "arguments", "output") and isinstance(value, str)
        else value
        for name, value in record.items()
    }


def _unanswered(source: str, body: str, outputs: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """A ``--no-response`` cell (no answer, so no saved record) as the message its source
    says, when the source alone says it: appended, its text not a ``{name}`` template."""
    import shlex

    try:
        words = shlex.split(source.lstrip().partition("\n")[0])[1:]
    except ValueError:
        return None
    placed = {"--after", "--function-output", "--oob", "--session"} & set(words)
    templated = "{" in body and "--no-interpolate" not in words
    if "--no-response" not in words or placed or templated or not body.strip() or outputs:
        return None
    role = "user"
    if "--role" in words and words.index("--role") + 1 < len(words):
        role = words[words.index("--role") + 1]
    record = {"id": f"item_{uuid.uuid4().hex[:20]}", "type": "message", "role": role}
    return _wire({**record, "text": body}, "", {}, Path.cwd(), [])


def _metadata(output: dict[str, Any]) -> dict[str, Any] | None:
    metadata = output.get("metadata")
    saved = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
    return saved if isinstance(saved, dict) else None


def _why_nothing(outputs: Sequence[dict[str, Any]], saved: Sequence[Any]) -> str:
    errors = [o for o in outputs if o.get("output_type") == "error"]
    if errors:
        name = str(errors[0].get("ename") or "an error")
        return f"it failed before any answer was saved ({name})"
    for output in outputs:  # IPython prints a UsageError (a typo in the options)
        text = output.get("text")
        text = "".join(text) if isinstance(text, list) else str(text or "")
        if output.get("output_type") == "stream" and text.startswith("UsageError:"):
            return f"it was refused before anything was sent ({text.splitlines()[0]})"
    if any(m is not None for m in saved):
        return "its answer was saved without its items (--oob, or an older rt_notebook)"
    return "no saved answer (not run, or its outputs were cleared)"


def _wire(
    record: Any, where: str, namespace: Mapping[str, Any], folder: Path, notes: list[str]
) -> dict[str, Any] | None:
    """A saved item as a ``conversation.item.create`` body (GA), images encoded again."""
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        return None
    kind = record.get("type")
    if kind == "function_call":
        return {
            "id": record["id"],
            "type": "function_call",
            "call_id": str(record.get("call_id") or ""),
            "name": str(record.get("name") or ""),
            "arguments": str(record.get("arguments") or "{}"),
        }
    if kind == "function_call_output":
        return {
            "id": record["id"],
            "type": "function_call_output",
            "call_id": str(record.get("call_id") or ""),
            "output": str(record.get("output") or ""),
        }
    if kind != "message":
        return None
    role = record.get("role") if record.get("role") in ("user", "assistant", "system") else "user"
    text = str(record.get("text") or "")
    parts: list[dict[str, Any]] = []
    missing: list[str] = []
    images = record.get("images")
    for image in images if isinstance(images, list) else ():
        if not isinstance(image, dict):
            continue
        part, why = _image_again(image, namespace, folder)
        if part is not None:
            parts.append(part.wire())
            if image.get("sha256") and part.sha256 != image["sha256"]:
                notes.append(f"{where}: {image.get('source')} is not the image sent then")
        else:
            label = str(image.get("label") or "image")
            missing.append(f"[{label} not restored: {why}]")
            notes.append(f"{where}: {label} not restored ({why})")
    text = "\n".join(filter(None, [text, *missing]))
    kind_of_text = "output_text" if role == "assistant" else "input_text"
    content = [{"type": kind_of_text, "text": text}] if text or not parts else []
    return {
        "id": record["id"],
        "type": "message",
        "role": role,
        "status": "completed",
        "content": [*content, *parts],
    }


def _image_again(
    image: dict[str, Any], namespace: Mapping[str, Any], folder: Path
) -> tuple[ImagePart | None, str]:
    """The image from its ``--image`` source again, or ``None`` and why not."""
    from .images import image_part

    source = image.get("source")
    detail = image.get("detail") if image.get("detail") in ("auto", "low", "high") else None
    if not isinstance(source, str) or not source:
        return None, "its source was not saved"
    if source == "--figure":
        return None, "it was --figure, the figure matplotlib held then"
    candidates: list[Any] = [source]
    if not Path(source).is_absolute() and not source.isidentifier():
        candidates.append(str(folder / source))  # relative to the notebook
    why = ""
    for candidate in candidates:
        try:
            return image_part(candidate, detail, namespace), ""
        except RealtimeError as exc:
            why = why or str(exc)
    return None, why


def _from_recording(lines: Iterable[str]) -> Loaded:
    from .recording import load_recording, read_line

    lines = list(lines)
    notes: list[str] = []
    conversation = load_recording(lines, notes)
    sent = _sent_images(read_line(line) for line in lines)
    for item in conversation.items:
        if item.id in sent and not any(image.format for image in item.images):
            item.images[:] = sent[item.id]  # the server's echo may leave the data out
    loaded = Loaded(notes=[f"recording: {note}" for note in notes])
    for wire in restore_items(conversation.items, Dialect.GA):
        held = conversation.item(wire["id"])
        if held is not None and held.response_id:
            wire["_response_id"] = held.response_id
        loaded.items.append(wire)
    skipped = [i for i in conversation.items if i.status == "in_progress"]
    loaded.skipped += [f"item {i.id}: unfinished when the recording ended" for i in skipped]
    return loaded


def _sent_images(frames: Iterable[Any]) -> dict[str, list[ImagePart]]:
    from ..protocol.images import image_parts

    images: dict[str, list[ImagePart]] = {}
    for frame in frames:
        event = getattr(frame, "event", None)
        if getattr(frame, "direction", None) != "sent" or not isinstance(event, dict):
            continue
        item = event.get("item")
        if event.get("type") == "conversation.item.create" and isinstance(item, dict):
            parts = image_parts(item.get("content"))
            if parts and isinstance(item.get("id"), str):
                images[item["id"]] = parts
    return images


def _from_export(items: Sequence[Any]) -> Loaded:
    loaded = Loaded()
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            loaded.skipped.append(f"item {number}: not an item")
            continue
        record = dict(item)
        images = [i for i in record.pop("images", None) or () if isinstance(i, dict)]
        # An export names its images, without their bytes or sources.
        record["images"] = [{"label": i.get("label"), "source": None} for i in images]
        wire = _wire(record, f"item {number}", {}, Path.cwd(), loaded.notes)
        if wire is None:
            loaded.skipped.append(f"item {number}: a {item.get('type')} cannot be restored")
            continue
        if _is_output(wire) and isinstance(item.get("response_id"), str):
            wire["_response_id"] = item["response_id"]
        loaded.items.append(wire)
    return loaded


def _is_output(wire: dict[str, Any]) -> bool:
    return wire["type"] == "function_call" or wire.get("role") == "assistant"


# Restoring ------------------------------------------------------------------------------


def snapshot_wire(item: ItemSnapshot) -> dict[str, Any] | None:
    """An item the Session holds as a ``conversation.item.create`` body (its images too)."""
    record: dict[str, Any] = {
        "id": item.id,
        "type": item.type,
        "role": item.role,
        "text": item.text,
        "call_id": item.call_id,
        "name": item.name,
        "arguments": item.arguments,
        "output": item.output,
    }
    wire = _wire(record, "", {}, Path.cwd(), [])
    if wire is not None and item.images:
        wire["content"] = [
            *(p for p in wire["content"] if p["type"] != "input_image"),
            *(image.wire() for image in item.images),
        ]
        if not item.text:
            wire["content"] = [p for p in wire["content"] if p["type"] == "input_image"]
    return wire


def conversation_of(wires: Sequence[dict[str, Any]]) -> Conversation:
    """A mirror holding ``wires`` in order, as the server would have added them (an
    item's ``_response_id``: the response that made it)."""
    conversation = Conversation()
    previous: str | None = None
    for wire in wires:
        body = {key: value for key, value in wire.items() if key != "_response_id"}
        conversation.apply(
            {"type": "conversation.item.added", "previous_item_id": previous, "item": body}
        )
        item = conversation.item(wire["id"])
        if item is not None:
            item.status = "completed"
            item.response_id = wire.get("_response_id")
        previous = wire["id"]
    return conversation


def resume(
    session: ResumableSession,
    path: str | os.PathLike[str] | None = None,
    *,
    mode: str | None = None,
    namespace: Mapping[str, Any] | None = None,
    remember: Callable[[str, list[str]], None] | None = None,
) -> ResumeReport:
    """Rebuild the conversation saved in ``path`` (``None``: this kernel's notebook) in
    ``session``; ``mode`` ``"replace"`` or ``"append"`` when it has items already (else it
    refuses, having done nothing). ``remember(cell key, item ids)`` gives each cell its
    restored items, so re-running it replaces them."""
    if mode is not None and mode not in MODES:
        raise ConfigurationError(f"resume: mode must be 'replace' or 'append', not {mode!r}")
    namespace = namespace or {}
    source = Path(path).expanduser() if path is not None else notebook_path(namespace)
    loaded = load(source, session.name, namespace)
    held = session.items
    if held and mode is None:
        raise ConfigurationError(
            f"Session {session.name!r} already holds {len(held)} items: resume --replace "
            "(drop them) or --append (add the saved ones after them); nothing was restored"
        )
    if session.active_response_id is not None:
        raise ConfigurationError("resume: an answer is running; wait for it (or stop it) first")
    kept: list[dict[str, Any]] = []
    for item in held if mode == "append" else ():
        wire = snapshot_wire(item)
        if wire is not None:
            if item.response_id:
                wire["_response_id"] = item.response_id
            kept.append(wire)
    _fresh_ids(loaded, {wire["id"] for wire in kept})
    report = ResumeReport(
        source=source.name,
        restored=len(loaded.items),
        skipped=tuple(loaded.skipped),
        notes=tuple(loaded.notes),
        replaced=len(held) if mode == "replace" else 0,
    )
    if not loaded.items and mode != "replace":
        return report  # nothing to restore: the Session stays as it was
    if session.status.state == "closed":
        session.connect()
    session.restore(conversation_of([*kept, *loaded.items]))
    if remember is not None:
        for key, wires in loaded.anchors:
            remember(key, [wire["id"] for wire in wires])
    return report


def _fresh_ids(loaded: Loaded, taken: set[str]) -> None:
    """New ids for saved items whose ids are taken (appending the same notebook twice, a
    copied cell): the anchors hold the same dicts, so they follow."""
    for wire in loaded.items:
        if wire["id"] in taken:
            wire["id"] = f"item_{uuid.uuid4().hex[:20]}"
        taken.add(wire["id"])
