"""Output audio: the mirror keeps decoded PCM per item (capped), results give it as WAV."""

from __future__ import annotations

import array
import base64
import itertools

from rt_notebook.client.audio import SAMPLE_RATE, wav_bytes, wav_pcm, write_wav
from rt_notebook.protocol.conversation import AudioDelta, Conversation
from tests.timing import WAIT


def _mirror_with_item(**options):
    conversation = Conversation(**options)
    conversation.apply({"type": "response.created", "response": {"id": "r1"}})
    conversation.apply(
        {
            "type": "response.output_item.added",
            "response_id": "r1",
            "item": {"id": "i1", "type": "message", "role": "assistant"},
        }
    )
    return conversation


def _delta(pcm: bytes) -> dict:
    return {
        "type": "response.output_audio.delta",
        "response_id": "r1",
        "item_id": "i1",
        "delta": base64.b64encode(pcm).decode(),
    }


def test_mirror_keeps_decoded_pcm_and_reports_each_delta():
    conversation = _mirror_with_item()
    chunks = [bytes([n]) * 480 for n in range(5)]
    changes = [conversation.apply(_delta(chunk)) for chunk in chunks]
    assert [c[0].pcm for c in changes] == chunks
    assert all(type(c[0]) is AudioDelta and c[0].response_id == "r1" for c in changes)
    item = conversation.item("i1")
    assert item.audio == b"".join(chunks)
    assert item.audio_bytes == 2400
    assert item.audio_dropped == 0


def test_mirror_cap_keeps_whole_samples_and_counts_the_rest():
    conversation = _mirror_with_item(audio_cap_bytes=1001)
    conversation.apply(_delta(b"\x01\x02" * 300))
    conversation.apply(_delta(b"\x03\x04" * 300))
    item = conversation.item("i1")
    assert len(item.audio) == 1000  # 1001 rounded down to whole samples
    assert item.audio == (b"\x01\x02" * 300 + b"\x03\x04" * 300)[:1000]
    assert item.audio_bytes == 1200
    assert item.audio_dropped == 200
    # Past the cap, deltas still reach the views (the player plays all that streams).
    assert conversation.apply(_delta(b"\x05\x06"))[0].pcm == b"\x05\x06"


def test_mirror_ignores_garbage_audio():
    conversation = _mirror_with_item()
    for delta in ("not base64!", "", None, 12, ["x"]):
        assert conversation.apply({**_delta(b""), "delta": delta}) == []
    unknown = {**_delta(b"\x00\x00"), "item_id": "nope"}
    assert conversation.apply(unknown) == []
    assert conversation.item("i1").audio == b""


def test_truncation_cuts_the_audio_at_audio_end_ms():
    conversation = _mirror_with_item()
    conversation.apply(_delta(bytes(range(256)) * 40))  # 10240 bytes, 213 ms
    conversation.apply(
        {"type": "conversation.item.truncated", "item_id": "i1", "audio_end_ms": 100}
    )
    assert conversation.item("i1").audio == (bytes(range(256)) * 40)[: 100 * 48]


def test_wav_round_trip(tmp_path):
    pcm = array.array("h", [0, 1000, -1000, 32767, -32768]).tobytes()
    assert wav_pcm(wav_bytes(pcm)) == (pcm, SAMPLE_RATE)
    path = write_wav(tmp_path / "a.wav", pcm)
    assert wav_pcm(path.read_bytes()) == (pcm, SAMPLE_RATE)


def test_a_kept_answer_is_an_audio_element_whose_data_url_plays_the_pcm():
    import re

    from rt_notebook.render.voice import audio_bundle

    pcm = array.array("h", [0, 1000, -1000, 32767, -32768] * 480).tobytes()
    html = audio_bundle(pcm, cap_seconds=60)["text/html"]
    assert html.startswith('<audio controls="controls">')
    sources = re.findall(r'<source src="data:audio/wav;base64,([A-Za-z0-9+/=]+)" type', html)
    assert len(sources) == 1
    assert wav_pcm(base64.b64decode(sources[0])) == (pcm, SAMPLE_RATE)


def test_ask_for_audio_gives_the_streamed_pcm(session, tmp_path):
    streamed: list[bytes] = []

    def collect(_, changes):
        streamed.extend(c.pcm for c in changes if type(c) is AudioDelta)

    unsubscribe = session.subscribe(collect)
    try:
        result = session.ask("three little words", modalities=["audio"]).wait(WAIT)
    finally:
        unsubscribe()
    assert result.status == "completed"
    assert result.text  # the transcript
    assert result.audio
    assert result.audio == b"".join(streamed)
    assert len(result.audio) % 2 == 0
    samples = array.array("h", result.audio)
    assert max(samples) > 1000  # a tone, not silence
    path = result.write_wav(tmp_path / "answer.wav")
    assert wav_pcm(path.read_bytes()) == (result.audio, 24_000)
    assert result.audio_seconds == len(result.audio) / 48_000


def test_text_answers_have_no_audio(session):
    result = session.ask("hello", modalities=["text"]).wait(WAIT)
    assert result.audio == b""
    assert result.audio_seconds == 0


def test_offline_tone_is_pcm16_at_24_khz(session):
    result = session.ask("one", modalities=["audio"]).wait(WAIT)
    samples = array.array("h", result.audio)
    words = len(result.text.split())
    assert len(samples) == words * 24_000 * 50 // 1000  # one 50 ms beep per word at 24 kHz
    samples = samples[:1200]  # the first beep
    crossings = sum(1 for a, b in itertools.pairwise(samples) if (a < 0) != (b < 0))
    # C5 (523.25 Hz) for 50 ms crosses zero about 52 times; at another rate it would not.
    assert 48 <= crossings <= 56


def test_subscribe_audio_catches_up_then_follows_in_order(paced_server, make_session):
    session = make_session(paced_server)
    handle = session.ask(" ".join(f"w{n}" for n in range(40)), modalities=["audio"])
    # Subscribe while the answer streams: what already arrived comes first, then the rest.
    next(iter(handle))  # the first transcript delta: the answer is streaming
    heard: list[bytes] = []
    unsubscribe = session.subscribe_audio(handle, heard.append)
    result = handle.wait(WAIT)
    unsubscribe()
    assert len(heard) > 1
    assert b"".join(heard) == result.audio
    # After the end, a new subscriber gets all of it at once.
    late: list[bytes] = []
    session.subscribe_audio(handle, late.append)()
    assert late == [result.audio]


def test_stop_truncates_at_the_played_position_and_keeps_what_was_heard(
    offline_server, make_session
):
    from rt_notebook.render.voice import VoiceOutput

    session = make_session(offline_server)
    handle = session.ask(" ".join(f"w{n}" for n in range(40)), modalities=["audio"])
    voice = VoiceOutput(session, handle, cap_seconds=300)
    result = handle.wait(WAIT)
    voice.player._handle_message(None, {"event": "ready"}, [])  # a browser is playing it
    voice.finish(result)
    assert voice.kept_audio is None  # kept once played or stopped, not before
    played = 12_345  # samples the browser says it played
    voice.player._handle_message(None, {"event": "stopped", "played": played}, [])
    voice.player.status = "stopped"
    assert voice.truncated.wait(WAIT)
    truncated = [e for e in session.events if e["type"] == "conversation.item.truncated"]
    assert [e["audio_end_ms"] for e in truncated] == [played * 1000 // 24_000]
    item_id = truncated[0]["item_id"]
    assert session.item_audio_bytes(item_id) == (played * 1000 // 24_000) * 48
    assert voice.kept_audio == result.audio[: played * 2]
    assert session.item(item_id).status == "incomplete"


def test_garbage_from_the_browser_changes_nothing(session):
    from rt_notebook.widgets.player import AudioPlayer

    player = AudioPlayer()
    stops: list[int] = []
    player.on_stop(stops.append)
    for content in (
        None,
        [],
        "stopped",
        {"event": "stopped", "played": -1},
        {"event": "stopped", "played": "9"},
        {"event": "nope"},
    ):
        player._handle_message(None, content, [])
    assert stops == []
    assert not player.browser_ready
