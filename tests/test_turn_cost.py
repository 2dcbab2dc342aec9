"""A ``%%realtime`` cell's work does not grow with the conversation (issue 11, goal 5).

Counted, not timed: the item snapshots a cell builds (each copies an item) are the same
at 10 items and at 60, so no per-cell step copies the whole conversation. The cells run
through the real magic in an in-process IPython shell, against the embedded server. The
same for a chat panel's turn, and the mirror places a turn's items without walking its
list of ids.
"""

from __future__ import annotations

import contextlib
import io
import json
import time

import pytest

from rt_notebook.client import driver as _driver
from tests.timing import UNIT, WAIT


def wait_for(predicate, what):
    """Wait (on a condition, not a fixed time) until ``predicate()`` holds."""
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(UNIT / 10)


@pytest.fixture
def shell(offline_server):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "rt_notebook")
    return shell


@pytest.fixture
def counted(monkeypatch):
    """How many ItemSnapshots were built so far."""
    built = [0]
    real = _driver.ItemSnapshot

    def counting(*args, **kwargs):
        built[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(_driver, "ItemSnapshot", counting)
    return built


def _grown(session, count):
    for n in range(count - session.item_count):
        session.add_message(f"earlier message {n}", role="assistant" if n % 2 else "user")
    assert session.item_count == count
    return session


def _cell(shell, name, line, text):
    with contextlib.redirect_stdout(io.StringIO()):
        shell.run_cell_magic("realtime", f"--session {name} --out r {line}", text)
    result = shell.user_ns.pop("r")
    assert result.status == "completed"
    return result


@pytest.mark.parametrize("line", ["", "--no-response"], ids=["ask", "add"])
def test_a_cell_copies_no_more_items_in_a_long_conversation(
    shell, offline_server, make_session, counted, line
):
    import rt_notebook

    costs = []
    for count in (10, 60):
        name = f"turns-{count}-{bool(line)}"
        session = rt_notebook.connect(
            name,
            websocket_base_url=offline_server.websocket_base_url,
            api_key=offline_server.token,
        )
        _grown(session, count)
        _cell(shell, name, "", "warm-up")  # first-use work out of the count
        before = counted[0]
        if line:  # added without an answer, then re-run: the replace path reads the order
            with contextlib.redirect_stdout(io.StringIO()):
                shell.run_cell_magic("realtime", f"--session {name} {line}", "same cell")
                shell.run_cell_magic("realtime", f"--session {name} {line}", "same cell")
                shell.run_line_magic("realtime", f"status --session {name}")
        else:
            _cell(shell, name, "", "a question")
            _cell(shell, name, "", "a question")  # re-run: replaces its turn
        costs.append(counted[0] - before)
        assert session.item_count == count + 2 + (1 if line else 2)  # warm-up, then the cell
        session.close()
    assert costs[0] == costs[1], costs
    assert costs[0] <= 8, costs  # only the answers' own items


def test_item_ids_and_count_read_the_order_without_copying_items(session, counted):
    first = session.add_message("one")
    second = session.add_message("two", after="root")
    built = counted[0]
    assert session.item_ids() == (second, first)
    assert session.item_count == 2
    assert session.item_index(first) == 1
    assert counted[0] == built
    session.delete_item(second)
    assert session.item_ids() == (first,)
    assert session.item_count == 1


# The mirror's order: placing a turn's items scans no ids -------------------------------


class _CountingList(list):
    """A list that counts the calls that walk it (membership, index, remove, iteration)."""

    walks = 0

    def __contains__(self, value):
        type(self).walks += 1
        return super().__contains__(value)

    def index(self, *args):
        type(self).walks += 1
        return super().index(*args)

    def remove(self, value):
        type(self).walks += 1
        return super().remove(value)

    def __iter__(self):
        type(self).walks += 1
        return super().__iter__()


def _added(item_id, previous):
    item = {"id": item_id, "type": "message", "role": "user", "content": []}
    return {"type": "conversation.item.added", "previous_item_id": previous, "item": item}


def _done(item_id, previous):
    return {**_added(item_id, previous), "type": "conversation.item.done"}


def test_placing_a_turn_walks_the_order_no_matter_how_long_it_is():
    from rt_notebook.protocol.conversation import Conversation

    walks = []
    for count in (10, 1000):
        conversation = Conversation()
        previous = None
        for n in range(count):
            conversation.apply(_added(f"old{n}", previous))
            previous = f"old{n}"
        conversation._order = _CountingList(conversation._order)
        _CountingList.walks = 0
        for n in range(5):  # five turns: a question and its answer, each added then done
            for item_id in (f"q{n}", f"a{n}"):
                conversation.apply(_added(item_id, previous))
                conversation.apply(_done(item_id, None))  # the service's null anchor
                previous = item_id
        assert conversation.index_of("a4") == count + 9
        walks.append(_CountingList.walks)
    assert walks == [0, 0]


def test_positions_stay_right_through_inserts_moves_and_deletions():
    from rt_notebook.protocol.conversation import Conversation

    conversation = Conversation()
    conversation.apply(_added("a", None))
    conversation.apply(_added("c", "a"))
    conversation.apply(_added("b", "a"))  # in the middle
    conversation.apply(_added("z", "nowhere"))  # unknown anchor: at the end
    assert conversation.item_ids() == ("a", "b", "c", "z")
    assert [conversation.index_of(i) for i in "abcz"] == [0, 1, 2, 3]
    conversation.apply({"type": "conversation.item.deleted", "item_id": "b"})
    assert [conversation.index_of(i) for i in "acz"] == [0, 1, 2]
    assert conversation.index_of("b") is None
    conversation.apply(_added("a", "z"))  # the server moved it
    assert conversation.item_ids() == ("c", "z", "a")
    assert [conversation.index_of(i) for i in "cza"] == [0, 1, 2]
    conversation.forget("a")  # the last one
    conversation.apply(_added("d", "z"))
    assert conversation.item_ids() == ("c", "z", "d")
    assert [conversation.index_of(i) for i in "czd"] == [0, 1, 2]
    conversation.apply(_added("e", None))  # at the root
    assert [conversation.index_of(i) for i in "eczd"] == [0, 1, 2, 3]


# The chat panel: a turn copies only its own items ---------------------------------------


def _feed(session, *events):
    for event in events:
        session._on_raw(json.dumps(event).encode())


def _answer(n, previous):
    item = {"id": f"a{n}", "type": "message", "role": "assistant", "status": "in_progress"}
    done = {
        **item,
        "status": "completed",
        "content": [{"type": "output_text", "text": f"answer {n}"}],
    }
    response = {"id": f"r{n}", "status": "in_progress", "conversation_id": "c"}
    return [
        _added(f"q{n}", previous),
        {"type": "response.created", "response": response},
        {"type": "response.output_item.added", "response_id": f"r{n}", "item": item},
        {"type": "conversation.item.added", "previous_item_id": f"q{n}", "item": item},
        {
            "type": "response.output_text.delta",
            "response_id": f"r{n}",
            "item_id": f"a{n}",
            "delta": f"answer {n}",
        },
        {"type": "response.output_item.done", "response_id": f"r{n}", "item": done},
        {"type": "response.done", "response": {**response, "status": "completed"}},
    ]


def _panel_turns_cost(counted, count):
    """What a panel's three turns after ``count`` items cost: item snapshots built, and
    the messages and bytes its widget sends. Its writer thread is stopped and the test
    flushes once per turn, so the figures do not depend on how threads interleave."""
    from rt_notebook.client.session import Session
    from rt_notebook.frontends.chat import ChatPanel

    session = Session(websocket_base_url="ws://127.0.0.1:9/v1", api_key="unit-test-key")
    session.connected = True  # never opened: events are fed by hand
    previous = None
    for n in range(count):
        _feed(session, _added(f"old{n:04d}", previous))  # ids of one length at 10 and 60
        previous = f"old{n:04d}"
    panel = ChatPanel(session)
    try:
        panel._loop.stop()  # the test is the writer from here on
        panel._writer.join(WAIT)
        panel._flush()
        assert len(panel._bubbles) == count
        before = counted[0], panel.view.ops_sent, panel.view.bytes_sent
        for n in range(3):
            _feed(session, *_answer(n, previous))
            previous = f"a{n}"
            panel._flush()
        assert panel._doc.entries["i:a2"]["blocks"] == [["p", "answer 2"]]
        after = counted[0], panel.view.ops_sent, panel.view.bytes_sent
        return tuple(b - a for a, b in zip(before, after, strict=True))
    finally:
        panel.close()
        session.connected = False


def test_a_panel_turn_copies_no_more_items_in_a_long_conversation(counted):
    costs = [_panel_turns_cost(counted, count) for count in (10, 60)]
    assert costs[0] == costs[1], costs  # snapshots, messages and bytes alike
    snapshots, messages, sent = costs[0]
    assert snapshots <= 3 * 8, costs  # each turn reads its own two items, a few times
    assert messages <= 3 * 3, costs  # two entries and their final state, never the list
    assert sent <= 3 * 1_500, costs
