"""A stand-in OpenAI-compatible Chat Completions server for tests (imported, not collected).

It listens on 127.0.0.1 in a thread with its own asyncio loop, records every request, and
answers ``POST /v1/chat/completions`` with a Server-Sent Events stream built from a
:class:`Reply`: text word by word, tool calls piece by piece, a finish reason and usage, or
an HTTP error, or garbage, or a stream that stalls until the client hangs up (to see
``response.cancel`` close the HTTP stream). Queued replies are used first, in order; then
``default`` (a callable of the request body). Without a queue it answers ``You said: ...``.

Run by hand for the tutorial: ``python tests/chat_standin.py`` prints its base URL.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

MODEL = "standin-model"


@dataclasses.dataclass
class Reply:
    text: str = ""
    calls: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (name, arguments)
    finish: str | None = None  # default: "tool_calls" with calls, else "stop"
    status: int = 200
    error: str = "something went wrong"
    usage: tuple[int, int] | None = (11, 7)
    stall_after: int | None = None  # chunks sent before stalling until the client hangs up
    drop_after: int | None = None  # chunks sent before closing the connection mid-answer
    garbage: bool = False


def echo_reply(body: dict[str, Any]) -> Reply:
    """The default answer: a tool call when asked to call one, else what the user said."""
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        return Reply(text=f"The tool said: {last.get('content')}")
    text = last.get("content") if isinstance(last.get("content"), str) else ""
    for tool in body.get("tools") or ():
        name = tool["function"]["name"]
        if name in text:  # "What is the weather in Oslo? Use the get_weather tool."
            place = re.search(r"\bin ([A-Z]\w+)", text)
            properties = tool["function"].get("parameters", {}).get("properties", {})
            arguments = {"city": place.group(1)} if place and "city" in properties else {}
            return Reply(calls=[(name, json.dumps(arguments))])
    return Reply(text=f"You said: {text}")


class ChatStandIn:
    """See the module docstring. ``models``: the model names it knows (others get 404)."""

    def __init__(self, models: tuple[str, ...] = (MODEL,)) -> None:
        self.models = models
        self.requests: list[dict[str, Any]] = []  # {"path", "headers", "body"}
        self.replies: collections.deque[Reply] = collections.deque()
        self.default: Callable[[dict[str, Any]], Reply] = echo_reply
        self.hung_up = threading.Event()  # a client closed a stalled stream
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ChatStandIn:
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the chat stand-in did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> ChatStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_requests(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.requests)} requests, expected {count}")
            time.sleep(0.01)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    key, value = line.split(":", 1)
                    headers[key.strip().lower()] = value.strip()
            body_bytes = await reader.readexactly(int(headers.get("content-length", "0")))
            body = json.loads(body_bytes) if body_bytes else {}
            self.requests.append({"method": method, "path": path, "headers": headers, "body": body})
            if method != "POST" or path != "/v1/chat/completions":
                await self._error(writer, 404, f"no route {path}")
                return
            if body.get("model") not in self.models:
                await self._error(writer, 404, f"model '{body.get('model')}' not found")
                return
            reply = self.replies.popleft() if self.replies else self.default(body)
            if reply.status != 200:
                await self._error(writer, reply.status, reply.error)
                return
            await self._stream(reader, writer, reply, body)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _error(self, writer: asyncio.StreamWriter, status: int, message: str) -> None:
        payload = json.dumps({"error": {"message": message, "type": "error", "code": None}})
        writer.write(
            f"HTTP/1.1 {status} Error\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n{payload}".encode()
        )
        await writer.drain()

    async def _stream(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        reply: Reply,
        body: dict[str, Any],
    ) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n"
        )
        if reply.garbage:
            writer.write(b"data: {this is not json\n\n")
            await writer.drain()
            return
        chunks = list(_chunks(reply, body))
        for index, chunk in enumerate(chunks):
            if reply.stall_after is not None and index == reply.stall_after:
                await writer.drain()
                await reader.read()  # returns at EOF: the client hung up
                self.hung_up.set()
                return
            if reply.drop_after is not None and index == reply.drop_after:
                await writer.drain()
                return  # no finish reason, no [DONE]: the connection just ends
            writer.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            await writer.drain()
            await asyncio.sleep(0)
        writer.write(b"data: [DONE]\n\n")
        await writer.drain()


def _chunks(reply: Reply, body: dict[str, Any]) -> list[dict[str, Any]]:
    base = {"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": 0}
    base["model"] = body.get("model", MODEL)

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {**base, "choices": [choice]}

    out = [chunk({"role": "assistant", "content": ""})]
    words = reply.text.split(" ")
    for index, word in enumerate(words if reply.text else []):
        out.append(chunk({"content": word if index == 0 else " " + word}))
    for index, (name, arguments) in enumerate(reply.calls):
        call_id = f"call_standin_{index}"
        first = {"index": index, "id": call_id, "type": "function"}
        out.append(chunk({"tool_calls": [{**first, "function": {"name": name, "arguments": ""}}]}))
        half = len(arguments) // 2
        for piece in (arguments[:half], arguments[half:]):
            if piece:
                out.append(
                    chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                )
    finish = reply.finish or ("tool_calls" if reply.calls else "stop")
    out.append(chunk({}, finish))
    if reply.usage is not None and (body.get("stream_options") or {}).get("include_usage"):
        prompt, completion = reply.usage
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        out.append({**base, "choices": [], "usage": usage})
    return out


if __name__ == "__main__":
    standin = ChatStandIn().start()
    print(f"chat stand-in at {standin.base_url} (model {MODEL}); Ctrl-C to stop", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        standin.stop()
