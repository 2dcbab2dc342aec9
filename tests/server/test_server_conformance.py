"""Replays recorded real Realtime traffic into the embedded server and compares the answers.

The captures live in ``tests/conformance`` (real traffic; its README says where from).
Each line is ``{"direction": "sent" | "received", "data": event}``.

How a capture is replayed: the lines are cut into segments, each a run of consecutive
client events followed by the server events recorded before the next client event. A raw
``websockets`` client connects to a server running on the same event loop (with the
capture's dialect header) and, per segment, sends the client events back to back, then
reads server events until it has as many as the segment recorded. Sending back to back on
one loop means the server reads them in one batch, as the real service did, so ordering
that depends on that timing is reproduced deterministically, e.g. the validation
``error`` that overtakes the acknowledgements of items sent before it.

What is compared, per segment:

- the sequence of event types, with consecutive deltas of one type folded into one entry;
- audio and audio-transcript deltas are folded together into one entry, because how the
  two interleave follows the model's chunking (the GA capture sends all transcript deltas
  first, the beta one alternates); their order relative to the other events, and
  ``output_audio.done`` before ``output_audio_transcript.done``, are compared;
- ``rate_limits.updated`` is left out of the server's side: the recorder dropped it from
  every capture (the server sends it, as the real service does);
- the shape of each event: the set of field paths (``response.output[].content[].type``…)
  of the first event of every folded entry equals the recorded one's, so no field is
  missing or invented, in either dialect;
- fields that do not depend on a model's wording: errors (code, message, param, client
  event id), the name and parsed arguments of function calls (the offline tool rule makes
  the same call as the model did), and the content of client-created items.

Texts of the model's answers are not compared: the server echoes instead of thinking.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import websockets
from server_helpers import assert_valid, fold_deltas, types

from rt_notebook.protocol.events import Dialect, Event
from rt_notebook.server import DriverConfig, EchoResponder, start_server
from tests.timing import within

CONFORMANCE = Path(__file__).resolve().parents[1] / "conformance"
CAPTURES = sorted(CONFORMANCE.glob("*.jsonl"))
assert CAPTURES, f"no captures in {CONFORMANCE}"  # they ship with the tests: never skip

PACE = 0.01  # real pacing, so a tool result can arrive while its response is still active
AUDIO_STREAM = "response.(output_)audio(_transcript).delta"
_AUDIO_DELTAS = {
    "response.output_audio.delta",
    "response.output_audio_transcript.delta",
    "response.audio.delta",
    "response.audio_transcript.delta",
}

Segment = tuple[list[Event], list[Event]]


def segments(path: Path) -> list[Segment]:
    """(client events, server events recorded after them) runs, in wire order."""
    out: list[Segment] = []
    sent: list[Event] = []
    received: list[Event] = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record["direction"] == "sent":
            if received:
                out.append((sent, received))
                sent, received = [], []
            sent.append(record["data"])
        else:
            received.append(record["data"])
    if sent or received:
        out.append((sent, received))
    return out


def folded(events: list[Event]) -> list[str]:
    return fold_deltas([AUDIO_STREAM if t in _AUDIO_DELTAS else t for t in types(events)])


def leaders(events: list[Event]) -> list[Event]:
    """The first event of every entry of :func:`folded`."""
    out: list[Event] = []
    previous = None
    for event in events:
        kind = AUDIO_STREAM if event["type"] in _AUDIO_DELTAS else event["type"]
        if not (kind.endswith(".delta") and kind == previous):
            out.append(event)
        previous = kind
    return out


def field_paths(value: object, prefix: str = "") -> set[str]:
    """Every key path in ``value`` (``item.content[].type``), values ignored."""
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, child in value.items():
            path = f"{prefix}.{key}" if prefix else key
            paths |= {path} | field_paths(child, path)
    elif isinstance(value, list):
        for child in value:
            paths |= field_paths(child, f"{prefix}[]")
    return paths


def stable_fields(event: Event) -> Any:
    """The parts of an event that a model's wording and the ids do not change."""
    kind = event["type"]
    if kind == "error":
        return {
            key: event["error"][key] for key in ("type", "code", "message", "param", "event_id")
        }
    if kind == "response.function_call_arguments.done":
        return event["name"], json.loads(event["arguments"])
    if kind in ("conversation.item.added", "conversation.item.created"):
        item = event["item"]
        if item.get("role") == "user" or item["type"] == "function_call_output":
            return {k: v for k, v in item.items() if k not in ("id", "call_id", "object")}
    return None


async def replay(path: Path) -> list[tuple[list[Event], list[Event]]]:
    """Per segment: (the server's events, the recorded events)."""
    dialect = Dialect.BETA if path.name.startswith("beta") else Dialect.GA
    config = DriverConfig(token="t", responder=EchoResponder(), pace=PACE, dialect=dialect)
    server = await start_server(config)
    port = next(iter(server.sockets)).getsockname()[1]
    headers = {"Authorization": "Bearer t"}
    if dialect is Dialect.BETA:
        headers["OpenAI-Beta"] = "realtime=v1"
    results = []
    try:
        url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
        async with websockets.connect(url, additional_headers=headers) as connection:
            for sent, recorded in segments(path):
                for event in sent:
                    await connection.send(json.dumps(event))
                got: list[Event] = []
                while len(folded(got)) < len(folded(recorded)):
                    event = json.loads(await asyncio.wait_for(connection.recv(), within(20)))
                    assert_valid(event, dialect)
                    if event["type"] != "rate_limits.updated":
                        got.append(event)
                results.append((got, recorded))
    finally:
        server.close()
        await server.wait_closed()
    return results


@pytest.mark.parametrize("capture", CAPTURES, ids=[path.stem for path in CAPTURES])
def test_server_answers_like_the_recorded_service(capture: Path) -> None:
    results = asyncio.run(asyncio.wait_for(replay(capture), within(60)))
    for index, (got, recorded) in enumerate(results):
        assert folded(got) == folded(recorded), f"segment {index}"
        for ours, theirs in zip(leaders(got), leaders(recorded), strict=True):
            assert field_paths(ours) == field_paths(theirs), (index, ours["type"])
        served = [stable_fields(e) for e in got if stable_fields(e) is not None]
        captured = [stable_fields(e) for e in recorded if stable_fields(e) is not None]
        assert served == captured, f"segment {index}"


def test_audio_deltas_really_interleave_in_order() -> None:
    """The folded comparison hides audio interleaving; check its order constraints here."""
    capture = CONFORMANCE / "ga_text_in_audio_out_turn.jsonl"
    if not capture.exists():
        pytest.skip("audio capture absent")
    got = [event for events, _ in asyncio.run(replay(capture)) for event in events]
    order = types(got)
    first_audio_done = order.index("response.output_audio.done")
    assert order.index("response.output_audio_transcript.delta") < first_audio_done
    assert order.index("response.output_audio.delta") < first_audio_done
    assert first_audio_done < order.index("response.output_audio_transcript.done")
