"""Ingest benchmark: server events per second through the Session, against the raw SDK.

Three consumers read the same streamed answer (N deltas) from the embedded server running in
a subprocess: the SDK's raw ``recv_bytes()`` + ``json.loads`` loop (the floor), the SDK's
typed ``recv()`` iteration, and rt_notebook's Session (mirror + routing + subscribers).
The server is usually the bottleneck of wall-clock rates, so the figure compared is the
consumer's CPU time per event (``time.process_time``; the server runs in another process).
Prints events, events per second, CPU microseconds per event and the ratio to the raw loop.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _server import server_process
from openai import AsyncOpenAI

from rt_notebook.session import Session

WORDS = 20_000
TEXT = " ".join(f"w{i}" for i in range(WORDS))


async def sdk_run(url: str, token: str, typed: bool) -> tuple[int, float, float]:
    client = AsyncOpenAI(api_key=token, websocket_base_url=url, base_url=url.replace("ws", "http"))
    async with client.realtime.connect(model="gpt-realtime") as conn:
        # Text output, as the Session asks for (the GA default is audio).
        await conn.send(
            {
                "type": "session.update",
                "session": {"type": "realtime", "output_modalities": ["text"]},
            }
        )
        await conn.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": TEXT}],
                },
            }
        )
        await conn.send({"type": "response.create"})
        events, start, cpu = 0, time.perf_counter(), time.process_time()
        while True:
            if typed:
                event_type = (await conn.recv()).type
            else:
                event_type = json.loads(await conn.recv_bytes())["type"]
            events += 1
            if event_type == "response.created":
                events, start, cpu = 0, time.perf_counter(), time.process_time()
            if event_type == "response.done":
                return events, time.perf_counter() - start, time.process_time() - cpu


def session_run(url: str, token: str) -> tuple[int, float, float]:
    session = Session(websocket_base_url=url, api_key=token).connect()
    counted = {"events": 0}

    def count(_session: Session, changes: object) -> None:
        counted["events"] += 1

    session.add_message(TEXT)
    session.subscribe(count)
    start, cpu = time.perf_counter(), time.process_time()
    result = session.create_response().wait(120)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    session.close()
    assert result.status == "completed"
    return counted["events"], elapsed, cpu


def main() -> None:
    with server_process() as (url, token):
        asyncio.run(sdk_run(url, token, typed=False))  # warm-up
        raw = asyncio.run(sdk_run(url, token, typed=False))
        typed = asyncio.run(sdk_run(url, token, typed=True))
        session = session_run(url, token)
    rows = {
        "raw recv_bytes + json.loads": raw,
        "SDK typed recv()": typed,
        "rt_notebook Session": session,
    }
    base = raw[2] / raw[0]
    print(f"ingest: one answer of {WORDS} words, server in a subprocess")
    for name, (events, seconds, cpu) in rows.items():
        per_event = cpu / events
        print(
            f"  {name:28s} {events:6d} events {events / seconds:8.0f} events/s"
            f" {per_event * 1e6:6.1f} us CPU/event  CPU ratio to raw {per_event / base:5.2f}"
        )


if __name__ == "__main__":
    main()
