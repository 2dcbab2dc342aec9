""":mod:`asyncio` Chat Completions backend of the embedded server: a local model behind Realtime.

:class:`ChatResponder` is a :class:`~rt_notebook.server.live.LiveResponder`: each response
is one streamed ``chat.completions.create`` call through the ``openai`` SDK's async client,
to any OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp's server, LM Studio…). The
mapping both ways is :mod:`rt_notebook.server.chat_mapping`; this module only sends the
request and reads the stream. Cancelling the task that iterates :meth:`ChatResponder.stream`
closes the HTTP stream at once (``response.cancel``).

The key, if the endpoint needs one, comes from ``RT_NOTEBOOK_CHAT_API_KEY`` only (never a
command-line argument) and is registered with :mod:`rt_notebook.redaction`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

from rt_notebook.redaction import register_secret
from rt_notebook.server.chat_mapping import (
    ChunkReader,
    carries_images,
    chat_request,
    cut_short,
    describe_failure,
)
from rt_notebook.server.live import LiveError, LiveUpdate
from rt_notebook.server.responders import ResponseRequest

__all__ = ["CHAT_KEY_VARIABLE", "ChatResponder"]

CHAT_KEY_VARIABLE = "RT_NOTEBOOK_CHAT_API_KEY"
_NO_KEY = "no-key"  # the SDK insists on a key; local servers ignore it


class ChatResponder:
    """Answers each response from ``model`` at the Chat Completions endpoint ``base_url``."""

    name = "chat"

    def __init__(self, base_url: str, model: str, *, timeout: float = 600.0) -> None:
        if not base_url or not model:
            raise ValueError("the chat backend needs a base URL and a model name")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = timeout
        # Made on first use on the server's event loop (again if the server restarts on
        # another loop: its connection pool belongs to the loop that made it).
        self._client: Any = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def describe(self) -> str:
        return f"local model {self.model} via {self.base_url}"

    def prepare(self, request: ResponseRequest) -> dict[str, Any]:
        return chat_request(request, self.model)

    async def stream(self, prepared: Any) -> AsyncIterator[list[LiveUpdate]]:
        reader = ChunkReader()
        try:
            chunks = await self._chat().chat.completions.create(**prepared)
            async with chunks:  # closes the HTTP stream on cancellation too
                async for chunk in chunks:
                    updates = reader.read(chunk.model_dump(exclude_unset=True))
                    if updates:
                        yield updates
        except Exception as exc:
            images = carries_images(prepared)
            raise LiveError(
                describe_failure(exc, base_url=self.base_url, model=self.model, images=images)
            ) from exc
        if reader.finish_reason is None:
            raise LiveError(cut_short(self.base_url))
        yield reader.close()

    def _chat(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            from openai import AsyncOpenAI

            key = os.environ.get(CHAT_KEY_VARIABLE) or None
            register_secret(key)
            self._client = AsyncOpenAI(
                api_key=key or _NO_KEY,
                base_url=self.base_url,
                timeout=self.timeout,
                max_retries=0,  # a failure is reported at once; the user retries the cell
            )
            self._client_loop = loop
        return self._client

    def __repr__(self) -> str:
        return f"ChatResponder(model={self.model!r}, base_url={self.base_url!r})"
