"""Sans-I/O mapping of the embedded server between the Realtime protocol and Chat Completions,
both directions.

- :func:`chat_request`: a response's settings and items become the keyword arguments of
  ``chat.completions.create`` (instructions → a system message; user, system and assistant
  messages in order; function calls → an assistant message's ``tool_calls``; function
  outputs → ``tool`` messages; tools, ``tool_choice``, ``max_output_tokens`` →
  ``max_tokens``);
- :class:`ChunkReader`: each streamed chunk (as a plain dict) becomes
  :mod:`~rt_notebook.server.live` updates (text, function-call pieces, the finish reason,
  usage);
- :func:`describe_failure`: an ``openai`` SDK exception becomes the ``error`` the Realtime
  client is sent, in words that say what to fix.

No sockets here: :mod:`rt_notebook.server.chat_backend` sends and receives.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from rt_notebook.protocol.events import Event
from rt_notebook.redaction import scrub
from rt_notebook.server.errors import ErrorInfo
from rt_notebook.server.live import CallDelta, Finished, LiveUpdate, TextDelta, UsageReport
from rt_notebook.server.responders import ResponseRequest

__all__ = [
    "ChunkReader",
    "carries_images",
    "chat_messages",
    "chat_request",
    "chat_tools",
    "cut_short",
    "describe_failure",
]

_TEXT_PARTS = ("input_text", "output_text", "text")
_AUDIO_PARTS = ("input_audio", "output_audio", "audio")


def chat_request(request: ResponseRequest, model: str) -> dict[str, Any]:
    """Keyword arguments of a streamed ``chat.completions.create`` for ``request``."""
    params: dict[str, Any] = {
        "model": model,
        "messages": chat_messages(request.instructions, request.context),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    tools = chat_tools(request.tools)
    if tools and request.tool_choice != "none":
        params["tools"] = tools
        params["tool_choice"] = _tool_choice(request.tool_choice)
    if request.max_output_tokens is not None:
        params["max_tokens"] = request.max_output_tokens
    return params


def chat_messages(instructions: str, context: Sequence[Event]) -> list[dict[str, Any]]:
    """Chat messages for ``instructions`` and the items ``context`` (oldest first)."""
    messages: list[dict[str, Any]] = []
    if instructions.strip():
        messages.append({"role": "system", "content": instructions})
    for item in context:
        kind = item.get("type")
        if kind == "message":
            messages.append(_message(item))
        elif kind == "function_call":
            call = {
                "id": str(item.get("call_id") or item.get("id")),
                "type": "function",
                "function": {
                    "name": str(item.get("name", "")),
                    "arguments": str(item.get("arguments") or "{}"),
                },
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)  # parallel calls: one assistant message
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": str(item.get("call_id")),
                    "content": str(item.get("output", "")),
                }
            )
    return messages


def chat_tools(tools: Sequence[Event]) -> list[dict[str, Any]]:
    """Realtime function tools as Chat Completions tools."""
    converted = []
    for tool in tools:
        function = {"name": tool.get("name", "")}
        if tool.get("description"):
            function["description"] = tool["description"]
        function["parameters"] = tool.get("parameters") or {"type": "object", "properties": {}}
        converted.append({"type": "function", "function": function})
    return converted


def _tool_choice(choice: object) -> object:
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice if choice in ("auto", "required") else "auto"


def _message(item: Event) -> dict[str, Any]:
    role = item.get("role")
    role = role if role in ("system", "assistant") else "user"
    texts: list[str] = []
    images: list[str] = []
    for part in item.get("content") or ():
        kind = part.get("type")
        if kind in _TEXT_PARTS:
            texts.append(str(part.get("text") or ""))
        elif kind in _AUDIO_PARTS:
            transcript = part.get("transcript")
            texts.append(transcript or "(audio without a transcript: this model hears no audio)")
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            images.append(part["image_url"])
    text = "\n\n".join(piece for piece in texts if piece)
    if images and role == "user":
        parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        parts += [{"type": "image_url", "image_url": {"url": url}} for url in images]
        return {"role": role, "content": parts}
    return {"role": role, "content": text}


class ChunkReader:
    """Turns streamed chunks (``ChatCompletionChunk`` as dicts) into live updates.

    The finish reason is held until :meth:`close`: usage comes in a chunk after it, and
    the response ends only once the stream does.
    """

    def __init__(self) -> None:
        self.finish_reason: str | None = None
        self.closed = False

    def read(self, chunk: Mapping[str, Any]) -> list[LiveUpdate]:
        """The updates one chunk carries, in order."""
        updates: list[LiveUpdate] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # n > 1 is never asked for
            delta = choice.get("delta") or {}
            if delta.get("content"):
                updates.append(TextDelta(str(delta["content"])))
            for call in delta.get("tool_calls") or ():
                function = call.get("function") or {}
                updates.append(
                    CallDelta(
                        index=int(call.get("index") or 0),
                        arguments=str(function.get("arguments") or ""),
                        call_id=call.get("id") or None,
                        name=function.get("name") or None,
                    )
                )
            if choice.get("finish_reason") and self.finish_reason is None:
                self.finish_reason = str(choice["finish_reason"])
        usage = chunk.get("usage")
        if isinstance(usage, Mapping):
            updates.append(
                UsageReport(
                    input_tokens=int(usage.get("prompt_tokens") or 0),
                    output_tokens=int(usage.get("completion_tokens") or 0),
                )
            )
        return updates

    def close(self) -> list[LiveUpdate]:
        """The update at the end of the stream: its finish reason (``stop`` if none came)."""
        if self.closed:
            return []
        self.closed = True
        return [Finished(self.finish_reason or "stop")]


def describe_failure(
    exc: BaseException, *, base_url: str, model: str, images: bool = False
) -> ErrorInfo:
    """The Realtime ``error`` for a failed Chat Completions request (keys scrubbed);
    ``images``: whether the request carried any (a refusal that names them then says the
    model takes no images)."""
    import openai  # loaded by the request that failed already; not at server start

    where = f"the chat endpoint {base_url}"
    if images and isinstance(exc, openai.APIStatusError) and _about_images(exc):
        return _info(
            "chat_model_takes_no_images",
            f"The local model {model!r} takes no images, and this conversation holds one "
            f"({where} refused it, HTTP {exc.status_code}): use a model that reads images, "
            f"or start a new conversation (%realtime reset) without them. {_detail(exc)}",
        )
    if isinstance(exc, openai.APITimeoutError):
        return _info("chat_endpoint_timeout", f"{where} did not answer in time.", server=True)
    if isinstance(exc, openai.APIConnectionError):
        return _info(
            "chat_endpoint_unreachable",
            f"Cannot reach {where}: is the model server running? ({_cause(exc)})",
            server=True,
        )
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        detail = _detail(exc)
        if status in (401, 403):
            return _info(
                "chat_endpoint_unauthorized",
                f"{where} refused the key (HTTP {status}): set RT_NOTEBOOK_CHAT_API_KEY "
                f"to a key it accepts. {detail}",
            )
        if status == 404:
            return _info(
                "chat_model_not_found",
                f"{where} has no model {model!r} or no /chat/completions (HTTP 404): check "
                f"the model name and that the URL ends in /v1. {detail}",
            )
        if status >= 500:
            return _info(
                "chat_endpoint_error", f"{where} failed (HTTP {status}). {detail}", server=True
            )
        return _info(
            "chat_request_rejected", f"{where} rejected the request (HTTP {status}). {detail}"
        )
    if isinstance(exc, openai.OpenAIError | json.JSONDecodeError | ValueError):
        return _info(
            "chat_endpoint_error",
            f"{where} sent something that is not a Chat Completions stream ({_cause(exc)}).",
            server=True,
        )
    return _info("backend_error", f"The chat backend failed: {type(exc).__name__}.", server=True)


def cut_short(base_url: str) -> ErrorInfo:
    """The error of a stream that ended before its finish reason (the server went away)."""
    return _info(
        "chat_stream_cut",
        f"The chat endpoint {base_url} closed the stream before the end of the answer.",
        server=True,
    )


def _info(code: str, message: str, *, server: bool = False) -> ErrorInfo:
    return ErrorInfo(
        code=code,
        message=scrub(message.strip()),
        type="server_error" if server else "invalid_request_error",
    )


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    text = str(cause) or type(cause).__name__
    return text[:300]


# How OpenAI-compatible servers refuse images for a text-only model: vLLM ("not a
# multimodal model", "At most 0 image(s)"), llama.cpp ("image input is not supported ...
# mmproj"), LM Studio ("Model does not support images"), Ollama, OpenAI ("image_url is
# only supported by certain models").
_IMAGE_REFUSAL = re.compile(r"image|vision|multi-?modal|mmproj", re.IGNORECASE)


def carries_images(prepared: Mapping[str, Any]) -> bool:
    """Whether a Chat Completions request holds an ``image_url`` part."""
    for message in prepared.get("messages") or ():
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list) and any(
            isinstance(part, Mapping) and part.get("type") == "image_url" for part in content
        ):
            return True
    return False


def _about_images(exc: Any) -> bool:
    if exc.status_code in (401, 403, 404):
        return False  # the key or the model name, whatever else the message says
    return bool(_IMAGE_REFUSAL.search(_detail(exc) or str(getattr(exc, "message", ""))))


def _detail(exc: Any) -> str:
    body = exc.body
    if isinstance(body, Mapping):
        message = body.get("message")
        if isinstance(body.get("error"), Mapping):
            message = body["error"].get("message") or message
        elif isinstance(body.get("error"), str):
            message = body["error"]
        if message:
            return f"It said: {str(message)[:300]}"
    return ""
