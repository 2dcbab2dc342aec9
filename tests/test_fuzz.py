"""Fuzz: mutated server event sequences, fed to the client core and sent by a hostile server.

Each sequence is a clean text turn (response.created … response.done) mutated a few times:
events dropped, duplicated, swapped, fields replaced by values of the wrong type, garbage
frames inserted, the stream cut short. Whatever arrives, nothing may crash or hang: the
turn either completes or fails with a clear error, and the next clean turn works.

``RT_FUZZ_CORE`` (default 10000) sequences go to the core directly; ``RT_FUZZ_E2E``
(default 40) go through the real openai SDK from a hostile ``websockets`` server, which
also counts the sockets left open.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading

import pytest

from rt_notebook.errors import RealtimeError
from rt_notebook.protocol.checks import decode, problem
from rt_notebook.protocol.client import REQUEST_TAG, ClientCore, Command
from rt_notebook.protocol.events import Dialect
from rt_notebook.protocol.turns import Request, State, Timing, Turn
from tests.timing import UNIT, WAIT, wait_until, within

CORE_SEQUENCES = int(os.environ.get("RT_FUZZ_CORE", "10000"))
E2E_SEQUENCES = int(os.environ.get("RT_FUZZ_E2E", "40"))

WRONG_VALUES = [None, 5, -1.5, True, "", "x" * 300, [], [1, "a"], {}, {"id": 3}, "\ud800?"]


def clean_turn(tag, response_id, text):
    """The server events of one text answer (GA names)."""
    item_id = "item_" + response_id
    item = {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }
    words = text.split(" ")
    return [
        {
            "type": "response.created",
            "response": {
                "id": response_id,
                "status": "in_progress",
                "metadata": {REQUEST_TAG: tag},
                "conversation_id": "conv_1",
            },
        },
        {"type": "response.output_item.added", "response_id": response_id, "item": item},
        {"type": "conversation.item.added", "previous_item_id": None, "item": item},
        *[
            {
                "type": "response.output_text.delta",
                "response_id": response_id,
                "item_id": item_id,
                "delta": w + " ",
            }
            for w in words
        ],
        {
            "type": "response.output_text.done",
            "response_id": response_id,
            "item_id": item_id,
            "text": text,
        },
        {
            "type": "response.output_item.done",
            "response_id": response_id,
            "item": {
                **item,
                "status": "completed",
                "content": [{"type": "output_text", "text": text}],
            },
        },
        {
            "type": "response.done",
            "response": {
                "id": response_id,
                "status": "completed",
                "metadata": {REQUEST_TAG: tag},
                "output": [
                    {
                        **item,
                        "status": "completed",
                        "content": [{"type": "output_text", "text": text}],
                    }
                ],
            },
        },
    ]


def _mutate_field(rng, event):
    event = json.loads(json.dumps(event))
    target = event
    for _ in range(rng.randint(0, 2)):
        nested = [k for k, v in target.items() if isinstance(v, dict)]
        if not nested:
            break
        target = target[rng.choice(nested)]
    key = rng.choice([*target.keys(), "extra"])
    target[key] = rng.choice(WRONG_VALUES)
    return event


def ghost_events(response_id="resp_ghost"):
    """Events of a response the client never asked for and never saw start."""
    item = {"id": "item_ghost", "type": "message", "role": "assistant", "content": []}
    return [
        {"type": "response.output_item.added", "response_id": response_id, "item": item},
        {
            "type": "response.output_text.delta",
            "response_id": response_id,
            "item_id": "item_ghost",
            "delta": "boo",
        },
        {"type": "response.done", "response": {"id": response_id, "status": "completed"}},
    ]


def reorder(rng, events):
    """Out of order but complete: the response.done first (before its response.created),
    a late duplicate of response.created, events of an unknown response interleaved."""
    frames = list(events)
    kind = rng.randrange(3)
    done = next(i for i, f in enumerate(frames) if f["type"] == "response.done")
    if kind == 0:
        frames.insert(0, frames.pop(done))
    elif kind == 1:
        frames.insert(0, frames.pop(done))
        frames.insert(rng.randrange(len(frames) + 1), events[0])
    for ghost in ghost_events(f"resp_ghost_{rng.randrange(1000)}"):
        frames.insert(rng.randrange(len(frames) + 1), ghost)
    return frames


def mutate(rng, events):
    """A few random mutations of a list of events (frames: str, bytes or dicts)."""
    frames = list(events)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(10)
        if not frames:
            break
        i = rng.randrange(len(frames))
        if kind == 0:
            del frames[i]
        elif kind == 1:
            frames.insert(i, frames[i])
        elif kind == 2 and len(frames) > 1:
            j = rng.randrange(len(frames))
            frames[i], frames[j] = frames[j], frames[i]
        elif kind == 3 and isinstance(frames[i], dict):
            frames[i] = _mutate_field(rng, frames[i])
        elif kind == 4:
            frames.insert(
                i,
                rng.choice(
                    [
                        "{",
                        "[]",
                        "42",
                        "null",
                        '{"type": 7}',
                        '{"type": "made.up"}',
                        b"\x00\x01binary",
                    ]
                ),
            )
        elif kind == 5:
            del frames[i:]  # the stream stops: only timers can end the turn
        elif kind == 6 and isinstance(frames[i], dict):
            frames[i] = {
                **frames[i],
                "type": rng.choice(["error", "session.updated", "response.done", "x.y"]),
            }
        elif kind == 7 and isinstance(frames[i], dict):
            frames.insert(
                i,
                {
                    "type": "error",
                    "error": {
                        "type": "server_error",
                        "code": rng.choice([None, "x", "session_expired"]),
                        "message": "fuzz",
                        "event_id": rng.choice([None, "event_nope"]),
                    },
                },
            )
        elif kind == 8 and all(isinstance(f, dict) for f in frames):
            done = [i for i, f in enumerate(frames) if f.get("type") == "response.done"]
            if done:  # the done first: before its response.created
                frames.insert(0, frames.pop(done[-1]))
        elif kind == 9:
            frames[i:i] = ghost_events()
    return frames


def encode(frame):
    return frame if isinstance(frame, str | bytes) else json.dumps(frame)


# The core, directly ---------------------------------------------------------------------

TIMING = Timing(
    cancel_timeout=10,
    idle_timeout=30,
    backoff_initial=1,
    backoff_max=2,
    max_attempts=3,
    renew_margin=0,
)


class FakeServer:
    """Answers the core's client events like a well-behaved server (for recovery)."""

    def __init__(self, core):
        self.core = core
        self.now = 0.0
        self.responses = 0

    def feed(self, *frames, binary=False):
        for frame in frames:
            self.core.receive(
                encode(frame),
                self.core.generation,
                self.now,
                binary=binary or isinstance(frame, bytes),
            )

    def serve(self, hostile=None):
        """Answer what the core sent; run the timers; loop until nothing is left."""
        for _ in range(200):
            commands = self.core.commands_to_run()
            if commands:
                if Command.OPEN in commands:
                    self.core.events_to_send()  # sends on the old socket are lost
                    self.feed({"type": "session.created", "session": {"id": "s"}})
                continue
            events = self.core.events_to_send()
            if events:
                for event in events:
                    self.answer(event, hostile)
                    if event["type"] == "response.create":
                        hostile = None  # only the first answer is mutated
                continue
            deadline = self.core.next_deadline()
            if deadline is None:
                return
            self.now = max(self.now, deadline)
            self.core.tick(self.now)
        raise AssertionError("the core never settled (a loop)")

    def answer(self, event, hostile):
        kind = event["type"]
        if kind == "session.update":
            self.feed({"type": "session.updated", "session": event["session"]})
        elif kind == "conversation.item.create":
            self.feed(
                {"type": "conversation.item.added", "previous_item_id": None, "item": event["item"]}
            )
        elif kind == "response.create":
            self.responses += 1
            tag = event["response"]["metadata"][REQUEST_TAG]
            events = clean_turn(tag, f"resp_{self.responses}", f"answer {self.responses}")
            for frame in hostile(events) if hostile else events:
                self.feed(frame)
        elif kind == "response.cancel":
            pass  # a stubborn server: only the give-up timer helps


def ask(core, server, text):
    item = {
        "id": f"item_{text.replace(' ', '_')}",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": text}],
    }
    turn = Turn(
        [Request("item", {"type": "conversation.item.create", "item": item}, key=item["id"])], {}
    )
    core.submit(turn, server.now)
    return turn


# Pure CPU (10,000 sequences through the core): over 120 s on a loaded 2-core machine.
@pytest.mark.timeout(within(600))
def test_core_fuzz_never_crashes_never_hangs_and_recovers():
    rng = random.Random(20261129)
    outcomes = {"completed": 0, "failed": 0, "other": 0}
    for n in range(CORE_SEQUENCES):
        core = ClientCore(Dialect.GA, TIMING, seed=n)
        server = FakeServer(core)
        core.open(0)
        server.serve()
        assert core.state is State.READY
        turn = ask(core, server, f"q {n}")
        server.serve(hostile=lambda events: mutate(rng, events))
        assert turn.status is not None or isinstance(turn.error, RealtimeError), (n, turn)
        if turn.error is not None:
            outcomes["failed"] += 1
        elif turn.status == "completed":
            outcomes["completed"] += 1
        else:
            outcomes["other"] += 1
        if core.state is State.CLOSED:
            core.open(server.now)
            server.serve()
        clean = ask(core, server, f"clean {n}")
        server.serve()
        assert clean.status == "completed", (n, clean.error)
        assert core.view().response_text(clean.response_id).startswith("answer")
    assert sum(outcomes.values()) == CORE_SEQUENCES
    assert outcomes["failed"] > 0  # both paths were taken
    assert outcomes["completed"] > 0


def test_out_of_order_but_complete_answers_all_complete():
    """A response.done that carries the whole response completes its turn, whatever came
    before it (its response.created late or never, a stranger's events in between): no
    hang, no give-up, no stuck core, and the next turn is answered."""
    rng = random.Random(20261206)
    outcomes = {"completed": 0, "gave up": 0, "failed": 0, "stuck": 0}
    sequences = max(1, CORE_SEQUENCES // 10)
    for n in range(sequences):
        core = ClientCore(Dialect.GA, TIMING, seed=n)
        server = FakeServer(core)
        core.open(0)
        server.serve()
        turn = ask(core, server, f"q {n}")
        server.serve(hostile=lambda events: reorder(rng, events))
        if turn.status == "completed":
            outcomes["completed"] += 1
            assert core.view().response_text(turn.response_id).startswith("answer")
        elif turn.error is not None and "gave up" in str(turn.error):
            outcomes["gave up"] += 1
        elif turn.error is not None:
            outcomes["failed"] += 1
        clean = ask(core, server, f"clean {n}")
        server.serve()
        if clean.status != "completed" or core.state is not State.READY:
            outcomes["stuck"] += 1
    assert outcomes == {"completed": sequences, "gave up": 0, "failed": 0, "stuck": 0}


# End to end: a hostile websockets server and the real SDK -------------------------------


class HostileServer:
    """A Realtime-shaped websockets server whose first answer per sequence is mutated."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.hostile = threading.Event()  # the next answer is mutated
        self.open = 0
        self.opened = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        self._ready.wait(WAIT)
        return self

    def __exit__(self, *exc):
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(WAIT)

    def _run(self):
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._loop.close()

    async def _serve(self):
        import websockets

        self._stop = asyncio.Event()
        async with websockets.serve(self._connection, "127.0.0.1", 0) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    async def _connection(self, ws):
        self.open += 1
        self.opened += 1
        responses = 0
        try:
            await ws.send(json.dumps({"type": "session.created", "session": {"id": "s"}}))
            async for message in ws:
                event = json.loads(message)
                kind = event.get("type")
                if kind == "session.update":
                    await ws.send(
                        json.dumps({"type": "session.updated", "session": event["session"]})
                    )
                elif kind == "conversation.item.create":
                    await ws.send(
                        json.dumps(
                            {
                                "type": "conversation.item.added",
                                "previous_item_id": None,
                                "item": event["item"],
                            }
                        )
                    )
                elif kind == "response.create":
                    responses += 1
                    tag = event["response"]["metadata"][REQUEST_TAG]
                    frames = clean_turn(tag, f"resp_{id(ws)}_{responses}", "fine answer")
                    if self.hostile.is_set():
                        self.hostile.clear()
                        frames = mutate(self.rng, frames)
                    for frame in frames:
                        await ws.send(encode(frame))
        except Exception:
            pass
        finally:
            self.open -= 1


def test_e2e_fuzz_through_the_sdk_leaves_no_socket_open():
    from rt_notebook.client.session import Session

    # Give-up timers long enough that a clean turn on a busy machine is never given up
    # (a hostile sequence that stalls costs one idle timeout).
    timing = Timing(
        cancel_timeout=40 * UNIT,
        idle_timeout=40 * UNIT,
        backoff_initial=UNIT,
        backoff_max=2 * UNIT,
        max_attempts=5,
        renew_margin=0,
    )
    wait = WAIT
    with HostileServer(seed=9) as server:
        session = Session(
            websocket_base_url=f"ws://127.0.0.1:{server.port}/v1",
            api_key="fuzz-key-123456",
            timing=timing,
        )
        try:
            session.connect(timeout=wait)
            failed = 0
            for n in range(E2E_SEQUENCES):
                server.hostile.set()
                handle = session.ask(f"hostile {n}")
                try:
                    handle.wait(wait)
                except RealtimeError:
                    failed += 1
                except TimeoutError:
                    pytest.fail(f"sequence {n} hung")
                if not session.connected:
                    session.connect(timeout=wait)
                result = session.ask(f"clean {n}").wait(wait)
                assert (result.status, result.text) == ("completed", "fine answer"), n
            assert failed > 0
        finally:
            session.close()
        wait_until(lambda: server.open == 0, "every socket to close")


def _int_as_orjson_reads_it(digits):
    number = int(digits)
    return number if -(2**63) <= number < 2**64 else float(number)


@pytest.mark.parametrize(
    "frame",
    [
        "",
        " ",
        '  {"type": "error", "error": {}}',
        '{"type": "error", "error": {}}\n',
        '{"a":',
        "{}x",
        '{"type": "error", "error": {}} x',
        "null",
        "[1]",
        "NaN",
        '"\\ud800"',
        "[" * 100_000,
        b'{"type": "session.created", "session": {}}',
        '{"type": ["response.output_text.delta"]}',
        '{"type": "response.output_text.delta", "delta": 1, "item_id": "i"}',
        '{"type": "response.output_text.delta", "delta": "d", "item_id": "i", "response_id": 3}',
        '{"type": "response.output_text.delta", "delta": "d", "item_id": "i"}',
        # Where orjson (the decoder) is stricter than json.loads: integers past 64 bits,
        # NaN and infinities, lone surrogates escaped or raw, UTF-16 and BOMs in bytes.
        '{"type": "rate_limits.updated", "rate_limits": [{"limit": 1' + "0" * 30 + "}]}",
        '{"type": "rate_limits.updated", "rate_limits": [{"limit": -1' + "0" * 30 + "}]}",
        '{"type": "rate_limits.updated", "rate_limits": [{"limit": NaN}]}',
        '{"type": "rate_limits.updated", "rate_limits": [{"limit": -Infinity}]}',
        '{"type": "error", "error": {"message": "\\ud800"}}',
        '{"type": "error", "error": {"message": "\ud800"}}',
        '{"type": "error", "error": {"message": "\\udc00\\ud800"}}',
        '{"type": "error", "error": {}}'.encode("utf-16"),
        '{"type": "error", "error": {}}'.encode("utf-8-sig"),
        b'{"type": "error", "error": {"message": "\xed\xa0\x80"}}',
        b'{"type": "error", "error": {"message": "\xff"}}',
        "[" * 1000 + "]" * 1000,
        '{"type": "error", "error": {}, "type": "session.created", "session": {}}',
    ],
)
def test_the_fast_decoder_agrees_with_json_loads(frame):
    """decode() uses orjson, not json.loads: same event, or a rejection with a reason.

    The one difference kept: an integer past 64 bits becomes a float (orjson's rule; no
    Realtime event carries one), rather than failing the frame.
    """
    try:
        expected = json.loads(frame, parse_int=_int_as_orjson_reads_it)
    except (ValueError, RecursionError):
        expected = None
    event, why = decode(frame)
    if type(expected) is dict and problem(expected) is None:
        assert (event, why) == (expected, None)
    else:
        assert event is None
        assert why
