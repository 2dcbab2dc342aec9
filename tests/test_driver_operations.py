"""The driver's operations against the embedded server: the only owner of the client core."""

from __future__ import annotations

import pytest

from rt_notebook.errors import RealtimeConnectionError
from rt_notebook.protocol.conversation import Conversation
from rt_notebook.server import EmbeddedServer
from tests.test_reconnect import new_session, texts
from tests.timing import WAIT, wait_until


@pytest.fixture
def fast():
    with EmbeddedServer(pace=0.0) as server:
        yield server


def loaded(*texts_: str) -> Conversation:
    """A conversation built elsewhere (as a notebook's saved one would be)."""
    conversation = Conversation()
    previous = None
    for n, text in enumerate(texts_):
        item = {
            "id": f"item_saved_{n}",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_text", "text": text}],
        }
        conversation.apply(
            {"type": "conversation.item.added", "previous_item_id": previous, "item": item}
        )
        previous = item["id"]
    return conversation


def test_a_snapshot_is_restored_on_a_new_connection_and_the_server_has_it(fast):
    session = new_session(fast)
    try:
        session.driver.restore(loaded("first", "second", "third")).result(WAIT)
        assert session.status.state == "ready"
        assert session.status.restored == 3
        assert texts(session) == [("user", "first"), ("user", "second"), ("user", "third")]
        result = session.ask("after the restore").wait(WAIT)
        assert result.text == "Echo: after the restore"
        # The server holds the restored items: an answer can come after any of them.
        assert session.item_ids()[:3] == ("item_saved_0", "item_saved_1", "item_saved_2")
    finally:
        session.close()


def test_a_restore_that_cannot_connect_fails_and_keeps_the_snapshot(fast):
    session = new_session(fast)
    fast.stop()
    with pytest.raises(RealtimeConnectionError):
        session.driver.restore(loaded("kept")).result(WAIT)
    assert session.status.state == "closed"
    assert texts(session) == [("user", "kept")]


def test_the_driver_reports_its_tasks_and_none_are_left_after_close(fast):
    session = new_session(fast).connect()
    assert session.driver.tasks()  # the reader and the writer
    session.close()
    wait_until(lambda: session.driver.tasks() == set(), "the driver's tasks to end")
