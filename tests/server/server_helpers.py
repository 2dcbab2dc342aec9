"""Helpers shared by the embedded server's tests (imported, not collected)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pydantic
from openai import AsyncOpenAI
from openai.types.beta.realtime import RealtimeServerEvent as BetaServerEvent
from openai.types.realtime import RealtimeServerEvent as GAServerEvent

from rt_notebook.protocol.events import Dialect, Event
from rt_notebook.server import ConnectionState, EchoResponder, EmbeddedServer, Responder
from tests.timing import within

_ADAPTERS: dict[Dialect, pydantic.TypeAdapter[Any]] = {
    Dialect.GA: pydantic.TypeAdapter(GAServerEvent),
    Dialect.BETA: pydantic.TypeAdapter(BetaServerEvent),
}

# Fields the real service sends that the SDK's models do not declare: exactly the ones
# found in the recorded traffic of tests/conformance (every text-like delta
# carries ``obfuscation``; beta sessions carry the GA-era session fields). Any other
# undeclared field fails the strict check.
OBSERVED_UNDECLARED: dict[Dialect, frozenset[tuple[str, str]]] = {
    Dialect.GA: frozenset(
        {
            ("RealtimeSessionCreateRequest", "id"),
            ("RealtimeSessionCreateRequest", "object"),
            ("RealtimeSessionCreateRequest", "expires_at"),
            ("ResponseTextDeltaEvent", "obfuscation"),
            ("ResponseAudioTranscriptDeltaEvent", "obfuscation"),
            ("ResponseFunctionCallArgumentsDeltaEvent", "obfuscation"),
        }
    ),
    Dialect.BETA: frozenset(
        {
            ("Session", "object"),
            ("Session", "expires_at"),
            ("Session", "client_secret"),
            ("Session", "include"),
            ("Session", "prompt"),
            ("Session", "truncation"),
            ("TurnDetection", "idle_timeout_ms"),
            ("InputTokenDetails", "cached_tokens_details"),
            ("InputTokenDetails", "image_tokens"),
            ("ResponseTextDeltaEvent", "obfuscation"),
            ("ResponseAudioTranscriptDeltaEvent", "obfuscation"),
            ("ResponseFunctionCallArgumentsDeltaEvent", "obfuscation"),
            ("ResponseFunctionCallArgumentsDoneEvent", "name"),
        }
    ),
}


def undeclared_fields(model: object) -> set[tuple[str, str]]:
    """(model name, field) of every key a parsed SDK model kept without declaring it."""
    found: set[tuple[str, str]] = set()
    if isinstance(model, pydantic.BaseModel):
        found.update((type(model).__name__, key) for key in model.__pydantic_extra__ or {})
        for name in type(model).model_fields:
            found |= undeclared_fields(getattr(model, name))
    elif isinstance(model, list):
        for element in model:
            found |= undeclared_fields(element)
    return found


def assert_valid(event: Event, dialect: Dialect) -> None:
    """Validate ``event`` with pydantic against the SDK's server-event union of ``dialect``.

    Strict: full validation (not ``construct``), the parsed member must be the event's own
    type, and no field may be undeclared unless the real service sends it too.
    """
    parsed = _ADAPTERS[dialect].validate_python(event)
    assert parsed.type == event["type"], (parsed.type, event["type"])
    extra = undeclared_fields(parsed) - OBSERVED_UNDECLARED[dialect]
    assert not extra, f"{event['type']} has fields the SDK does not declare: {sorted(extra)}"


def assert_all_valid(events: Iterable[Event], dialect: Dialect) -> None:
    for event in events:
        assert_valid(event, dialect)


def types(events: Iterable[Event]) -> list[str]:
    return [event["type"] for event in events]


def fold_deltas(event_types: Sequence[str]) -> list[str]:
    """Collapse runs of the same ``*.delta`` type into one entry."""
    folded: list[str] = []
    for event_type in event_types:
        if event_type.endswith(".delta") and folded and folded[-1] == event_type:
            continue
        folded.append(event_type)
    return folded


def user_text(text: str) -> Event:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


WEATHER_TOOL: Event = {
    "type": "function",
    "name": "get_weather",
    "description": "Look up the weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


class Driven:
    """A :class:`ConnectionState` driven by hand, recording every event it emits."""

    def __init__(
        self,
        dialect: Dialect = Dialect.GA,
        responder: Responder | None = None,
        model: str = "gpt-realtime",
    ) -> None:
        self.dialect = dialect
        self.state = ConnectionState(
            model=model, dialect=dialect, responder=responder or EchoResponder(), now=1_700_000_000
        )
        self.log: list[Event] = list(self.state.start())

    def send(self, *events: Event | str) -> list[Event]:
        """Receive ``events`` as one batch of frames, then process them; return the output."""
        out: list[Event] = []
        for event in events:
            text = event if isinstance(event, str) else json.dumps(event)
            out.extend(self.state.receive_text(text))
        out.extend(self.state.process())
        self.log.extend(out)
        return out

    def tick(self, count: int = 1) -> list[Event]:
        out: list[Event] = []
        for _ in range(count):
            out.extend(self.state.advance())
        self.log.extend(out)
        return out

    def run(self, limit: int = 10_000) -> list[Event]:
        """Advance until nothing is streaming."""
        out: list[Event] = []
        for _ in range(limit):
            if not self.state.streaming:
                return out
            out.extend(self.tick())
        raise AssertionError("response did not finish")

    def until(self, event_type: str, limit: int = 10_000) -> list[Event]:
        """Advance until an event of ``event_type`` appears; return everything so far."""
        out: list[Event] = []
        for _ in range(limit):
            out.extend(self.tick())
            if event_type in types(out):
                return out
        raise AssertionError(f"no {event_type}")

    def session_update(self, **fields: Any) -> list[Event]:
        session = {"type": "realtime", **fields} if self.dialect is Dialect.GA else fields
        return self.send({"type": "session.update", "session": session})

    def text_mode(self) -> None:
        if self.dialect is Dialect.GA:
            self.session_update(output_modalities=["text"])
        else:
            self.session_update(modalities=["text"])


# The real openai SDK against an embedded server

T = TypeVar("T")
RECV_TIMEOUT_S = within(20)
TIME_UNIT_S = within(1)  # former name of tests.timing.within(1), kept for in-flight branches


def run(coroutine: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coroutine, within(60))

    return asyncio.run(bounded())


class Client:
    """An ``openai`` SDK realtime connection plus raw, strictly validated receiving."""

    def __init__(self, connection: Any, dialect: Dialect) -> None:
        self.connection = connection
        self.dialect = dialect
        self.received: list[Event] = []

    async def send(self, event: Event) -> None:
        await self.connection.send(event)

    async def next(self) -> Event:
        raw = await asyncio.wait_for(self.connection.recv_bytes(), RECV_TIMEOUT_S)
        event: Event = json.loads(raw)
        assert_valid(event, self.dialect)
        self.received.append(event)
        return event

    async def until(self, event_type: str, *, count: int = 1) -> list[Event]:
        """Receive until ``count`` events of ``event_type``; return what was received."""
        out: list[Event] = []
        seen = 0
        while seen < count:
            out.append(await self.next())
            seen += out[-1]["type"] == event_type
        return out


@asynccontextmanager
async def sdk_client(
    server: EmbeddedServer, dialect: Dialect = Dialect.GA
) -> AsyncIterator[Client]:
    async with AsyncOpenAI(
        api_key=server.token,
        base_url=server.base_url,
        websocket_base_url=server.websocket_base_url,  # the beta client forces wss:// otherwise
    ) as openai_client:
        manager: Any
        if dialect is Dialect.GA:
            manager = openai_client.realtime.connect(model="gpt-realtime")
        else:
            manager = openai_client.beta.realtime.connect(model="gpt-4o-realtime-preview")
        async with manager as connection:
            client = Client(connection, dialect)
            assert (await client.next())["type"] == "session.created"
            yield client


async def text_mode(client: Client, **extra: Any) -> None:
    if client.dialect is Dialect.GA:
        session = {"type": "realtime", "output_modalities": ["text"], **extra}
    else:
        session = {"modalities": ["text"], **extra}
    await client.send({"type": "session.update", "session": session})
    await client.until("session.updated")


def final_text(events: list[Event]) -> str:
    (done,) = [
        e for e in events if e["type"] in ("response.output_text.done", "response.text.done")
    ]
    return str(done["text"])
