"""A ``%%realtime`` cell's work does not grow with the conversation (issue 11, goal 5).

Counted, not timed: the item snapshots a cell builds (each copies an item) are the same
at 10 items and at 60, so no per-cell step copies the whole conversation. The cells run
through the real magic in an in-process IPython shell, against the embedded server.
"""

from __future__ import annotations

import contextlib
import io

import pytest

from rt_notebook import _driver


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
