"""The client core's parts alone, fed and drained through their methods (no I/O, no core)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from rt_notebook.protocol.client import ClientCore
from rt_notebook.protocol.lifecycle import Drop, Lifecycle, Timer
from rt_notebook.protocol.settings import SessionSettings
from rt_notebook.protocol.turn_queue import TurnQueue
from rt_notebook.protocol.turns import Request, State, Timing, Turn, TurnState
from rt_notebook.protocol.voice import VAD_ITEMS_KEPT, AudioInput

TIMING = Timing(backoff_initial=1, backoff_max=8, max_attempts=2, restore_timeout=20)


# The lifecycle ------------------------------------------------------------------------


def connected(timing: Timing = TIMING) -> Lifecycle:
    life = Lifecycle(timing, seed=3)
    life.start()
    life.opening(0.0)
    life.session_created(None, 0.0)
    life.restoring(2)
    life.ready(0.5)
    return life


def test_a_first_connection_that_never_gets_a_session_closes():
    life = Lifecycle(TIMING)
    life.start()
    life.opening(0.0)
    assert life.state is State.CONNECTING
    assert life.dropped(life.generation, "refused") is Drop.FIRST_FAILED
    assert life.status().state is State.CLOSED
    assert life.status().reason == "refused"


def test_a_drop_of_an_old_socket_is_ignored():
    life = connected()
    old = life.generation
    life.supersede()
    assert life.dropped(old, "late close") is Drop.IGNORED
    assert life.state is State.READY


def test_reconnects_back_off_with_jitter_and_are_bounded():
    life = connected()
    assert life.status().restored == 2
    assert life.dropped(life.generation, "network") is Drop.RECONNECT
    assert life.begin_reconnect(10.0)
    assert life.state is State.RECONNECTING
    (retry,) = life.deadlines(can_renew=False)
    assert 10.5 <= retry <= 11.0  # backoff_initial, halved at most by jitter
    assert life.due(retry - 0.01) == []
    assert life.due(retry) == [Timer.RETRY]
    life.opening(retry)
    # The attempt's own deadline, while reconnecting; then the attempts run out.
    assert life.deadlines(can_renew=False) == [retry + 20]
    assert life.due(retry + 20) == [Timer.ATTEMPT]
    assert life.due(retry + 21) == []  # it fires once
    assert life.attempt_timeout_reason().startswith("no session.created within 20 s")
    assert life.begin_reconnect(retry + 20)
    assert not life.begin_reconnect(retry + 30)  # a third attempt is one too many
    assert life.status().attempt == 3


def test_ready_again_clears_the_attempts_and_the_reason_and_records_a_renewal():
    life = connected()
    life.renewing()
    assert life.begin_reconnect(5.0, immediately=True)
    assert life.deadlines(can_renew=False) == []  # immediately: no backoff timer
    life.opening(5.0)
    life.session_created(None, 5.1)
    life.ready(5.2)
    status = life.status()
    assert (status.state, status.attempt, status.reason, status.renewed_at) == (
        State.READY,
        0,
        None,
        5.2,
    )


def test_session_expired_again_and_again_stops_the_reconnects():
    life = connected(Timing(max_expiries=2))
    for n in range(2):
        life.session_expired()
        drop = life.dropped(life.generation, "expired")
        if n == 0:
            assert drop is Drop.RECONNECT
            assert life.last_drop_expired
            life.begin_reconnect(1.0, immediately=True)
            life.opening(1.0)
            life.session_created(None, 1.0)
            life.ready(1.0)
    assert drop is Drop.EXPIRED_TOO_OFTEN
    assert "2 times in a row" in life.expired_too_often()


def test_an_answer_resets_the_expiry_count():
    life = connected(Timing(max_expiries=2))
    life.session_expired()
    assert life.dropped(life.generation, "expired") is Drop.RECONNECT
    life.begin_reconnect(1.0, immediately=True)
    life.opening(1.0)
    life.session_created(None, 1.0)
    life.ready(1.0)
    life.answered()
    life.session_expired()
    assert life.dropped(life.generation, "expired") is Drop.RECONNECT


def test_the_renewal_comes_before_the_servers_expiry_and_only_when_allowed():
    life = Lifecycle(Timing(renew_margin=100))
    life.start()
    life.opening(0.0)
    life.session_created(1000, 0.0)
    life.ready(0.0)
    assert life.deadlines(can_renew=False) == []
    assert life.deadlines(can_renew=True) == [900.0]
    assert life.due(900.0) == [Timer.RENEW]
    life.stopped()
    assert life.deadlines(can_renew=True) == []


# The turn queue -------------------------------------------------------------------------


def test_the_turn_queue_runs_turns_in_order_with_the_head_for_follow_ups():
    queue = TurnQueue()
    first, second, follow_up = Turn([], {}), Turn([], {}), Turn([], {})
    queue.add(first)
    queue.add(second)
    queue.add(follow_up, first=True)
    assert queue.waiting() == [follow_up, first, second]
    assert queue.pending() == 3
    assert queue.next() is follow_up
    assert queue.current is follow_up
    assert queue.release(first) is None  # not the current one: nothing changes
    assert queue.release(follow_up) is follow_up
    assert queue.current is None
    assert queue.remove(second)
    assert not queue.remove(second)
    assert queue.take_waiting() == [first]
    assert not queue.has_waiting()


def test_the_turn_queue_finds_turns_by_tag_until_they_finish():
    queue = TurnQueue()
    turn, oob = Turn([], {}), Turn([], {}, out_of_band=True)
    queue.tag(turn)
    queue.tag(oob)
    queue.add_out_of_band(oob)
    assert queue.tagged(turn.tag) is turn
    assert queue.out_of_band_turn(oob.tag) is oob
    assert queue.pending() == 1  # the out-of-band one (the other is not queued)
    queue.finished(oob)
    queue.finished(turn)
    assert queue.tagged(turn.tag) is None
    assert queue.out_of_band() == []
    assert not queue.has_out_of_band()


def test_item_only_turns_are_not_pending_answers():
    queue = TurnQueue()
    queue.add(Turn([Request("item", {})], None))
    assert queue.pending() == 0
    assert queue.has_waiting()


# Audio input ------------------------------------------------------------------------------


def test_commits_are_matched_in_order_and_the_servers_own_are_told_apart():
    audio = AudioInput()
    mine, theirs = Request("commit", {}), Request("commit", {})
    turn = Turn([theirs], {})
    audio.commit_sent(mine, None)
    audio.commit_sent(theirs, turn)
    audio.server_commits("item_vad")
    assert audio.committed("item_vad") is None  # the server's own commit
    assert audio.committed("item_1") == (mine, None)
    assert audio.committed("item_2") == (theirs, turn)
    assert audio.committed("item_3") is None  # none of ours waits


def test_a_refused_commit_waits_no_more():
    audio = AudioInput()
    first, second = Request("commit", {}), Request("commit", {})
    audio.commit_sent(first, None)
    audio.commit_sent(second, None)
    assert audio.refused(second) == (second, None)
    assert audio.refused(second) is None
    assert audio.committed("item_1") == (first, None)


def test_the_servers_own_commits_are_bounded():
    audio = AudioInput()
    mine = Request("commit", {})
    audio.commit_sent(mine, None)
    for n in range(VAD_ITEMS_KEPT + 1):
        audio.server_commits(f"item_{n}")
    # The oldest was forgotten: its committed now matches our commit.
    assert audio.committed("item_0") == (mine, None)


def test_server_started_responses_become_turns_until_done_or_dropped():
    audio = AudioInput()
    turn = audio.server_started("resp_1", 2.0)
    assert turn is not None
    assert (turn.by_server, turn.state, turn.response_id, turn.created_at) == (
        True,
        TurnState.ACTIVE,
        "resp_1",
        2.0,
    )
    assert audio.server_started("resp_1", 3.0) is None  # known already
    assert audio.server_done("resp_1") is turn
    assert not audio.has_server_turns()
    other = audio.server_started("resp_2", 4.0)
    commit = Request("commit", {})
    audio.commit_sent(commit, None)
    audio.not_sent(10)
    audio.not_sent(6)
    assert audio.dropped_bytes() == 16
    assert audio.dropped() == ([(commit, None)], [other])
    assert audio.dropped() == ([], [])


# Settings -----------------------------------------------------------------------------------


def update(**session: object) -> Request:
    return Request("update", {"type": "session.update", "session": dict(session)})


def test_an_update_counts_only_once_acknowledged_and_goes_one_at_a_time():
    settings = SessionSettings()
    first, second = update(instructions="a"), update(voice="b")
    settings.ask(first)
    settings.ask(second)
    assert settings.next_update() is first
    assert settings.next_update() is None  # one in flight
    assert settings.accepted() == {}
    assert settings.pending() == [{"instructions": "a"}, {"voice": "b"}]
    assert settings.acknowledged({"instructions": "a"}) is first
    assert settings.accepted() == {"instructions": "a"}
    assert settings.next_update() is second
    assert settings.refused(second, "no such voice")
    assert settings.accepted() == {"instructions": "a"}  # a refusal changes nothing
    assert settings.pending() == []


def test_a_drop_sends_the_update_in_flight_again_and_a_refused_restore_is_told_once():
    settings = SessionSettings()
    settings.begin({"instructions": "first"})
    restore = settings.restore_update()
    assert restore is not None
    assert restore.event["session"] == {"instructions": "first"}
    settings.acknowledged({"instructions": "first"})
    change = update(voice="x")
    settings.ask(change)
    assert settings.next_update() is change
    settings.dropped()
    assert settings.inflight is None
    again = settings.restore_update()
    assert again is not None
    assert again.event["session"] == {"instructions": "first"}
    assert settings.refused(again, "refused")
    assert settings.accepted() == {}
    lost = settings.take_lost()
    assert lost is not None
    assert lost.names == ("instructions",)
    assert settings.take_lost() is None
    assert settings.next_update() is change  # the update in flight goes again


@pytest.mark.parametrize("timeout", [5.0])
def test_an_unanswered_update_expires(timeout):
    settings = SessionSettings()
    request = update(instructions="a")
    settings.ask(request)
    sent = settings.next_update()
    assert sent is request
    request.sent_at = 1.0
    assert settings.expired(1.0 + timeout - 0.1, timeout) is None
    assert settings.expired(1.0 + timeout, timeout) is request
    assert settings.inflight is None


# The composition rules ----------------------------------------------------------------------

PACKAGE = Path(__file__).resolve().parents[1] / "rt_notebook"
PARTS = ["lifecycle.py", "turn_queue.py", "voice.py", "settings.py"]
COMPOSED = [
    *(PACKAGE / "protocol" / name for name in [*PARTS, "client.py"]),
    PACKAGE / "client/driver.py",
]


def private_reaches(path: Path) -> list[str]:
    """``x._name`` where ``x`` is neither ``self``/``cls`` nor a class of the same module."""
    tree = ast.parse(path.read_text())
    own = {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and node.attr.startswith("_")):
            continue
        if node.attr.startswith("__"):
            continue
        value = node.value
        if isinstance(value, ast.Name) and value.id in {"self", "cls", *own}:
            continue
        found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_part_of_the_core_nor_the_driver_reaches_into_private_members():
    assert [reach for path in COMPOSED for reach in private_reaches(path)] == []


def test_the_rule_check_sees_a_private_reach(tmp_path):
    path = tmp_path / "sample.py"
    path.write_text("class A:\n    def f(self, core):\n        return core._life, self._x, A._y\n")
    assert private_reaches(path) == ["sample.py:3: core._life"]


def test_the_core_is_one_class_with_no_stubs_and_its_parts_do_not_import_it():
    assert ClientCore.__bases__ == (object,)
    for path in COMPOSED:
        assert "NotImplementedError" not in path.read_text(), path.name
    for name in PARTS:
        tree = ast.parse((PACKAGE / "protocol" / name).read_text())
        imported = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        }
        assert "client" not in imported, name
