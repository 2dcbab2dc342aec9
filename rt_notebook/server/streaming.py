"""Sans-I/O streaming of an embedded server's response: its planned outputs become wire
events, tick by tick.

:class:`ResponseStreamer` owns the event sequence of one response, in the order of the
recorded captures (``tests/conformance/``, a GA text response in wire order):

- tick 1 after ``response.created``: nothing (the response "thinks");
- next tick: ``response.output_item.added``, ``conversation.item.added`` (conversation
  responses only) and, for messages, ``response.content_part.added``;
- one tick per delta: a text delta, a transcript delta with its beep, or a piece of
  function arguments;
- next tick: the content's ``.done`` events (``output_text.done`` / ``output_audio.done``
  then ``output_audio_transcript.done`` / ``function_call_arguments.done``, then
  ``content_part.done``);
- next tick: ``conversation.item.done`` and ``response.output_item.done``, then the next
  output opens in the same tick, or ``response.done`` closes the response.

A remote MCP call (:mod:`rt_notebook.server.remote_mcp`) streams its arguments the same
way (``response.mcp_call_arguments.delta``), closes them with ``.done`` and
``response.mcp_call.in_progress``, then waits for the MCP server's answer (the driver's);
the tick after it says ``response.mcp_call.completed`` (or ``.failed``) and closes the
item, whose output (or error) it carries. An approval request has no deltas.

Closing the content one tick before the item matters: a client that answers
``function_call_arguments.done`` with a ``function_call_output`` does so while the response
is still active, as in the captured tool round.

The streamer marks a finished response ``DONE``; what follows ``response.done`` on the
connection (deferred items, rate limits) is :mod:`rt_notebook.server.state`'s business.
"""

from __future__ import annotations

from rt_notebook.protocol.events import Event
from rt_notebook.server import shapes
from rt_notebook.server.items import ItemStore
from rt_notebook.server.plan import ActiveResponse, OutputKind, OutputStream, ResponsePhase
from rt_notebook.server.tone import beep

__all__ = ["ResponseStreamer", "response_usage"]

_STATUS_DETAILS: dict[str, Event | None] = {
    "completed": None,
    "cancelled": {"type": "cancelled", "reason": "client_cancelled"},
    "incomplete": {"type": "incomplete", "reason": "max_output_tokens"},
}


class ResponseStreamer:
    """Emits the events of active responses for one connection."""

    def __init__(self, wire: shapes.Wire, items: ItemStore, conversation_id: str) -> None:
        self.wire = wire
        self.items = items  # the connection's conversation (written by in-conversation output)
        self.conversation_id = conversation_id
        # Transcript deltas of spoken items, by item id, for conversation.item.truncate.
        self.spoken: dict[str, list[str]] = {}
        # Milliseconds of audio sent of echo items (the user's audio played back), by item id.
        self.echo_ms: dict[str, int] = {}
        # MCP calls whose arguments are complete: the state asks the driver to run them.
        self.mcp_ready: list[tuple[ActiveResponse, OutputStream]] = []

    # Public methods for the connection state

    def tick(self, response: ActiveResponse) -> list[Event]:
        """The events of ``response``'s next tick (see the module docstring)."""
        if response.phase is ResponsePhase.THINKING:
            response.phase = ResponsePhase.STREAMING
            if not response.streams:
                if not response.complete:
                    return []  # live: nothing has arrived yet
                return self.finish(response, _final_status(response))
            return self._open(response)
        if not response.open:  # live only: between two outputs, waiting for the next
            if response.cursor < len(response.streams):
                return self._open(response)
            return self.finish(response, _final_status(response)) if response.complete else []
        stream = response.streams[response.cursor]
        if stream.sent < len(stream.deltas):
            return self._delta(response, stream)
        if not stream.complete:
            return []  # live: more deltas to come
        if not stream.content_closed:
            return self._close_content(response, stream)
        out: list[Event] = []
        if stream.kind is OutputKind.MCP_CALL:
            if not stream.answered:
                response.waiting = True  # until the MCP server answers
                return []
            out += self._mcp_outcome(response, stream)
        out += self._close_item(response, stream, "incomplete" if stream.cut else "completed")
        response.cursor += 1
        response.open = False
        if response.cursor < len(response.streams):
            out.extend(self._open(response))
        elif response.complete:
            out.extend(self.finish(response, _final_status(response)))
        return out

    def cancel(
        self, response: ActiveResponse, status: str = "cancelled", reason: str | None = None
    ) -> list[Event]:
        """End ``response`` now: close an open item as incomplete, drop the rest.

        ``status`` is ``cancelled``, or ``failed`` when a live backend failed; ``reason``
        the cancellation's (``turn_detected`` when speech interrupted it; default
        ``client_cancelled``).
        """
        response.cancel_reason = reason
        if not response.open:
            response.streams = response.streams[: response.cursor]
            return self.finish(response, status)
        stream = response.streams[response.cursor]
        mcp = stream.kind in (OutputKind.MCP_CALL, OutputKind.MCP_APPROVAL)
        out = [] if stream.content_closed or mcp else self._close_content(response, stream)
        if stream.kind is OutputKind.MCP_CALL and not stream.answered:
            stream.item["error"] = {"type": "tool_execution_error", "message": "cancelled"}
        out.extend(self._close_item(response, stream, "incomplete"))
        response.cursor += 1
        response.open = False
        response.streams = response.streams[: response.cursor]
        out.extend(self.finish(response, status))
        return out

    def finish(self, response: ActiveResponse, status: str) -> list[Event]:
        """``response.done`` with ``status``; marks the response ``DONE``."""
        details = response.failure if status == "failed" else _STATUS_DETAILS[status]
        if status == "incomplete" and response.incomplete_reason is not None:
            details = {"type": "incomplete", "reason": response.incomplete_reason}
        if status == "cancelled" and response.cancel_reason is not None:
            details = {"type": "cancelled", "reason": response.cancel_reason}
        response.phase = ResponsePhase.DONE
        return [self.wire.event("response.done", response=self.render(response, status, details))]

    def render(self, response: ActiveResponse, status: str, details: Event | None = None) -> Event:
        """The ``response`` object: no output nor usage while in progress."""
        final = response.phase is ResponsePhase.DONE
        output = [stream.item for stream in response.finished_streams] if final else []
        return shapes.render_response(
            response_id=response.id,
            status=status,
            status_details=details,
            output=output,
            conversation_id=self.conversation_id if response.in_conversation else None,
            settings=response.settings,
            usage=response_usage(response) if final else None,
            dialect=self.wire.dialect,
        )

    # The steps of a stream

    def _open(self, response: ActiveResponse) -> list[Event]:
        stream = response.streams[response.cursor]
        response.open = True
        self._templates(response, stream)
        item = stream.item
        out = [
            self.wire.event(
                "response.output_item.added",
                response_id=response.id,
                output_index=response.cursor,
                item=self.wire.item(item),
            )
        ]
        if response.in_conversation:
            previous = self.items.insert(item)
            out.append(
                self.wire.event(
                    "conversation.item.added", previous_item_id=previous, item=self.wire.item(item)
                )
            )
        if stream.kind is OutputKind.AUDIO:
            part: Event = {"type": "audio", "transcript": ""}
        elif stream.kind is OutputKind.TEXT:
            part = {"type": "text", "text": ""}
        else:
            return out  # function calls have no content parts
        out.append(
            self.wire.event("response.content_part.added", **_where(response, stream), part=part)
        )
        return out

    def _delta(self, response: ActiveResponse, stream: OutputStream) -> list[Event]:
        # The hot path: one call per streamed word, built from the stream's templates.
        delta = stream.deltas[stream.sent]
        stream.sent += 1
        templates = stream.templates
        if stream.kind is OutputKind.AUDIO:
            if stream.pcm is None:
                return [templates[0](delta), templates[1](beep(stream.sent - 1))]
            # An echo: the user's audio in order; transcript deltas while words remain.
            out: list[Event] = [templates[0](delta)] if delta else []
            if stream.sent <= len(stream.pcm):
                out.append(templates[1](stream.pcm[stream.sent - 1]))
            return out
        return [templates[0](delta)]

    def _templates(self, response: ActiveResponse, stream: OutputStream) -> None:
        """Encode once what every delta event of ``stream`` repeats."""
        if stream.kind is OutputKind.FUNCTION_CALL:
            fields = {
                "response_id": response.id,
                "item_id": stream.item["id"],
                "output_index": response.cursor,
                "call_id": stream.item["call_id"],
            }
            stream.templates = (
                self.wire.delta_template("response.function_call_arguments.delta", fields),
            )
            return
        if stream.kind is OutputKind.MCP_CALL:
            fields = {
                "response_id": response.id,
                "item_id": stream.item["id"],
                "output_index": response.cursor,
            }
            stream.templates = (
                self.wire.delta_template("response.mcp_call_arguments.delta", fields),
            )
            return
        if stream.kind is OutputKind.MCP_APPROVAL:
            return  # no deltas: the request is whole when it is added
        where = _where(response, stream)
        if stream.kind is OutputKind.TEXT:
            stream.templates = (self.wire.delta_template("response.output_text.delta", where),)
            return
        stream.templates = (
            self.wire.delta_template("response.output_audio_transcript.delta", where),
            self.wire.delta_template("response.output_audio.delta", where, padded=False),
        )

    def _close_content(self, response: ActiveResponse, stream: OutputStream) -> list[Event]:
        stream.content_closed = True
        item = stream.item
        text = stream.text
        if stream.kind is OutputKind.MCP_APPROVAL:
            return []
        if stream.kind is OutputKind.MCP_CALL:
            item["arguments"] = text
            self._refresh(response, item)
            self.mcp_ready.append((response, stream))
            where = {"item_id": item["id"], "output_index": response.cursor}
            return [
                self.wire.event(
                    "response.mcp_call_arguments.done",
                    response_id=response.id,
                    **where,
                    arguments=text,
                ),
                self.wire.event("response.mcp_call.in_progress", **where),
            ]
        if stream.kind is OutputKind.FUNCTION_CALL:
            item["arguments"] = text
            self._refresh(response, item)
            return [
                self.wire.event(
                    "response.function_call_arguments.done",
                    response_id=response.id,
                    item_id=item["id"],
                    output_index=response.cursor,
                    call_id=item["call_id"],
                    name=stream.name,
                    arguments=text,
                )
            ]
        where = _where(response, stream)
        if stream.kind is OutputKind.AUDIO:
            item["content"] = [{"type": "output_audio", "transcript": text}]
            self.spoken[item["id"]] = stream.deltas[: stream.sent]
            if stream.pcm is not None:
                sent = stream.pcm[: stream.sent]
                self.echo_ms[item["id"]] = sum(len(chunk) * 3 // 4 for chunk in sent) // 48
            part: Event = {"type": "audio", "transcript": text}
            out = [
                self.wire.event("response.output_audio.done", **where),
                self.wire.event("response.output_audio_transcript.done", **where, transcript=text),
            ]
        else:
            item["content"] = [{"type": "output_text", "text": text}]
            part = {"type": "text", "text": text}
            out = [self.wire.event("response.output_text.done", **where, text=text)]
        self._refresh(response, item)
        out.append(self.wire.event("response.content_part.done", **where, part=part))
        return out

    def _refresh(self, response: ActiveResponse, item: Event) -> None:
        if response.in_conversation:
            self.items.refresh(item["id"])  # its content just changed: measure it again

    def _mcp_outcome(self, response: ActiveResponse, stream: OutputStream) -> list[Event]:
        """``response.mcp_call.completed`` or ``.failed``, as the MCP server answered."""
        self._refresh(response, stream.item)
        kind = "failed" if stream.item.get("error") else "completed"
        return [
            self.wire.event(
                f"response.mcp_call.{kind}",
                item_id=stream.item["id"],
                output_index=response.cursor,
            )
        ]

    def _close_item(
        self, response: ActiveResponse, stream: OutputStream, status: str
    ) -> list[Event]:
        item = stream.item
        if stream.kind not in (OutputKind.MCP_CALL, OutputKind.MCP_APPROVAL):
            item["status"] = status  # MCP items have no status
        out: list[Event] = []
        if response.in_conversation:
            # Captures: conversation.item.done of a text message repeats its
            # previous_item_id; of an audio message or a function call it is null.
            previous = (
                self.items.previous_id(item["id"]) if stream.kind is OutputKind.TEXT else None
            )
            out += self.wire.optional_event(
                "conversation.item.done", previous_item_id=previous, item=self.wire.item(item)
            )
        out.append(
            self.wire.event(
                "response.output_item.done",
                response_id=response.id,
                output_index=response.cursor,
                item=self.wire.item(item),
            )
        )
        return out


def _where(response: ActiveResponse, stream: OutputStream) -> Event:
    return {
        "response_id": response.id,
        "item_id": stream.item["id"],
        "output_index": response.cursor,
        "content_index": 0,
    }


def _final_status(response: ActiveResponse) -> str:
    if response.budget_hit or response.incomplete_reason is not None:
        return "incomplete"
    return "completed"


def response_usage(response: ActiveResponse) -> Event:
    """The ``usage`` of a finished response (see :mod:`rt_notebook.server.plan` for units).

    A live backend's own counts, when it reported them.
    """
    if response.usage is not None:
        return response.usage
    streams = response.finished_streams
    spoken = sum(stream.sent for stream in streams if stream.kind is OutputKind.AUDIO)
    written = sum(stream.sent for stream in streams if stream.kind is not OutputKind.AUDIO)
    started = bool(streams)  # a response cancelled before any output read nothing
    return shapes.usage(
        input_text=response.input_text_tokens if started else 0,
        input_audio=response.input_audio_tokens if started else 0,
        output_text=written + spoken,  # a transcript counts as text, as on the service
        output_audio=spoken,  # one audio token per beep
    )
