"""The events hub and inspector pane without a front end: links hold only ids, messages
with hostile keys are ignored, a click on a running turn's link grows an Output live."""

from __future__ import annotations

import threading

import ipywidgets
import pytest

from rt_notebook.client import registry as _registry
from rt_notebook.render import inspector_pane
from rt_notebook.widgets import events
from tests.browser.hostile import HOSTILE_SUFFIX


@pytest.fixture
def registered(paced_server, make_session):
    """A Session the hub can find (it looks in the registry, like a notebook's)."""
    session = make_session(paced_server)
    with _registry._sessions_lock:
        _registry._sessions["events-hub-test"] = session
    yield session
    with _registry._sessions_lock:
        _registry._sessions.pop("events-hub-test", None)


def test_a_link_holds_the_kernels_token_and_an_id_or_nothing():
    hub = events.EventsHub()
    assert hub.link("req_abc123") == f"[events](#rt-events-{hub.token}-req_abc123)"
    for hostile in ("req_1" + HOSTILE_SUFFIX, "", "a" * 81, "req 1", "req_1)[x](javascript:1"):
        assert hub.link(hostile) == ""


def test_hostile_or_unknown_messages_open_nothing():
    hub = events.EventsHub()
    opened = []
    hub.opener = lambda key, side: opened.append(key) or ""
    for content in (
        None,
        "open",
        {"event": "open"},
        {"event": "open", "key": 5},
        {"event": "open", "key": "req_1" + HOSTILE_SUFFIX},
        {"event": "close", "key": "req_1"},
    ):
        hub._handle_message(None, content, [])
    assert opened == []
    assert hub.opened == []
    hub._handle_message(None, {"event": "ready", "app": "JupyterLab" * 20}, [])
    assert hub.ready.is_set()
    assert len(hub.app) == 60
    hub._handle_message(None, {"event": "open", "key": "req_1", "app": "JupyterLab"}, [])
    assert opened == ["req_1"]


def test_a_click_opens_what_the_views_installed_and_a_bare_hub_names_the_command(monkeypatch):
    hub = events.EventsHub()
    notes: list[str] = []
    monkeypatch.setattr(hub, "send", lambda content: notes.append(content["text"]))
    monkeypatch.setattr(events, "REOPEN_AFTER_S", 0.0)
    hub._handle_message(None, {"event": "open", "key": "req_1", "app": "Notebook"}, [])
    assert len(notes) == 1
    assert "%realtime inspect req_1 --live" in notes[0]  # no view made a link: the command
    monkeypatch.setattr(inspector_pane, "hub", lambda: hub)
    assert inspector_pane.events_link("req_2") == hub.link("req_2") != ""
    hub._handle_message(None, {"event": "open", "key": "req_2", "app": "Notebook"}, [])
    assert notes[1] == inspector_pane.open_inspector("req_2", side=False)
    assert "no side area" in notes[1]
    assert hub.opened == ["req_1", "req_2"]


def test_without_a_side_area_the_note_names_the_command():
    note = inspector_pane.open_inspector("req_x1", side=False)
    assert "%realtime inspect req_x1 --live" in note


def test_an_unknown_turn_says_so_in_the_pane():
    out = ipywidgets.Output()
    assert inspector_pane.open_inspector("resp_nothing", side=False, into=out) == ""
    assert "no such turn" in out.outputs[0]["data"]["text/markdown"]


def test_the_pane_grows_while_the_turn_runs_and_shows_only_that_turn(registered):
    session = registered
    other = session.ask("another turn")
    other.wait(30)
    out = ipywidgets.Output()
    states: list[str] = []
    changed = threading.Condition()

    def record(change):
        with changed:
            states.append(change["new"][0]["data"]["text/markdown"])
            changed.notify_all()

    out.observe(record, "outputs")
    handle = session.ask("stream " * 120)
    with changed:  # open it while it runs: once its first delta has arrived
        assert changed.wait_for(lambda: session.timeline(handle.request_id) is not None, 30)
    inspector_pane.open_inspector(handle.request_id, side=False, into=out)
    handle.wait(60)
    with changed:
        assert changed.wait_for(lambda: states and "(done)" in states[-1], 30)
    assert "(running)" in states[0]
    assert len(states) >= 2
    final = states[-1]
    assert handle.response_id in final
    assert other.response_id not in final
    assert "response.done" in final


def test_the_streaming_answer_carries_the_link_as_its_own_control(monkeypatch):
    """While an answer streams, its "events" link is the widget's own element (an href
    of ids only, checked again by the page), never Markdown appended to the tail."""
    from rt_notebook.render import cell
    from rt_notebook.widgets import stream

    hub = stream.StreamHub()
    hub.ready.set()  # as if a page installed the renderer
    monkeypatch.setattr(stream, "_made_hub", lambda: hub)
    made = cell._open_stream("waiting", "[events](#rt-events-abc-req_1)", plain=False)
    assert made is not None
    assert made.link == "#rt-events-abc-req_1"
    for hostile in ("", "[events](javascript:alert(1))", "[x](#rt-events-a b)"):
        made = cell._open_stream("waiting", hostile, plain=False)
        assert made is not None
        assert made.link == ""


def test_open_is_idempotent_per_turn_and_front_end(monkeypatch):
    hub = events.EventsHub()
    opened = []
    hub.opener = lambda key, side: opened.append(key) or ""
    monkeypatch.setattr(events, "REOPEN_AFTER_S", 3600.0)  # one burst, however slow the machine

    def click(key: str, app: str = "JupyterLab") -> None:
        hub._handle_message(None, {"event": "open", "key": key, "app": app}, [])

    for _ in range(300):
        click("req_flood")
    assert opened == ["req_flood"]
    click("req_flood", app="Notebook")  # another front end asks: it gets its answer
    click("req_other")
    click("req_flood")  # another turn was asked in between: this is a new ask
    assert opened == ["req_flood", "req_flood", "req_other", "req_flood"]
    monkeypatch.setattr(events, "REOPEN_AFTER_S", 0.0)  # the pane may have been closed since
    click("req_flood")
    assert opened[-1] == "req_flood"
    assert len(opened) == 5
