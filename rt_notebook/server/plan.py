"""Sans-I/O plan of an embedded server's response: its output streams, their deltas and its
token counts.

When a response is created, the responder's outputs become :class:`OutputStream`\\ s: one
per output item, each with the deltas it will stream (word by word for text and
transcripts, token-like pieces for function arguments), cut to the ``max_output_tokens``
budget. :class:`ActiveResponse` is a response between ``response.created`` and
``response.done``; :mod:`rt_notebook.server.state` moves it tick by tick.

Token counts are deterministic stand-ins: a word of text is a token, 100 ms of input audio
is a token, a beep of output audio is a token.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from rt_notebook.protocol.events import Event, new_id
from rt_notebook.server.errors import ErrorInfo
from rt_notebook.server.responders import PlannedCall, PlannedMessage, PlannedOutput
from rt_notebook.server.shapes import DeltaTemplate, ResponseSettings

__all__ = [
    "ActiveResponse",
    "OutputKind",
    "OutputStream",
    "ResponsePhase",
    "count_input_tokens",
    "item_size",
    "plan_streams",
    "split_text",
    "split_tokens",
]

_WORD_DELTA = re.compile(r"\s*\S+|\s+$")
_TOKEN_DELTA = re.compile(r"\w+|\W+")
_WORDS = re.compile(r"\S+")
AUDIO_MS_PER_INPUT_TOKEN = 100


def split_text(text: str) -> list[str]:
    """Word-by-word deltas (leading whitespace kept) that concatenate back to ``text``."""
    return _WORD_DELTA.findall(text)


def split_tokens(arguments: str) -> list[str]:
    """Token-like deltas of a JSON arguments string (``{"``, ``city``, ``":"``…)."""
    return _TOKEN_DELTA.findall(arguments)


class ResponsePhase(enum.Enum):
    """Where a response is in its life."""

    THINKING = "thinking"  # response.created sent; no output item yet
    STREAMING = "streaming"  # output items being opened, streamed and closed
    DONE = "done"  # response.done sent


class OutputKind(enum.Enum):
    """What an output stream carries."""

    TEXT = "text"
    AUDIO = "audio"  # transcript deltas, each with its beep
    FUNCTION_CALL = "function_call"
    MCP_CALL = "mcp_call"  # a remote MCP tool the server runs (rt_notebook.server.remote_mcp)
    MCP_APPROVAL = "mcp_approval_request"  # asks the user before such a call


@dataclasses.dataclass
class OutputStream:
    """One output item of a response and its planned deltas."""

    kind: OutputKind
    item: Event  # the item as it stands, canonical GA shape; content filled on close
    deltas: list[str]  # planned deltas (already cut to the token budget)
    sent: int = 0  # deltas emitted so far
    cut: bool = False  # the budget cut this stream short
    content_closed: bool = False  # the content's .done events are out; the item's are next
    name: str = ""  # function name (FUNCTION_CALL only)
    # Delta templates, made when the stream opens: text, transcript (+ audio), or arguments.
    templates: tuple[DeltaTemplate, ...] = ()
    complete: bool = True  # no more deltas will come (live streams grow until then)
    # An echo of the user's audio (AUDIO only): base64 PCM sent with delta i, instead of beeps.
    pcm: list[str] | None = None
    # MCP_CALL: the MCP server's answer is in the item (output or error).
    answered: bool = False

    @property
    def text(self) -> str:
        """What has been streamed so far."""
        return "".join(self.deltas[: self.sent])


@dataclasses.dataclass
class ActiveResponse:
    """A response between ``response.created`` and ``response.done``."""

    id: str
    settings: ResponseSettings
    streams: list[OutputStream]  # planned outputs, in output order
    input_text_tokens: int
    input_audio_tokens: int
    born_tick: int  # advance() count when created; the first tick after it only thinks
    phase: ResponsePhase = ResponsePhase.THINKING
    cursor: int = 0  # index of the open (or next) stream
    open: bool = False  # whether streams[cursor] has been opened
    budget_hit: bool = False  # max_output_tokens cut the output
    failure: Event | None = None  # status_details when the responder failed
    # Live responses (rt_notebook.server.live): outputs arrive while the response runs.
    live: bool = False
    complete: bool = True  # no more outputs will come
    waiting: bool = False  # everything that arrived is sent: nothing to do until more comes
    calls: dict[int, OutputStream] = dataclasses.field(default_factory=dict)  # by call index
    usage: Event | None = None  # usage the backend reported (else the stand-in counts)
    incomplete_reason: str | None = None  # when not the token budget (content_filter)
    cancel_reason: str | None = None  # when not client_cancelled (turn_detected)
    error: ErrorInfo | None = None  # a backend failure to report at the next tick

    @property
    def in_conversation(self) -> bool:
        return not self.settings.out_of_band

    @property
    def finished_streams(self) -> list[OutputStream]:
        """Streams whose items are closed (what ``response.done`` lists as output)."""
        return self.streams[: self.cursor]


def plan_streams(
    planned: Iterable[PlannedOutput], *, audio: bool, budget: int | None
) -> tuple[list[OutputStream], bool]:
    """The streams of ``planned`` outputs; second value: whether the budget cut them."""
    streams: list[OutputStream] = []
    for output in planned:
        if budget is not None and budget <= 0:
            return streams, True
        stream = _stream_for(output, audio=audio)
        if budget is not None:
            if len(stream.deltas) > budget:
                stream.deltas = stream.deltas[:budget]
                stream.cut = True
            budget -= len(stream.deltas)
        streams.append(stream)
    return streams, any(stream.cut for stream in streams)


def _stream_for(output: PlannedOutput, *, audio: bool) -> OutputStream:
    if isinstance(output, PlannedCall):
        return OutputStream(
            kind=OutputKind.FUNCTION_CALL,
            item={
                "id": new_id("item"),
                "type": "function_call",
                "status": "in_progress",
                "name": output.name,
                "call_id": new_id("call", 16),
                "arguments": "",
            },
            deltas=split_tokens(output.arguments),
            name=output.name,
        )
    if isinstance(output, PlannedMessage):
        return OutputStream(
            kind=OutputKind.AUDIO if audio else OutputKind.TEXT,
            item={
                "id": new_id("item"),
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            },
            deltas=split_text(output.text),
        )
    raise TypeError(f"responder returned {output!r}; expected PlannedMessage or PlannedCall")


def item_size(item: Mapping[str, Any]) -> tuple[int, int]:
    """(words of text, characters of base64 input audio) of one item: what it costs to read."""
    words = 0
    audio_chars = 0
    for key in ("arguments", "output", "name"):
        if isinstance(item.get(key), str):
            words += len(_WORDS.findall(item[key]))
    for part in item.get("content") or ():
        for key in ("text", "transcript"):
            if isinstance(part.get(key), str):
                words += len(_WORDS.findall(part[key]))
        if part.get("type") == "input_audio" and isinstance(part.get("audio"), str):
            audio_chars += len(part["audio"])
    return words, audio_chars


def count_input_tokens(
    instructions: str, context_size: tuple[int, int], bytes_per_ms: int
) -> tuple[int, int]:
    """(text tokens, audio tokens) a response reads: words of text, 100 ms of audio each.

    ``context_size`` is the sum of :func:`item_size` over the items the response sees (the
    conversation keeps it up to date, so a turn does not re-read the whole conversation).
    """
    words, audio_chars = context_size
    audio_ms = audio_chars * 3 / 4 / bytes_per_ms
    return len(_WORDS.findall(instructions)) + words, math.ceil(audio_ms / AUDIO_MS_PER_INPUT_TOKEN)
