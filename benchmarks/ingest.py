"""Ingest benchmark: server events per second through the Session, against the raw SDK.

Three consumers read the same streamed answer (N deltas) from the embedded server running in
a subprocess: the SDK's raw ``recv_bytes()`` + ``json.loads`` loop (the floor), the SDK's
typed ``recv()`` iteration, and rt_notebook's Session (mirror + routing + subscribers).
Prints events per second for each and the ratios to the raw loop.
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


async def sdk_run(url: str, token: str, typed: bool) -> tuple[int, float]:
    client = AsyncOpenAI(api_key=token, websocket_base_url=url, base_url=url.replace("ws", "http"))
    async with client.realtime.connect(model="gpt-realtime") as conn:
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
        events, start = 0, time.perf_counter()
        while True:
            if typed:
                event_type = (await conn.recv()).type
            else:
                event_type = json.loads(await conn.recv_bytes())["type"]
            events += 1
            if event_type == "response.created":
                events, start = 0, time.perf_counter()
            if event_type == "response.done":
                return events, time.perf_counter() - start


def session_run(url: str, token: str) -> tuple[int, float]:
    session = Session(websocket_base_url=url, api_key=token).connect()
    counted = {"events": 0}

    def count(_session: Session, changes: object) -> None:
        counted["events"] += 1

    session.add_message(TEXT)
    session.subscribe(count)
    start = time.perf_counter()
    result = session.create_response().wait(120)
    elapsed = time.perf_counter() - start
    session.close()
    assert result.status == "completed"
    return counted["events"], elapsed


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
    base = raw[0] / raw[1]
    print(f"ingest: one answer of {WORDS} words, server in a subprocess")
    for name, (events, seconds) in rows.items():
        rate = events / seconds
        print(
            f"  {name:30s} {events:7d} events {rate:10.0f} events/s"
            f"  ratio to raw {rate / base:5.2f}"
        )


if __name__ == "__main__":
    main()
