"""The sans-I/O part of talking by voice: turns from what was sent and what the server said."""

from __future__ import annotations

from rt_notebook.frontends.voice_control import MIN_COMMIT_BYTES, VoiceTurns, voice_label


def test_a_turn_reads_as_its_transcription_or_its_duration():
    assert voice_label(2.44) == "(voice message, 2.4 s)"
    assert voice_label(2.44, "  what is two plus two ") == "what is two plus two"
    assert voice_label(0.96, "   ") == "(voice message, 1.0 s)"


def test_push_to_talk_turn_counts_the_bytes_sent_and_gets_its_item_and_transcript():
    core = VoiceTurns()
    core.start("push")
    for _ in range(24):
        core.appended(4_800)  # 2.4 s in 100 ms chunks
    turn = core.release()
    assert turn.label == "(voice message, 2.4 s)"
    assert core.event({"type": "input_audio_buffer.committed", "item_id": "item_1"}) == "turn"
    assert turn.item_id == "item_1"
    event = {
        "type": "conversation.item.input_audio_transcription.completed",
        "item_id": "item_1",
        "transcript": "hello <b>there</b>",
    }
    assert core.event(event) == "turn"
    assert turn.label == "hello <b>there</b>"  # escaped by the view, not here
    # A transcription of another item changes nothing.
    assert core.event({**event, "item_id": "item_9", "transcript": "no"}) is None
    assert turn.transcript == "hello <b>there</b>"


def test_a_press_too_short_to_commit_is_noted_not_committed():
    core = VoiceTurns()
    core.start("push")
    core.appended(MIN_COMMIT_BYTES - 2)
    turn = core.release()
    assert "too short" in turn.label
    # A commit the server reports then is the server's own (voice activity), a new turn.
    core.event({"type": "input_audio_buffer.speech_started", "audio_start_ms": 500})
    core.event({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 2100})
    core.event({"type": "input_audio_buffer.committed", "item_id": "item_2"})
    assert [t.label for t in core.turns][1] == "(voice message, 1.6 s)"
    assert core.turns[1].mode == "handsfree"


def test_speech_started_asks_to_interrupt_and_hostile_fields_are_ignored():
    core = VoiceTurns()
    assert core.event({"type": "input_audio_buffer.speech_started"}) == "speech_started"
    assert core.event({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": "x"}) is None
    core.event({"type": "input_audio_buffer.committed", "item_id": 7})
    assert core.turns[0].item_id is None
    assert core.turns[0].label == "(voice message, 0.0 s)"
    assert core.event({"type": "nonsense"}) is None
    assert core.event({}) is None


def test_realtime_voice_checks_its_options():
    import pytest

    from rt_notebook.errors import ConfigurationError
    from rt_notebook.frontends.magic_args import parse_line

    assert parse_line("voice").words == ()
    assert parse_line("voice --transcribe whisper-1").words == ("--transcribe", "whisper-1")
    assert parse_line("voice --no-transcribe --session other").session == "other"
    for typo in [
        "voice --transcribe",
        "voice --transcibe x",
        "voice now",
        "voice --transcribe -x",
        "voice --no-transcribe x",
        "voise",
    ]:
        with pytest.raises(ConfigurationError, match=r"voice|unknown"):
            parse_line(typo)


def test_a_hostile_transcription_or_item_id_cannot_become_html():
    from rt_notebook.frontends.voice_control import UserTurn
    from rt_notebook.frontends.voice_turns import answer_html, turn_html

    hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    turn = UserTurn("push", 1.0, item_id='"><script>alert(3)</script>', transcript=hostile)
    markup = turn_html(turn) + answer_html(hostile, '"><b>x</b>')
    assert "<img" not in markup
    assert "<script" not in markup
    assert "<b>x" not in markup


def test_an_idle_timeout_commit_is_a_turn_as_long_as_the_silence():
    core = VoiceTurns()
    core.event({"type": "input_audio_buffer.speech_started", "audio_start_ms": 500})
    core.event({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 2100})
    timeout = {"type": "input_audio_buffer.timeout_triggered", "audio_start_ms": 4000}
    assert core.event({**timeout, "audio_end_ms": 9000, "item_id": "item_3"}) is None
    assert core.event({"type": "input_audio_buffer.committed", "item_id": "item_3"}) == "turn"
    assert core.turns[0].label == "(voice message, 5.0 s)"
    assert core.turns[0].item_id == "item_3"
