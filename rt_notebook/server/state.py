"""Sans-I/O state of one Realtime connection, as the embedded server sees it.

:class:`ConnectionState` never touches a socket, a clock or a thread. A driver feeds it the
client's frames and sends what it returns:

- :meth:`~ConnectionState.start` gives ``session.created``, the first frame;
- :meth:`~ConnectionState.receive_text` / :meth:`~ConnectionState.receive_bytes` validate a
  frame and return at once the errors it causes, so validation errors overtake the
  acknowledgements of events received earlier, as on the real service; valid events are
  queued;
- :meth:`~ConnectionState.process` applies the queued events in order (acknowledgements,
  ``response.created``, cancellations, errors that depend on state);
- :meth:`~ConnectionState.advance` moves every active response one tick
  (:mod:`rt_notebook.server.streaming` says what a tick sends). The driver waits its pace
  between ticks; tests call it in a loop.

The responder (:mod:`rt_notebook.server.responders`) decides what a response says when it is
created (:mod:`rt_notebook.server.plan`); this module keeps the session, the conversation,
the input audio buffer and the active responses, and does what follows ``response.done``:
tool results sent during the response are added, and in GA ``rate_limits.updated`` follows
one tick later.

Input audio: with turn detection on (``server_vad``, the service's default, or
``semantic_vad``, treated the same offline) every append goes through an energy detector
(:mod:`rt_notebook.server.vad`): ``speech_started`` (which cancels the active response when
``interrupt_response``, as the service does), then ``speech_stopped``, ``committed`` with the
speech as a user audio item, and (with ``create_response``) a response. With turn detection
``null`` the client commits. With ``idle_timeout_ms`` (GA), a pause that long after the last
answer finished playing gives ``timeout_triggered``, the silence committed, and an answer.
An audio answer to audio plays the user's own audio back with the transcript
"[offline echo of 2.4 s of audio]"; with input transcription on, the user's item gets
"[offline: no transcription of 2.4 s of audio]".
"""

from __future__ import annotations

import base64
import binascii
import collections
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, cast

from rt_notebook.protocol.events import Dialect, Event, new_id
from rt_notebook.server import errors, shapes
from rt_notebook.server.errors import ErrorInfo, error_event
from rt_notebook.server.frames import parse_client_frame
from rt_notebook.server.items import ContextView, ItemStore
from rt_notebook.server.limits import MAX_CONVERSATION_CHARS, MAX_INPUT_AUDIO_BYTES, item_chars
from rt_notebook.server.live import (
    AUDIO_NOTICE,
    LiveResponder,
    LiveUpdate,
    TextDelta,
    apply_updates,
    failure_details,
)
from rt_notebook.server.plan import (
    ActiveResponse,
    OutputKind,
    OutputStream,
    ResponsePhase,
    count_input_tokens,
    item_size,
    plan_streams,
    split_text,
)
from rt_notebook.server.remote_mcp import McpOutcome, McpRequest, RemoteMcp, result_message
from rt_notebook.server.responders import PlannedOutput, Responder, ResponseRequest
from rt_notebook.server.streaming import ResponseStreamer, response_usage
from rt_notebook.server.tone import BEEP_MS, beep_bytes
from rt_notebook.server.truncation import truncated
from rt_notebook.server.vad import EnergyVad, IdleTimeout, SpeechStarted
from rt_notebook.server.validation import validate_client_event

__all__ = ["ConnectionState"]

CLOSE_GOING_AWAY = 1001
MAX_APPEND_CHARS = 15 * 1024 * 1024
MIN_COMMIT_MS = 100
ECHO_CHUNK_BYTES = 4800  # 100 ms of PCM16 24 kHz mono per echoed audio delta
RATE_LIMIT_REQUESTS = 10_000
RATE_LIMIT_TOKENS = 2_000_000


class ConnectionState:
    """Sans-I/O state machine of one Realtime connection (see the module docstring)."""

    def __init__(
        self,
        *,
        model: str,
        dialect: Dialect,
        responder: Responder | LiveResponder,
        now: float,
        max_session_seconds: float | None = None,
        on_responder_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.dialect = dialect
        # How long the session may last (the service: 60 minutes); the driver keeps time.
        self.lifetime = (
            shapes.SESSION_LIFETIME_S if max_session_seconds is None else max_session_seconds
        )
        self.responder = responder
        self.wire = shapes.Wire(dialect)
        # Session in the dialect's own wire shape (what session.updated echoes).
        self.session: Event = shapes.default_session(
            dialect,
            model=model,
            responder_name=responder.name,
            now=now,  # Unix time of the connection, for the session's expires_at
            lifetime=self.lifetime,
        )
        self.live = isinstance(responder, LiveResponder)
        if self.live:
            # A real model reads the instructions: none until the client sets some.
            self.session["instructions"] = ""
        # Live responses created since the driver last asked: (response id, prepared request).
        self._live_starts: list[tuple[str, Any]] = []
        self.conversation_id = new_id("conv")
        # The default conversation's items, canonical GA shape.
        self.conversation = ItemStore(measure=item_size)
        self.streamer = ResponseStreamer(self.wire, self.conversation, self.conversation_id)
        # Remote MCP servers of the session's tools (their I/O is the driver's).
        self.mcp = RemoteMcp(self.wire, self.conversation)
        # Valid client events waiting for process().
        self._queue: collections.deque[Event] = collections.deque()
        # Active responses in creation order (at most one in the conversation).
        self._responses: list[ActiveResponse] = []
        # function_call_output items sent while the conversation's response was active,
        # with their client event: added right after that response's response.done.
        self._deferred: list[tuple[Event, Event]] = []
        # Events due at the next tick (GA rate_limits.updated follows response.done).
        self._trailers: list[Event] = []
        # Input audio appended since the last commit or clear.
        self._audio_buffer = bytearray()
        # Bytes of input audio appended before the buffer's first byte, this session.
        self._buffer_base = 0
        # The energy detector and the turn detection settings it was made for (VAD on).
        self._vad: EnergyVad | None = None
        self._vad_settings: Any = None
        # While speech goes on: the id its item will have, and where it started (ms).
        self._vad_item_id: str | None = None
        self._vad_start_ms = 0
        # Tokens used by finished responses (reported by rate_limits.updated).
        self._tokens_used = 0
        # advance() calls so far; a response created since the last one waits a tick.
        self._ticks = 0
        self._on_responder_error = on_responder_error

    # Public methods for the driver

    def start(self) -> list[Event]:
        """The frames to send right after the upgrade: ``session.created``."""
        return [self.wire.event("session.created", session=self._session_copy())]

    def receive_text(self, text: str) -> list[Event]:
        """Take one text frame; return the errors to send now (valid events are queued)."""
        event = parse_client_frame(text)  # never raises: deep, huge, lone surrogates
        if isinstance(event, ErrorInfo):
            return [error_event(event)]
        if not isinstance(event, dict):
            return [error_event(errors.invalid_type("event", "an object", _describe(event)))]
        problem = validate_client_event(event, self.dialect)
        if problem is not None:
            return [error_event(problem, _client_id(event))]
        self._queue.append(event)
        return []

    def receive_bytes(self, data: bytes) -> list[Event]:
        """Take one binary frame: the service accepts none."""
        return [error_event(errors.binary_frame())]

    def process(self) -> list[Event]:
        """Apply the queued client events in order; return the events they produce."""
        out: list[Event] = []
        while self._queue and not self._held():
            event = self._queue.popleft()
            out.extend(self._HANDLERS[event["type"]](self, event))
        return out

    def _held(self) -> bool:
        """Whether the next client event waits: a ``response.create`` while an MCP server's
        listing is under way, until the listing's result has gone out (as on the service,
        where the model is offered what the listing found)."""
        if self._queue[0]["type"] != "response.create":
            return False
        return self.mcp.listing() or any(
            event["type"].startswith("mcp_list_tools.") for event in self._trailers
        )

    def advance(self) -> list[Event]:
        """Move every active response one tick; return the events of that tick."""
        self._ticks += 1
        out, self._trailers = self._trailers, []
        for response in list(self._responses):
            if response.born_tick == self._ticks - 1:
                continue  # created since the last tick: it thinks for one tick first
            if response.live:
                out.extend(self._drain(response))
            else:
                out.extend(self.streamer.tick(response))
            out.extend(self._after_done(response))
        self._ask_mcp_calls()
        return out

    def take_mcp_requests(self) -> list[McpRequest]:
        """Listings and calls of remote MCP servers for the driver to make (effects)."""
        return self.mcp.take_requests()

    def mcp_listed(self, item_id: str, tools: Sequence[Event] | None) -> None:
        """The driver listed an MCP server's tools (``None``: it could not); sent next tick."""
        self._trailers.extend(self.mcp.listed(item_id, tools))

    def mcp_called(self, response_id: str, item_id: str, outcome: McpOutcome) -> None:
        """The driver's answer to a call: the response goes on at its next tick."""
        response = self._active(response_id)
        if response is None or response.phase is ResponsePhase.DONE:
            return  # cancelled meanwhile
        stream = next((s for s in response.streams if s.item["id"] == item_id), None)
        if stream is None or stream.answered:
            return
        stream.item["output"] = outcome.output
        stream.item["error"] = outcome.error
        stream.answered = True
        response.waiting = False
        response.streams.append(result_message(stream))  # the model's words on the result

    def _ask_mcp_calls(self) -> None:
        for response, stream in self.streamer.mcp_ready:
            asked = self.mcp.call_request(response.id, stream)
            if isinstance(asked, McpOutcome):  # cannot run: answered at once
                self.mcp_called(response.id, stream.item["id"], asked)
        self.streamer.mcp_ready.clear()

    def take_live_starts(self) -> list[tuple[str, Any]]:
        """Live responses to start streaming: (response id, what the responder prepared)."""
        starts, self._live_starts = self._live_starts, []
        return starts

    def feed(self, response_id: str, updates: Sequence[LiveUpdate]) -> None:
        """Updates a live backend streamed for ``response_id`` (ignored once it ended)."""
        response = self._active(response_id)
        if response is not None:
            apply_updates(response, updates)
            response.waiting = False

    def fail(self, response_id: str, info: ErrorInfo) -> None:
        """A live backend failed: the next tick sends ``info`` as an ``error`` and fails it."""
        response = self._active(response_id)
        if response is not None and response.phase is not ResponsePhase.DONE:
            response.error = info
            response.waiting = False

    @property
    def waiting(self) -> bool:
        """Whether every active response waits for its live backend (ticks would do nothing)."""
        return (
            bool(self._responses)
            and not self._trailers
            and all(response.waiting for response in self._responses)
        )

    def expire(self) -> tuple[list[Event], int, str]:
        """The end of the session at its maximum duration: (events, close code, reason).

        As on the service: an ``error`` with code ``session_expired``, then close 1001 with
        the error's message as the reason.
        """
        problem = errors.session_expired(self.lifetime)
        return [error_event(problem)], CLOSE_GOING_AWAY, problem.message

    @property
    def pending(self) -> bool:
        """Whether :meth:`process` has queued events to apply."""
        return bool(self._queue) and not self._held()

    @property
    def streaming(self) -> bool:
        """Whether :meth:`advance` has work (active responses or trailing events)."""
        return bool(self._responses or self._trailers)

    # Public methods for inspection (tests, debugging)

    @property
    def items(self) -> list[Event]:
        """The conversation items in order (GA shape, copies)."""
        return [shapes.render_item(item, Dialect.GA) for item in self.conversation]

    @property
    def active_response_ids(self) -> list[str]:
        return [response.id for response in self._responses]

    def _active(self, response_id: str) -> ActiveResponse | None:
        return next((r for r in self._responses if r.id == response_id), None)

    def _drain(self, response: ActiveResponse) -> list[Event]:
        """Everything a live response can send now (its backend may have sent many tokens)."""
        if response.error is not None:
            info, response.error = response.error, None
            response.failure = failure_details(info)
            return [error_event(info), *self.streamer.cancel(response, "failed")]
        out: list[Event] = []
        while response.phase is not ResponsePhase.DONE:
            step = self.streamer.tick(response)
            if not step:
                break
            out.extend(step)
        response.waiting = response.phase is not ResponsePhase.DONE
        return out

    # Handlers of client events (process())

    def _session_update(self, event: Event) -> list[Event]:
        merged = shapes.merge_session(self.session, event["session"], self.dialect)
        choice = merged.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") == "function":
            # As the service: a forced function must be one of the session's tools; the
            # whole update is refused.
            names = [tool.get("name") for tool in merged.get("tools") or ()]
            if choice.get("name") not in names:
                return [self._error(errors.tool_choice_not_found(choice.get("name")), event)]
        self.session = merged
        updated = self.wire.event("session.updated", session=self._session_copy())
        return [updated, *self.mcp.configure(merged.get("tools") or [])]

    def _item_create(self, event: Event) -> list[Event]:
        previous = event.get("previous_item_id")
        if not self.conversation.can_follow(previous):
            problem = errors.item_not_found("create", str(previous), "previous_item_id")
            return [self._error(problem, event)]
        item = shapes.normalize_item(event["item"])
        if item["id"] in self.conversation:
            return [self._error(errors.duplicate_item_id(item["id"]), event)]
        if self.conversation.chars + item_chars(item) > MAX_CONVERSATION_CHARS:
            problem = errors.conversation_too_large(MAX_CONVERSATION_CHARS, self.conversation.chars)
            return [self._error(problem, event)]
        if item["type"] == "function_call_output" and self._conversation_response() is not None:
            # The service acknowledges tool results only after the running response ends.
            self._deferred.append((item, event))
            return []
        return self._add(item, previous)

    def _item_retrieve(self, event: Event) -> list[Event]:
        item = self.conversation.get(event["item_id"])
        if item is None:
            problem = errors.item_not_found("retrieve", event["item_id"], "item_id")
            return [self._error(problem, event)]
        return [self.wire.event("conversation.item.retrieved", item=self.wire.item(item))]

    def _item_delete(self, event: Event) -> list[Event]:
        item = self.conversation.remove(event["item_id"])
        if item is None:
            problem = errors.item_not_found("delete", event["item_id"], "item_id")
            return [self._error(problem, event)]
        self.streamer.spoken.pop(item["id"], None)
        return [self.wire.event("conversation.item.deleted", item_id=item["id"])]

    def _item_truncate(self, event: Event) -> list[Event]:
        item_id, index, end_ms = event["item_id"], event["content_index"], event["audio_end_ms"]
        item = self.conversation.get(item_id)
        if item is None:
            return [self._error(errors.item_not_found("truncate", item_id, "item_id"), event)]
        content = item.get("content") or []
        if item.get("role") != "assistant" or not 0 <= index < len(content):
            problem = errors.truncate_invalid(
                f"Invalid 'content_index': item '{item_id}' has no assistant content part {index}.",
                "content_index",
            )
            return [self._error(problem, event)]
        part = content[index]
        if part.get("type") != "output_audio":
            problem = errors.truncate_invalid(
                f"Invalid 'content_index': content part {index} of item '{item_id}' is not audio.",
                "content_index",
            )
            return [self._error(problem, event)]
        spoken = self.streamer.spoken.get(item_id, [])
        echo_ms = self.streamer.echo_ms.get(item_id)
        duration = len(spoken) * BEEP_MS if echo_ms is None else echo_ms
        if not 0 <= end_ms <= duration:
            problem = errors.truncate_invalid(
                f"Invalid 'audio_end_ms': {end_ms} is outside the item's audio (0-{duration} ms).",
                "audio_end_ms",
            )
            return [self._error(problem, event)]
        if echo_ms is not None:
            self.streamer.echo_ms[item_id] = end_ms
            part["transcript"] = _echo_transcript(end_ms * 48)
        else:
            # Keep the words whose beep had finished playing: what the user heard.
            kept = spoken[: end_ms // BEEP_MS]
            self.streamer.spoken[item_id] = kept
            part["transcript"] = "".join(kept)
        self.conversation.refresh(item_id)
        truncated = self.wire.event(
            "conversation.item.truncated", item_id=item_id, content_index=index, audio_end_ms=end_ms
        )
        return [truncated]

    def _audio_append(self, event: Event) -> list[Event]:
        audio = event["audio"]
        if len(audio) > MAX_APPEND_CHARS:
            problem = errors.too_long("audio", limit=MAX_APPEND_CHARS, got=len(audio))
            return [self._error(problem, event)]
        try:
            pcm = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            return [self._error(errors.invalid_audio("audio"), event)]
        if len(self._audio_buffer) + len(pcm) > MAX_INPUT_AUDIO_BYTES:
            problem = errors.audio_buffer_full(MAX_INPUT_AUDIO_BYTES, len(self._audio_buffer))
            return [self._error(problem, event)]
        start = self._buffer_base + len(self._audio_buffer)
        self._audio_buffer += pcm
        detection = self._turn_detection()
        if detection is None:
            self._vad = None
            return []
        if self._vad is None or self._vad_settings != detection:
            # The idle timeout is GA's (beta has neither the setting nor the event).
            ga = self.dialect is Dialect.GA
            self._vad = EnergyVad(detection if ga else {**detection, "idle_timeout_ms": None})
            self._vad.position = start
            self._vad_settings = detection
            if self._conversation_response() is not None:
                self._vad.hold()
        out: list[Event] = []
        for change in self._vad.feed(pcm):
            if isinstance(change, SpeechStarted):
                out.extend(self._speech_started(change, detection))
            elif isinstance(change, IdleTimeout):
                out.extend(self._idle_timeout(change))
            else:
                out.extend(self._speech_stopped(change.audio_end_ms, change.detected_ms, detection))
        return out

    def _audio_commit(self, event: Event) -> list[Event]:
        buffered_ms = len(self._audio_buffer) / shapes.input_bytes_per_ms(
            self.session, self.dialect
        )
        if buffered_ms < MIN_COMMIT_MS:
            return [self._error(errors.commit_empty(buffered_ms), event)]
        pcm = bytes(self._audio_buffer)
        self._empty_buffer()
        return self._commit_pcm(pcm, None)

    def _audio_clear(self, event: Event) -> list[Event]:
        self._empty_buffer()
        return [self.wire.event("input_audio_buffer.cleared")]

    def _empty_buffer(self) -> None:
        self._buffer_base += len(self._audio_buffer)
        self._audio_buffer.clear()
        self._vad_item_id = None
        if self._vad is not None:
            self._vad.reset()

    def _commit_pcm(self, pcm: bytes, item_id: str | None) -> list[Event]:
        """``committed``, the user audio item, and its offline transcription if asked for."""
        held = self.conversation.chars
        if held + (len(pcm) + 2) // 3 * 4 > MAX_CONVERSATION_CHARS:  # its base64, before making it
            return [error_event(errors.conversation_too_large(MAX_CONVERSATION_CHARS, held))]
        audio = base64.b64encode(pcm).decode("ascii")
        content = [{"type": "input_audio", "audio": audio, "transcript": None}]
        wire: Event = {"type": "message", "role": "user", "content": content}
        if item_id is not None:
            wire["id"] = item_id
        item = shapes.normalize_item(wire)
        committed = self.wire.event(
            "input_audio_buffer.committed",
            previous_item_id=self.conversation.last_id(),
            item_id=item["id"],
        )
        out = [committed, *self._add(item, None)]
        if self._transcription_model() is not None:
            seconds = len(pcm) / 48_000
            transcript = f"[offline: no transcription of {seconds:.1f} s of audio]"
            item["content"][0]["transcript"] = transcript
            self.conversation.refresh(item["id"])
            out.append(
                self.wire.event(
                    "conversation.item.input_audio_transcription.completed",
                    item_id=item["id"],
                    content_index=0,
                    transcript=transcript,
                    usage={"type": "duration", "seconds": round(seconds, 3)},
                )
            )
        return out

    # Server VAD

    def _turn_detection(self) -> Any:
        """The session's turn detection settings when VAD runs (PCM16 input), else None."""
        if shapes.input_bytes_per_ms(self.session, self.dialect) != 48:
            return None  # G.711: the offline detector reads PCM16 only
        if self.dialect is Dialect.GA:
            detection = self.session["audio"]["input"].get("turn_detection")
        else:
            detection = self.session.get("turn_detection")
        return detection if isinstance(detection, dict) else None

    def _transcription_model(self) -> Any:
        if self.dialect is Dialect.GA:
            wanted = self.session["audio"]["input"].get("transcription")
        else:
            wanted = self.session.get("input_audio_transcription")
        return wanted if isinstance(wanted, dict) else None

    def _speech_started(self, change: SpeechStarted, detection: Mapping[str, Any]) -> list[Event]:
        self._vad_item_id = new_id("item")
        self._vad_start_ms = change.audio_start_ms
        out = [
            self.wire.event(
                "input_audio_buffer.speech_started",
                audio_start_ms=change.audio_start_ms,
                item_id=self._vad_item_id,
            )
        ]
        active = self._conversation_response()
        if active is not None and detection.get("interrupt_response", True) is not False:
            # The service cancels the answer the user talks over.
            out.extend(self.streamer.cancel(active, "cancelled", "turn_detected"))
            out.extend(self._after_done(active))
        return out

    def _speech_stopped(
        self, end_ms: int, detected_ms: int, detection: Mapping[str, Any]
    ) -> list[Event]:
        item_id = self._vad_item_id or new_id("item")
        self._vad_item_id = None
        out = [
            self.wire.event(
                "input_audio_buffer.speech_stopped", audio_end_ms=end_ms, item_id=item_id
            )
        ]
        # The speech (with its prefix padding) becomes the item; the buffer keeps what
        # came after the silence that ended it.
        base = self._buffer_base
        begin = max(0, self._vad_start_ms * 48 - base)
        pcm = bytes(self._audio_buffer[begin : max(begin, end_ms * 48 - base)])
        cut = max(0, min(len(self._audio_buffer), detected_ms * 48 - base))
        del self._audio_buffer[:cut]
        self._buffer_base += cut
        out.extend(self._commit_pcm(pcm, item_id))
        wanted = detection.get("create_response", True) is not False
        if wanted and self._conversation_response() is None:
            out.extend(self._start_response({}))
        return out

    def _idle_timeout(self, change: IdleTimeout) -> list[Event]:
        """No speech for ``idle_timeout_ms``: the silent stretch is committed as the user's
        item and answered (the model prompts the user to go on)."""
        item_id = new_id("item")
        out = [
            self.wire.event(
                "input_audio_buffer.timeout_triggered",
                audio_start_ms=change.audio_start_ms,
                audio_end_ms=change.audio_end_ms,
                item_id=item_id,
            )
        ]
        base = self._buffer_base
        begin = max(0, change.audio_start_ms * 48 - base)
        end = max(begin, min(len(self._audio_buffer), change.audio_end_ms * 48 - base))
        pcm = bytes(self._audio_buffer[begin:end])
        del self._audio_buffer[:end]
        self._buffer_base += end
        out.extend(self._commit_pcm(pcm, item_id))
        if self._conversation_response() is None:
            out.extend(self._start_response({}))
        return out

    def _output_audio_clear(self, event: Event) -> list[Event]:
        # WebRTC/SIP only on the service; over WebSocket there is no server-side buffer.
        return []

    def _response_create(self, event: Event) -> list[Event]:
        params: Mapping[str, Any] = event.get("response") or {}
        settings = shapes.response_settings(self.session, params, self.dialect)
        active = self._conversation_response()
        if not settings.out_of_band and active is not None:
            beta = self.dialect is Dialect.BETA
            return [self._error(errors.active_response(active.id, beta=beta), event)]
        context, problem = self._context(params)
        if problem is not None:
            return [self._error(problem, event)]
        return self._start_response(params, settings, context)

    def _start_response(
        self,
        params: Mapping[str, Any],
        settings: shapes.ResponseSettings | None = None,
        context: Sequence[Event] | None = None,
    ) -> list[Event]:
        """Create a response (``response.create``'s, or the server's own after VAD)."""
        if settings is None:
            settings = shapes.response_settings(self.session, params, self.dialect)
        if context is None:
            context = self._truncated(self.conversation.view())
        response = self._new_response(settings, context)
        self._responses.append(response)
        if response.in_conversation and self._vad is not None:
            self._vad.hold()  # no idle timeout while the answer runs
        created = self.streamer.render(response, "in_progress")
        out = [self.wire.event("response.created", response=created)]
        if self.dialect is Dialect.BETA:
            out.append(self._rate_limits())  # beta sends it right after response.created
        if response.failure is not None:
            out.extend(self.streamer.finish(response, "failed"))
            out.extend(self._after_done(response))
        return out

    def _response_cancel(self, event: Event) -> list[Event]:
        wanted = event.get("response_id")
        if wanted is not None:
            target = next((r for r in self._responses if r.id == wanted), None)
        else:
            latest = self._responses[-1] if self._responses else None
            target = self._conversation_response() or latest
        if target is None:
            return [self._error(errors.cancel_not_active(), event)]
        return [*self.streamer.cancel(target), *self._after_done(target)]

    _HANDLERS: ClassVar[dict[str, Callable[[ConnectionState, Event], list[Event]]]] = {
        "session.update": _session_update,
        "conversation.item.create": _item_create,
        "conversation.item.retrieve": _item_retrieve,
        "conversation.item.delete": _item_delete,
        "conversation.item.truncate": _item_truncate,
        "input_audio_buffer.append": _audio_append,
        "input_audio_buffer.commit": _audio_commit,
        "input_audio_buffer.clear": _audio_clear,
        "output_audio_buffer.clear": _output_audio_clear,
        "response.create": _response_create,
        "response.cancel": _response_cancel,
    }

    # Conversation

    def _add(self, item: Event, previous: str | None) -> list[Event]:
        """Place a client item and acknowledge it (``added`` then ``done``, same previous id)."""
        previous_id = self.conversation.insert(item, previous)
        public = self.wire.item(shapes.public_item(item))
        return [
            self.wire.event("conversation.item.added", previous_item_id=previous_id, item=public),
            *self.wire.optional_event(
                "conversation.item.done", previous_item_id=previous_id, item=public
            ),
        ]

    def _context(self, params: Mapping[str, Any]) -> tuple[Sequence[Event], ErrorInfo | None]:
        """The items a response sees: its ``input`` (references resolved) or the conversation."""
        if params.get("input") is None:
            return self._truncated(self.conversation.view()), None
        context = []
        for index, entry in enumerate(params["input"]):
            if entry.get("type") != "item_reference":
                context.append(shapes.normalize_item(entry))
                continue
            item = self.conversation.get(entry["id"])
            if item is None:
                param = f"response.input[{index}].id"
                return [], errors.item_not_found("retrieve", entry["id"], param)
            context.append(dict(item))
        return context, None

    def _truncated(self, view: ContextView) -> Sequence[Event]:
        """The conversation as a response reads it: the session's truncation applied."""
        bytes_per_ms = shapes.input_bytes_per_ms(self.session, self.dialect)
        return truncated(view, self.conversation.size, self.session.get("truncation"), bytes_per_ms)

    # Responses

    def _conversation_response(self) -> ActiveResponse | None:
        return next((r for r in self._responses if r.in_conversation), None)

    def _new_response(
        self, settings: shapes.ResponseSettings, context: Sequence[Event]
    ) -> ActiveResponse:
        request = ResponseRequest(
            context=context,
            instructions=settings.instructions,
            tools=tuple(
                tool for tool in settings.tools if tool.get("type", "function") == "function"
            ),
            tool_choice=settings.tool_choice,
            output_modalities=tuple(settings.modalities),
            metadata=settings.metadata,
            in_conversation=not settings.out_of_band,
            max_output_tokens=settings.token_budget,
        )
        failure = None
        planned: list[PlannedOutput] = []
        prepared: Any = None
        mcp_streams = self.mcp.plan(context, settings.tools) if self.dialect is Dialect.GA else None
        try:
            if mcp_streams is not None:
                pass  # a remote MCP tool answers (rt_notebook.server.remote_mcp)
            elif self.live:  # known since the connection opened: no isinstance per response
                prepared = cast(LiveResponder, self.responder).prepare(request)
            else:
                planned = list(cast(Responder, self.responder).respond(request))
        except Exception as exc:  # a custom responder's bug must not kill the connection
            if self._on_responder_error is not None:
                self._on_responder_error(exc)
            failure = {
                "type": "failed",
                "error": {"type": "server_error", "code": "responder_error", "message": repr(exc)},
            }
        streams, budget_hit = plan_streams(
            planned, audio=settings.audio, budget=settings.token_budget
        )
        if mcp_streams is not None:
            streams = mcp_streams
        if settings.audio and not self.live:
            _echo(streams, context)
        bytes_per_ms = shapes.input_bytes_per_ms(self.session, self.dialect)
        if isinstance(context, ContextView):
            size = self.conversation.size  # kept up to date item by item
        else:
            sizes = [item_size(item) for item in context]
            size = (sum(words for words, _ in sizes), sum(chars for _, chars in sizes))
        text_tokens, audio_tokens = count_input_tokens(settings.instructions, size, bytes_per_ms)
        response = ActiveResponse(
            id=new_id("resp"),
            settings=settings,
            streams=streams,
            input_text_tokens=text_tokens,
            input_audio_tokens=audio_tokens,
            born_tick=self._ticks,
            budget_hit=budget_hit,
            failure=failure,
        )
        if self.live and failure is None and mcp_streams is None:
            response.live = True
            response.complete = False
            if settings.audio:  # audio is not faked: the answer comes in text, and says so
                apply_updates(response, [TextDelta(AUDIO_NOTICE)])
            self._live_starts.append((response.id, prepared))
        return response

    def _after_done(self, response: ActiveResponse) -> list[Event]:
        """What follows ``response.done`` on the connection (nothing while still active)."""
        if response.phase is not ResponsePhase.DONE or response not in self._responses:
            return []
        self._responses.remove(response)
        self._tokens_used += response_usage(response)["total_tokens"]
        out: list[Event] = []
        if response.in_conversation and self._vad is not None:
            # The idle timeout counts from where the answer ends playing: now (in input
            # audio time) plus its audio, as the service does.
            now_ms = (self._buffer_base + len(self._audio_buffer)) // 48
            self._vad.idle_since(now_ms + _audio_ms(response))
        if response.in_conversation:
            deferred, self._deferred = self._deferred, []
            for item, event in deferred:
                out.extend(self._item_create_now(item, event))
        if self.dialect is Dialect.GA:
            self._trailers.append(self._rate_limits())  # GA: a moment after response.done
        return out

    def _item_create_now(self, item: Event, event: Event) -> list[Event]:
        previous = event.get("previous_item_id")
        if not self.conversation.can_follow(previous):
            problem = errors.item_not_found("create", str(previous), "previous_item_id")
            return [self._error(problem, event)]
        return self._add(item, previous)

    def _rate_limits(self) -> Event:
        used = self._tokens_used
        return self.wire.event(
            "rate_limits.updated",
            rate_limits=[
                {
                    "name": "requests",
                    "limit": RATE_LIMIT_REQUESTS,
                    "remaining": RATE_LIMIT_REQUESTS - 1,
                    "reset_seconds": 0.006,
                },
                {
                    "name": "tokens",
                    "limit": RATE_LIMIT_TOKENS,
                    "remaining": max(0, RATE_LIMIT_TOKENS - used),
                    "reset_seconds": round(used * 60 / RATE_LIMIT_TOKENS, 3),
                },
            ],
        )

    # Helpers

    def _session_copy(self) -> Event:
        copy: Event = json.loads(json.dumps(self.session))
        for tool in copy.get("tools") or ():
            # MCP credentials are not echoed: they stay with the server that uses them.
            if isinstance(tool, dict) and tool.get("type") == "mcp":
                if isinstance(tool.get("headers"), dict):
                    tool["headers"] = dict.fromkeys(tool["headers"], "<redacted>")
                if tool.get("authorization") is not None:
                    tool["authorization"] = "<redacted>"
        return copy

    def _error(self, info: ErrorInfo, event: Event) -> Event:
        return error_event(info, _client_id(event))


def _echo_transcript(size: int) -> str:
    return f"[offline echo of {size / 48_000:.1f} s of audio]"


def _echo(streams: Sequence[OutputStream], context: Sequence[Event]) -> None:
    """An audio answer to a user's audio message plays that audio back, in 100 ms deltas,
    with a transcript that says so (the first spoken stream; others keep their beeps)."""
    last = context[-1] if len(context) else None
    if last is None or last.get("role") != "user":
        return
    pcm = b""
    for part in last.get("content") or ():
        if part.get("type") == "input_audio" and isinstance(part.get("audio"), str):
            try:
                pcm += base64.b64decode(part["audio"], validate=True)
            except (binascii.Error, ValueError):
                return
    if not pcm:
        return
    stream = next((s for s in streams if s.kind is OutputKind.AUDIO), None)
    if stream is None:
        return
    chunks = [
        base64.b64encode(pcm[i : i + ECHO_CHUNK_BYTES]).decode("ascii")
        for i in range(0, len(pcm), ECHO_CHUNK_BYTES)
    ]
    words = split_text(_echo_transcript(len(pcm)))
    stream.deltas = words + [""] * max(0, len(chunks) - len(words))
    stream.pcm = chunks


def _client_id(event: Mapping[str, Any]) -> str | None:
    value = event.get("event_id")
    return value if isinstance(value, str) else None


def _describe(value: object) -> str:
    kinds = {list: "an array", str: "a string", int: "an integer", float: "a decimal"}
    return kinds.get(type(value), "a boolean" if isinstance(value, bool) else "null")


def _audio_ms(response: ActiveResponse) -> int:
    """Milliseconds of audio ``response`` sent (echoed PCM, or a beep per delta)."""
    size = 0
    for stream in response.streams:
        if stream.kind is not OutputKind.AUDIO:
            continue
        if stream.pcm is not None:
            size += sum(len(base64.b64decode(chunk)) for chunk in stream.pcm[: stream.sent])
        else:
            size += stream.sent * beep_bytes()
    return size // 48
