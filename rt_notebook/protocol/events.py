"""Sans-I/O event vocabulary of the two Realtime dialects (GA and beta).

The GA dialect is canonical inside rt_notebook: server events of the beta dialect are
renamed to their GA names on arrival (:func:`to_ga`), and the embedded server renames its
GA events to beta names when it speaks beta (:func:`to_beta`). Only the names and the few
shape differences that matter to a conversation mirror are translated here; everything
else passes through untouched.
"""

from __future__ import annotations

import enum
import secrets
import string
from typing import Any

__all__ = [
    "BETA_TO_GA_AUDIO_FORMAT",
    "BETA_TO_GA_CONTENT",
    "BETA_TO_GA_EVENT",
    "BETA_TO_GA_RESPONSE_FIELD",
    "BETA_TO_GA_SESSION_FIELD",
    "GA_TO_BETA_EVENT",
    "IGNORED_SERVER_EVENTS",
    "READ_OUTSIDE_THE_MIRROR",
    "Dialect",
    "Event",
    "new_id",
    "to_beta",
    "to_ga",
]

Event = dict[str, Any]
"""One decoded JSON event, client or server, as it travels on the wire."""


class Dialect(enum.Enum):
    """Which shape of the Realtime protocol a connection speaks."""

    GA = "ga"
    BETA = "beta"


# Server event names that differ between the dialects (beta name -> GA name).
BETA_TO_GA_EVENT: dict[str, str] = {
    "conversation.item.created": "conversation.item.added",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
}
GA_TO_BETA_EVENT: dict[str, str] = {ga: beta for beta, ga in BETA_TO_GA_EVENT.items()}

# GA server events that parts other than the conversation mirror act on (the mirror's own
# are :attr:`Conversation.event_types`), and which part.
READ_OUTSIDE_THE_MIRROR: dict[str, str] = {
    "input_audio_buffer.committed": "client core: acknowledges a commit (protocol/voice.py)",
    "input_audio_buffer.speech_stopped": "client core: the server commits that turn itself",
    "input_audio_buffer.timeout_triggered": "client core: the server commits that turn itself",
    "input_audio_buffer.speech_started": "voice control: the user talks over what plays",
}

# GA server events no part acts on, and why. Every one is still kept in the event log
# and drawn by the inspector; a type in neither list (a new SDK release) fails a test.
IGNORED_SERVER_EVENTS: dict[str, str] = {
    "conversation.created": "beta-era: a GA session has one default conversation, no news",
    "conversation.item.input_audio_transcription.delta": (
        "the user's words are shown once complete (transcription .completed)"
    ),
    "conversation.item.input_audio_transcription.failed": (
        "the item keeps no transcript; the inspector flags the event as a failure"
    ),
    "conversation.item.input_audio_transcription.segment": (
        "diarized segments: only with a diarizing transcription model, never requested"
    ),
    "input_audio_buffer.cleared": "acknowledges our own clear; nothing waits for it",
    "input_audio_buffer.dtmf_event_received": "telephone keypad tones (SIP calls only)",
    "output_audio_buffer.started": "WebRTC and SIP only: over WebSocket we play the audio",
    "output_audio_buffer.stopped": "WebRTC and SIP only: over WebSocket we play the audio",
    "output_audio_buffer.cleared": "WebRTC and SIP only: over WebSocket we play the audio",
    "response.content_part.added": "the output item events and the deltas carry the same",
    "response.content_part.done": "the text/transcript .done event carries the same",
    "response.output_audio.done": "the audio deltas are all there; the item's .done ends it",
}

# Content-part types of assistant messages (beta name -> GA name).
BETA_TO_GA_CONTENT: dict[str, str] = {"text": "output_text", "audio": "output_audio"}
_GA_TO_BETA_CONTENT = {ga: beta for beta, ga in BETA_TO_GA_CONTENT.items()}

# Session settings whose place differs between the dialects (beta name -> GA path): beta
# keeps them flat, GA nests the audio ones under ``audio.input`` / ``audio.output``. Every
# other setting has the same name in both. Values of ``modalities`` and of the audio
# formats are written differently too (see rt_notebook.protocol.translate).
BETA_TO_GA_SESSION_FIELD: dict[str, tuple[str, ...]] = {
    "modalities": ("output_modalities",),
    "voice": ("audio", "output", "voice"),
    "speed": ("audio", "output", "speed"),
    "output_audio_format": ("audio", "output", "format"),
    "input_audio_format": ("audio", "input", "format"),
    "input_audio_noise_reduction": ("audio", "input", "noise_reduction"),
    "input_audio_transcription": ("audio", "input", "transcription"),
    "turn_detection": ("audio", "input", "turn_detection"),
    "max_response_output_tokens": ("max_output_tokens",),
}
# Audio formats: beta names them, GA describes them (PCM16 is 24 kHz in both).
BETA_TO_GA_AUDIO_FORMAT: dict[str, dict[str, Any]] = {
    "pcm16": {"type": "audio/pcm", "rate": 24000},
    "g711_ulaw": {"type": "audio/pcmu"},
    "g711_alaw": {"type": "audio/pcma"},
}
# The same for the ``response`` of ``response.create``. (The beta *response object* the
# server sends says ``max_output_tokens``, like GA: only the request used the long name.)
BETA_TO_GA_RESPONSE_FIELD: dict[str, tuple[str, ...]] = {
    "modalities": ("output_modalities",),
    "voice": ("audio", "output", "voice"),
    "output_audio_format": ("audio", "output", "format"),
    "max_response_output_tokens": ("max_output_tokens",),
}

_ID_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 21) -> str:
    """Return a fresh id shaped like the service's (``event_…``, ``item_…``, ``call_…``)."""
    # One urandom call per id (not per character): ids are minted for every server event.
    # The modulo bias (256 % 62) does not matter for ids that only need to be unique.
    return prefix + "_" + "".join(_ID_ALPHABET[b % 62] for b in secrets.token_bytes(length))


def to_ga(event: Event) -> Event:
    """Return ``event`` with beta names replaced by GA names (the same dict if none differ).

    Renames the event type, assistant content-part types and ``modalities`` on
    responses. Cheap for deltas: a single dict lookup when nothing needs renaming.
    """
    return _rename(event, BETA_TO_GA_EVENT, BETA_TO_GA_CONTENT, "modalities", "output_modalities")


def to_beta(event: Event) -> Event:
    """Return a GA server ``event`` renamed to the beta dialect (inverse of :func:`to_ga`)."""
    return _rename(event, GA_TO_BETA_EVENT, _GA_TO_BETA_CONTENT, "output_modalities", "modalities")


def _rename(
    event: Event,
    types: dict[str, str],
    content_types: dict[str, str],
    modalities_from: str,
    modalities_to: str,
) -> Event:
    """``event`` in the other dialect's names; copies only what changes."""
    renamed_type = types.get(event.get("type", ""))
    if renamed_type is not None:
        event = {**event, "type": renamed_type}
    item = event.get("item")
    if isinstance(item, dict) and item.get("role") == "assistant":
        renamed_item = _rename_content(item, content_types)
        if renamed_item is not item:
            event = {**event, "item": renamed_item}
    response = event.get("response")
    if isinstance(response, dict) and modalities_from in response:
        response = dict(response)
        response[modalities_to] = response.pop(modalities_from)
        event = {**event, "response": response}
    return event


def _rename_content(item: Event, names: dict[str, str]) -> Event:
    """``item`` with its content-part types renamed (the same dict if none is)."""
    content = item.get("content")
    if not isinstance(content, list) or not any(
        isinstance(part, dict) and part.get("type") in names for part in content
    ):
        return item
    renamed = [
        {**part, "type": names[part["type"]]}
        if isinstance(part, dict) and part.get("type") in names
        else part
        for part in content
    ]
    return {**item, "content": renamed}
