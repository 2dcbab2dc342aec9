"""The chat panel without a browser: bubble HTML, exports, and the widget logic driven by a
Session fed events by hand (deterministic pacing) or talking to the embedded server."""

from __future__ import annotations

import asyncio
import json
import threading

import ipywidgets as widgets
import nbformat
import pytest

from rt_notebook.chat import ChatPanel, PanelState
from rt_notebook.errors import ConfigurationError, RealtimeError, ServerError
from rt_notebook.magics import RealtimeMagics
from rt_notebook.responses import ItemSnapshot
from rt_notebook.server import EmbeddedServer
from rt_notebook.server.responders import echo_reply
from rt_notebook.session import Session
from rt_notebook.widgets.bubbles import error_html, item_html, markdown_html, outgoing_html
from rt_notebook.widgets.export import hard_breaks, transcript_cells, transcript_markdown
from tests import timing
from tests.timing import WAIT, within

XSS = '<img src=x onerror="window.__rt_xss=1"> <script>window.__rt_xss=2</script>'


def wait_until(predicate, timeout=10.0, what="condition"):
    """Poll ``predicate`` until it is true; fail after ``timeout`` (scaled) seconds."""
    timing.wait_until(predicate, what, timing.within(timeout))


def snapshot(item_id="item_1", type="message", role="assistant", **fields):
    values = {
        "status": "completed",
        "text": "",
        "call_id": None,
        "name": None,
        "arguments": None,
        "output": None,
        "response_id": "resp_1" if role == "assistant" else None,
    }
    values.update(fields)
    return ItemSnapshot(id=item_id, type=type, role=role, **values)


# Bubble HTML ------------------------------------------------------------------------


def test_raw_html_in_model_text_is_escaped_not_rendered():
    rendered = markdown_html(f"Look: {XSS} **bold**")
    assert "<img" not in rendered
    assert "<script" not in rendered
    assert "&lt;img" in rendered
    assert "&lt;script&gt;" in rendered
    assert "<strong>bold</strong>" in rendered


def test_script_links_and_remote_images_are_neutralised():
    rendered = markdown_html(
        "[a](javascript:alert(1)) [b](JaVaScRiPt:alert(2)) [c](data:text/html,x) "
        "![pixel](https://example.com/leak.png) [ok](https://example.com/)"
    )
    assert 'href="javascript:' not in rendered.lower()
    assert 'href="data:' not in rendered
    assert "<img" not in rendered  # images are off: nothing is fetched when shown
    assert '<a href="https://example.com/" target="_blank" rel="noopener' in rendered


def test_code_keeps_its_characters():
    rendered = markdown_html("Use `a<b && c` or\n\n```\nif a < b: pass\n```")
    assert "<code>a&lt;b &amp;&amp; c</code>" in rendered  # shows as a<b && c
    assert "if a &lt; b: pass" in rendered


def test_lines_typed_with_shift_enter_stay_lines():
    assert "first<br />\nsecond" in markdown_html("first\nsecond")
    exported = hard_breaks("first\nsecond\n\n```\ncode\nblock\n```")
    assert exported == "first  \nsecond\n\n```\ncode\nblock\n```"


def test_bubbles_for_each_kind_of_item():
    user = item_html(snapshot(role="user", text="hi *there*"))
    assert 'data-role="user"' in user
    assert "<em>there</em>" in user
    streaming = item_html(snapshot(status="in_progress", text="Hal"), "in_progress")
    assert 'data-status="in_progress"' in streaming
    assert "streaming…" in streaming
    cancelled = item_html(snapshot(status="incomplete", text="Half"), "cancelled")
    assert 'data-response-status="cancelled"' in cancelled
    assert "rt-chat-flag" in cancelled
    call = item_html(
        snapshot(type="function_call", role=None, name="<b>f</b>", arguments='{"x": 1}')
    )
    assert "&lt;b&gt;f&lt;/b&gt;" in call
    assert "{\n  &quot;x&quot;: 1\n}" in call
    output = item_html(
        snapshot(type="function_call_output", role=None, call_id="call_1", output=XSS)
    )
    assert "<img" not in output
    assert "<script" not in output
    error = error_html(f"bad: {XSS}")
    assert "<img" not in error
    assert 'data-type="error"' in error


def test_attribute_values_are_escaped():
    rendered = item_html(snapshot(item_id='x" onmouseover="alert(1)', text="t"))
    assert 'onmouseover="alert' not in rendered
    assert "&quot; onmouseover=&quot;" in rendered


# Exports ------------------------------------------------------------------------------


def test_transcript_markdown_and_cells_keep_turns_together():
    items = [
        snapshot("s", role="system", text="Be brief."),
        snapshot("u1", role="user", text="weather {city}?"),
        snapshot("c1", type="function_call", role=None, name="weather", arguments="{}"),
        snapshot("o1", type="function_call_output", role=None, call_id="call_1", output="sun"),
        snapshot("a1", text="Sunny <b>today</b>.", response_id="resp_2"),
        snapshot("u2", role="user", text="thanks"),
    ]
    markdown = transcript_markdown(items, ["rate_limited: slow down"])
    assert "**System:**\n\nBe brief." in markdown
    assert "**Function call** `weather`" in markdown
    assert "Sunny &lt;b>today&lt;/b>." in markdown
    assert markdown.rstrip().endswith("**Error:** rate_limited: slow down")
    cells = transcript_cells(items)
    sources = [cell.source.splitlines()[0] for cell in cells]
    assert sources == [
        "%%realtime --role system --no-response",
        "%%realtime --no-interpolate",
        "%%realtime --function-output call_1",
        "%%realtime --no-response",
    ]
    assert "**Function call** `weather`" in cells[1].outputs[0]["data"]["text/markdown"]
    assert cells[2].outputs[0]["metadata"]["rt_notebook"]["response_id"] == "resp_2"
    notebook = nbformat.v4.new_notebook(cells=cells)
    nbformat.validate(notebook)


# The panel, fed events by hand --------------------------------------------------------


def fed_session():
    """A Session that is never opened: the test feeds it server events directly."""
    session = Session(websocket_base_url="ws://127.0.0.1:9/v1", api_key="unit-test-key")
    session.connected = True
    return session


def feed(session, *events):
    for event in events:
        session._on_raw(json.dumps(event).encode())


def user_turn(item_id, text, previous=None):
    item = {
        "id": item_id,
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": [{"type": "input_text", "text": text}],
    }
    return [
        {"type": "conversation.item.added", "previous_item_id": previous, "item": item},
        {"type": "conversation.item.done", "previous_item_id": previous, "item": item},
    ]


def response_start(response_id, item_id, previous):
    item = {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress"}
    return [
        {
            "type": "response.created",
            "response": {"id": response_id, "status": "in_progress", "conversation_id": "c"},
        },
        {"type": "response.output_item.added", "response_id": response_id, "item": item},
        {"type": "conversation.item.added", "previous_item_id": previous, "item": item},
    ]


def delta(response_id, item_id, text):
    return {
        "type": "response.output_text.delta",
        "response_id": response_id,
        "item_id": item_id,
        "delta": text,
    }


def response_end(response_id, item_id, text, status="completed"):
    item = {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": "completed" if status == "completed" else "incomplete",
        "content": [{"type": "output_text", "text": text}],
    }
    return [
        {
            "type": "response.output_text.done",
            "response_id": response_id,
            "item_id": item_id,
            "text": text,
        },
        {"type": "response.output_item.done", "response_id": response_id, "item": item},
        {
            "type": "response.done",
            "response": {"id": response_id, "status": status, "output": [item]},
        },
    ]


class FrozenClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def fed_panel():
    session = fed_session()
    panel = ChatPanel(session)
    panel._clock = FrozenClock()
    yield session, panel
    panel.close()
    session.connected = False  # nothing may try to send on it later


def bubble_widget(panel, item_id):
    wait_until(lambda: item_id in panel._bubbles, what=f"a bubble for {item_id}")
    return panel._bubbles[item_id].widget


def record_values(widget):
    values = []
    widget.observe(lambda change: values.append(change["new"]), names="value")
    return values


def test_streaming_bubble_is_paced_and_ends_with_the_exact_text(fed_panel):
    session, panel = fed_panel
    feed(session, *user_turn("u1", "Count"), *response_start("r1", "a1", "u1"))
    user_values = record_values(bubble_widget(panel, "u1"))
    values = record_values(bubble_widget(panel, "a1"))
    feed(session, delta("r1", "a1", "one"))
    wait_until(lambda: values, what="the first delta, shown at once")
    feed(session, *(delta("r1", "a1", f" w{n}") for n in range(50)))  # the clock stands
    panel._clock.now += 0.06  # one interval later: one more update may go out
    feed(session, delta("r1", "a1", " last"))
    wait_until(lambda: len(values) >= 2 and "last" in values[-1], what="a paced update")
    final = "one " + " ".join(f"w{n}" for n in range(50)) + " last."
    feed(session, *response_end("r1", "a1", final))
    wait_until(lambda: final in values[-1] and 'data-status="completed"' in values[-1])
    assert len(values) == 3  # first delta, one paced update, the final text
    assert "streaming…" in values[0]
    assert user_values == []  # only the streaming bubble is rewritten


def test_every_widget_write_comes_from_the_writer_thread(fed_panel, monkeypatch):
    session, panel = fed_panel
    threads = []
    original = widgets.Widget.send_state

    def recording_send_state(self, key=None):
        threads.append(threading.current_thread().name)
        return original(self, key)

    monkeypatch.setattr(widgets.Widget, "send_state", recording_send_state)
    feed(session, *user_turn("u1", "Hi"), *response_start("r1", "a1", "u1"))
    feed(session, delta("r1", "a1", "Hello"), *response_end("r1", "a1", "Hello."))
    wait_until(lambda: "Hello." in bubble_widget(panel, "a1").value)
    wait_until(lambda: panel.state is PanelState.READY)
    assert threads
    assert set(threads) == {"rt_notebook-chat"}


def test_bubbles_follow_server_order_and_deletions(fed_panel):
    session, panel = fed_panel
    feed(session, *user_turn("u2", "second"), *user_turn("u1", "first", previous=None))
    wait_until(lambda: len(panel._transcript.children) == 2)
    first, second = (child.value for child in panel._transcript.children)
    assert "first" in first
    assert "second" in second
    feed(session, {"type": "conversation.item.deleted", "item_id": "u1"})
    wait_until(lambda: len(panel._transcript.children) == 1)
    assert "u1" not in panel._bubbles


def test_server_error_gets_a_bubble_and_the_status_line(fed_panel):
    session, panel = fed_panel
    feed(session, *user_turn("u1", "hi"))
    error = {"type": "invalid_request_error", "code": "bad_thing", "message": XSS}
    feed(session, {"type": "error", "error": error})
    wait_until(lambda: panel.state is PanelState.ERROR)
    wait_until(lambda: len(panel._transcript.children) == 2)
    bubble = panel._transcript.children[-1].value
    assert "bad_thing" in bubble
    assert "<img" not in bubble
    # The status line is written by the panel's writer thread, after the state changes.
    wait_until(lambda: 'data-state="error"' in panel._status.value, what="the error status")
    assert "<img" not in panel._status.value
    assert panel._errors() == [f"bad_thing: {XSS}"]
    feed(session, *response_start("r1", "a1", "u1"))
    wait_until(lambda: panel.state is PanelState.RESPONDING, what="the error to clear")


def test_cancelled_response_is_marked(fed_panel):
    session, panel = fed_panel
    feed(session, *user_turn("u1", "long"), *response_start("r1", "a1", "u1"))
    feed(session, delta("r1", "a1", "Half"), *response_end("r1", "a1", "Half", "cancelled"))
    widget = bubble_widget(panel, "a1")
    wait_until(lambda: 'data-response-status="cancelled"' in widget.value)
    assert 'data-status="incomplete"' in widget.value


def test_composer_messages_reach_the_panel(fed_panel, monkeypatch):
    session, panel = fed_panel
    sent, stopped = [], []
    monkeypatch.setattr(panel, "send", sent.append)
    monkeypatch.setattr(session, "cancel", lambda: stopped.append(True))
    panel.composer._handle_message(panel.composer, {"event": "submit", "text": "a\nb"}, [])
    panel.composer._handle_message(panel.composer, {"event": "submit", "text": "  "}, [])
    panel.composer._handle_message(panel.composer, {"event": "stop"}, [])
    panel.composer._handle_message(panel.composer, {"event": "unknown"}, [])
    assert sent == ["a\nb"]
    assert stopped == [True]


# The panel on a real Session (embedded server) ------------------------------------------


def assistant_texts(panel):
    return [b.value for b in panel._transcript.children if 'data-role="assistant"' in b.value]


def test_send_streams_the_answer_and_exports_the_transcript(session, tmp_path):
    panel = ChatPanel(session)
    try:
        caller = threading.current_thread().name
        threads = []
        original = session.ask

        def spy(*args, **kwargs):
            threads.append(threading.current_thread().name)
            return original(*args, **kwargs)

        session.ask = spy
        handle = panel.send("Hello **panel**\nsecond line").result(WAIT)
        assert threads
        assert threads[0] != caller  # the comm thread is never held up
        assert handle.wait(WAIT).status == "completed"
        final = session.items[-1].text
        assert "Hello **panel**" in final
        wait_until(lambda: panel.state is PanelState.READY)
        wait_until(lambda: len(assistant_texts(panel)) == 1)
        wait_until(lambda: 'data-status="completed"' in assistant_texts(panel)[0])
        assert "<strong>panel</strong>" in assistant_texts(panel)[0]

        assert "**Assistant:**" in panel.to_markdown()
        data = json.loads(panel.to_json())
        assert [item["role"] for item in data["items"]] == ["user", "assistant"]
        assert data["responses"][0]["status"] == "completed"
        markdown_path = panel.write_transcript(tmp_path / "chat.md")
        assert markdown_path.read_text() == panel.to_markdown()
        json_path = panel.write_transcript(tmp_path / "chat.json")
        assert json.loads(json_path.read_text())["items"][1]["text"] == final
        notebook_path = panel.write_transcript(tmp_path / "chat.ipynb")
        notebook = nbformat.read(notebook_path, as_version=4)
        nbformat.validate(notebook)
        assert notebook.cells[1].source.startswith("%%realtime\nHello **panel**")
    finally:
        panel.close()


def test_panel_and_cells_share_one_conversation(session):
    first, second = ChatPanel(session), ChatPanel(session)
    try:
        session.ask("from a cell").wait(WAIT)  # what %%realtime does
        first.send("from the panel").result(WAIT).wait(WAIT)
        texts = [item.text for item in session.items]
        assert texts[0] == "from a cell"
        assert texts[2] == "from the panel"  # the next cell sees it
        for panel in (first, second):
            wait_until(lambda p=panel: len(p._transcript.children) == 4)
            wait_until(lambda p=panel: all("streaming" not in b for b in assistant_texts(p)))
        assert [b.value for b in first._transcript.children] == [
            b.value for b in second._transcript.children
        ]
    finally:
        first.close()
        second.close()


def test_stop_cancels_the_running_response(paced_server, make_session):
    session = make_session(paced_server)
    panel = ChatPanel(session)
    try:
        handle = panel.send(" ".join(f"w{n}" for n in range(300))).result(WAIT)
        wait_until(lambda: handle.text, what="the answer to start")
        wait_until(lambda: panel.state is PanelState.RESPONDING)
        panel.composer._handle_message(panel.composer, {"event": "stop"}, [])
        assert handle.wait(WAIT).status == "cancelled"
        wait_until(lambda: any("cancelled" in b for b in assistant_texts(panel)))
        wait_until(lambda: panel.state is PanelState.READY)
        assert not panel.composer.responding
    finally:
        panel.close()


def test_stop_before_the_turn_is_submitted_sends_nothing(session, monkeypatch):
    panel = ChatPanel(session)
    try:
        entered, release = threading.Event(), threading.Event()
        # Hold the sender thread so the message is still waiting for it when Stop comes.
        panel._sender.submit(lambda: (entered.set(), release.wait(WAIT)))
        assert entered.wait(WAIT)
        future = panel.send("never sent")
        widget = outgoing_widget(panel, "never sent")
        assert 'data-status="queued"' in widget.value  # shown before the sender ran
        panel.stop()
        release.set()
        assert future.result(WAIT) is None
        wait_until(lambda: 'data-status="stopped"' in widget.value, what="not sent")
        assert session.items == []
    finally:
        panel.close()


class HeldResponder:
    """A live backend that never answers: its responses stay in progress until cancelled,
    so a test decides when a turn ends instead of racing the server to it."""

    name = "held"

    def describe(self):
        return "a backend that holds every response until it is cancelled (tests)"

    def prepare(self, request):
        return request

    async def stream(self, prepared):
        await asyncio.Event().wait()  # ends when the server cancels this task
        yield []


@pytest.fixture(scope="module")
def held_server():
    with EmbeddedServer(responder=HeldResponder()) as server:
        yield server


def test_stop_while_the_turn_is_being_submitted_cancels_it(held_server, make_session, monkeypatch):
    # The server holds the response, so only the cancel can end the turn: it cannot finish
    # before Stop lands however the threads are scheduled.
    session = make_session(held_server)
    panel = ChatPanel(session)
    try:
        original = session.ask

        def ask_then_stop(*args, **kwargs):
            handle = original(*args, **kwargs)
            panel.stop()  # pressed while ask() was returning: the turn must not go on
            return handle

        monkeypatch.setattr(session, "ask", ask_then_stop)
        handle = panel.send("stopped on its way").result(WAIT)
        assert handle.wait(WAIT).status == "cancelled"
        assert [item.role for item in session.items if item.role == "assistant"] == []
    finally:
        panel.close()


# Outgoing (queued) bubbles: each message is one turn --------------------------------------


def outgoing_widget(panel, text):
    """The panel's outgoing bubble for ``text`` once it is in the transcript."""

    def find():
        for child in panel._transcript.children:
            value = child.value
            if 'data-role="user"' in value and text in value and "rt-chat-flag" in value:
                return child
        return None

    wait_until(lambda: find() is not None, what=f"an outgoing bubble for {text!r}")
    return find()


def user_bubbles(panel, text):
    return [
        child.value
        for child in panel._transcript.children
        if 'data-role="user"' in child.value and text in child.value
    ]


LONG = " ".join(f"cell{n}" for n in range(2000))  # ~40 s at the paced server's pace


def test_a_message_sent_during_a_cell_answer_shows_queued_then_as_the_item(
    paced_server, make_session
):
    session = make_session(paced_server)
    panel = ChatPanel(session)
    try:
        cell = session.ask(LONG)  # what a running %%realtime cell does
        wait_until(lambda: cell.text, what="the cell's answer to start")
        future = panel.send("queued *behind* <b>it</b>")
        widget = outgoing_widget(panel, "queued")
        assert not cell.done()  # shown while the cell's answer still streams
        assert 'data-status="queued"' in widget.value
        assert "<em>behind</em>" in widget.value  # the same Markdown as other bubbles
        assert "<b>" not in widget.value
        assert panel._transcript.children[-1] is widget  # after the running answer
        handle = future.result(WAIT)
        message_id = handle.item_ids[0]
        assert session.item(message_id) is None  # not sent while the cell's turn runs
        cell.cancel()
        result = handle.wait(WAIT)
        assert result.status == "completed"
        assert result.text == echo_reply("queued *behind* <b>it</b>")
        wait_until(lambda: message_id in panel._bubbles, what="the message's own bubble")
        wait_until(lambda: widget not in panel._transcript.children, what="queued bubble gone")
        bubbles = user_bubbles(panel, "queued")
        assert len(bubbles) == 1
        assert f'data-item-id="{message_id}"' in bubbles[0]
        assert 'data-status="completed"' in bubbles[0]
        assert panel._outgoing == []
        # Its items are a turn of their own for the inspector.
        timeline = session.timeline(message_id)
        assert timeline is not None
        assert message_id in timeline.item_ids
        assert result.id in timeline.response_ids
        markdown = RealtimeMagics(shell=None)._command_inspect(session, [message_id])
        assert "conversation.item.create" in markdown.data
        assert "response.done" in markdown.data
    finally:
        panel.close()


def test_stop_cancels_the_cell_and_the_queued_message_which_says_not_sent(
    paced_server, make_session
):
    session = make_session(paced_server)
    panel = ChatPanel(session)
    try:
        cell = session.ask(LONG)
        wait_until(lambda: cell.text, what="the cell's answer to start")
        handle = panel.send("never sent").result(WAIT)
        widget = outgoing_widget(panel, "never sent")
        panel.composer._handle_message(panel.composer, {"event": "stop"}, [])
        assert cell.wait(WAIT).status == "cancelled"
        assert handle.wait(WAIT).status == "cancelled"
        wait_until(lambda: 'data-status="stopped"' in widget.value, what="marked not sent")
        assert "not sent" in widget.value
        assert session.item(handle.item_ids[0]) is None
        assert [item.text for item in session.items if item.role == "user"] == [LONG]
        # It stays where it was (after the cancelled answer), and a later message is
        # answered normally below it.
        later = panel.send("after stop").result(WAIT)
        assert later.wait(WAIT).text == echo_reply("after stop")
        wait_until(lambda: later.item_ids[0] in panel._bubbles)
        wait_until(lambda: panel.state is PanelState.READY)
        children = list(panel._transcript.children)
        position = children.index(widget)
        assert position < children.index(panel._bubbles[later.item_ids[0]].widget)
        assert children.index(panel._bubbles[cell.item_ids[0]].widget) < position
        assert "never sent" not in panel.to_markdown()  # not part of the conversation
        assert panel._errors() == []  # a stopped message is not an error
    finally:
        panel.close()


def test_a_refused_message_is_marked_and_reported(fed_panel):
    session, panel = fed_panel
    future = panel.send("refused")
    handle = future.result(WAIT)
    message_id = handle.item_ids[0]
    widget = outgoing_widget(panel, "refused")
    sent = session.timeline(message_id).entries[0].event
    assert sent["type"] == "conversation.item.create"
    error = {
        "type": "invalid_request_error",
        "code": "bad_item",
        "message": f"no: {XSS}",
        "event_id": sent["event_id"],
    }
    feed(session, {"type": "error", "error": error})
    with pytest.raises(ServerError, match="bad_item"):
        handle.wait(WAIT)
    wait_until(lambda: 'data-status="failed"' in widget.value, what="marked failed")
    wait_until(lambda: panel.state is PanelState.ERROR)
    assert panel._errors() == [f"bad_item: no: {XSS}"]  # once, from the error event
    assert all("<img" not in child.value for child in panel._transcript.children)


def test_a_turn_that_fails_without_a_server_error_is_reported(fed_panel):
    session, panel = fed_panel
    handle = panel.send("lost").result(WAIT)
    widget = outgoing_widget(panel, "lost")
    session.close()  # the connection goes away before the message was acknowledged
    with pytest.raises(RealtimeError):
        handle.wait(WAIT)
    wait_until(lambda: 'data-status="failed"' in widget.value, what="marked failed")
    wait_until(panel._errors, what="the failure reported")


def test_messages_sent_from_two_threads_at_once_each_get_their_own_answer(session):
    panels = [ChatPanel(session), ChatPanel(session)]
    try:
        texts = [f"thread {n} says {word}" for n in range(4) for word in ("hello",)]
        start = threading.Barrier(len(texts))
        handles = [None] * len(texts)

        def send(n):
            start.wait(WAIT)
            handles[n] = panels[n % 2].send(texts[n]).result(WAIT)

        threads = [threading.Thread(target=send, args=(n,)) for n in range(len(texts))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(within(60))
        for text, handle in zip(texts, handles, strict=True):
            result = handle.wait(WAIT)
            assert result.text == echo_reply(text)
            message = session.item(handle.item_ids[0])
            assert message.text == text
            ids = [item.id for item in session.items]
            # Its answer comes right after its own message.
            answer = ids[ids.index(message.id) + 1]
            assert session.item(answer).response_id == result.id
        assert len(session.items) == 2 * len(texts)
        for panel in panels:
            wait_until(lambda p=panel: len(p._transcript.children) == 2 * len(texts))
            wait_until(lambda p=panel: p._outgoing == [], what="no outgoing bubble left")
            wait_until(lambda p=panel: all("streaming" not in b for b in assistant_texts(p)))
        assert [b.value for b in panels[0]._transcript.children] == [
            b.value for b in panels[1]._transcript.children
        ]
    finally:
        for panel in panels:
            panel.close()


def test_panel_without_a_session_connects_in_the_background(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    panel = ChatPanel(name="chat-unit-background")
    try:
        wait_until(lambda: panel.state is PanelState.READY, timeout=30)
        wait_until(lambda: "offline server" in panel._status.value, what="the status line")
        assert panel.session is not None
        assert panel.session.endpoint.offline
    finally:
        panel.close()
        if panel.session is not None:
            panel.session.close()


def test_panel_follows_a_session_replaced_in_the_registry(monkeypatch):
    from rt_notebook.session import connect

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    old = connect("chat-unit-follow", offline=True)
    panel = ChatPanel(old)
    try:
        new = connect("chat-unit-follow", offline=True)  # what %realtime reset does
        wait_until(lambda: panel.session is new, timeout=5)
        new.ask("after reset").wait(WAIT)
        wait_until(lambda: len(panel._transcript.children) == 2)
    finally:
        panel.close()
        for session in (old, panel.session):
            if session is not None:
                session.close()


def test_closed_panel_refuses_to_send(session):
    panel = ChatPanel(session)
    panel.close()
    assert panel.state is PanelState.CLOSED
    with pytest.raises(Exception, match="closed"):
        panel.send("late")
    other = ChatPanel(session)
    try:
        with pytest.raises(ValueError, match="empty"):
            other.send("   ")
    finally:
        other.close()


def test_chat_magic_rejects_unknown_options(session):
    magics = RealtimeMagics(shell=None)
    with pytest.raises(ConfigurationError, match="usage"):
        magics._command_chat(session, ["--bogus"])


def test_function_calls_and_outputs_get_their_own_bubbles(session):
    weather = {
        "type": "function",
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
    session.update_session(tools=[weather])
    panel = ChatPanel(session)
    try:
        result = panel.send("What is the weather in Paris?").result(WAIT).wait(WAIT)
        (call,) = result.function_calls
        session.add_function_output(call.call_id, '{"temp_c": 21}')
        session.create_response().wait(WAIT)
        kinds = ["function-call", "function-output"]
        wait_until(
            lambda: all(any(f"rt-chat-{k}" in b.value for b in bubbles(panel)) for k in kinds)
        )
        call_bubble = next(b.value for b in bubbles(panel) if "rt-chat-function-call" in b.value)
        assert "<code>get_weather</code>" in call_bubble
        assert "&quot;city&quot;" in call_bubble
        output_bubble = next(
            b.value for b in bubbles(panel) if "rt-chat-function-output" in b.value
        )
        assert "&quot;temp_c&quot;: 21" in output_bubble
        wait_until(lambda: any('data-status="completed"' in t for t in assistant_texts(panel)))
        cells = panel.to_cells()
        assert cells[-1].source.startswith(f"%%realtime --function-output {call.call_id}")
    finally:
        panel.close()


def bubbles(panel):
    return list(panel._transcript.children)


def approval_rows(panel):
    return [w for w in panel._transcript.children if "rt-approval" in w._dom_classes]


def test_a_call_from_the_panel_is_approved_in_the_panel(session):
    ran = []

    def wipe(path: str) -> str:
        ran.append(path)
        return f"wiped {path}"

    session.register_tool(wipe, approval=True)
    panel = ChatPanel(session)
    try:
        panel.send('call wipe {"path": "p.txt"}').result(WAIT).wait(WAIT)
        wait_until(lambda: approval_rows(panel), what="the approval row")
        [row] = approval_rows(panel)
        # Under the call's bubble, and the status line says what it waits for.
        children = list(panel._transcript.children)
        assert "rt-chat-function-call" in children[children.index(row) - 1].value
        wait_until(lambda: panel.state is PanelState.APPROVAL, what="awaiting approval")
        approve = row.children[1]
        assert approve.description == "Approve"
        approve.click()  # what the front end's click does, on this (comm) thread
        wait_until(lambda: ran == ["p.txt"], what="the tool ran")
        wait_until(lambda: "wipe: approved" in row.children[0].value, what="the row's outcome")
        wait_until(lambda: panel.state is PanelState.READY, what="ready")
    finally:
        panel.close()


def test_closing_the_panel_interrupts_its_pending_approvals(session):
    session.register_tool(lambda path: path, name="wipe", approval=True)
    panel = ChatPanel(session)
    result = panel.send('call wipe {"path": "q.txt"}').result(WAIT).wait(WAIT)
    tool_round = session.tools.round_for(result.id)
    wait_until(lambda: approval_rows(panel), what="the approval row")
    panel.close()
    assert tool_round.wait(within(10))
    assert tool_round.calls[0].state.value == "interrupted"
    # A closed panel asks no more: a later call from its requests is refused at once.
    assert panel._ask_approval(tool_round.calls[0]) is False


@pytest.mark.parametrize("paragraph_words", [40, 0], ids=["paragraphs", "one-paragraph"])
def test_streaming_bubble_bytes_stay_within_twenty_times_the_text(fed_panel, paragraph_words):
    """1,000 deltas at 50 a second (the panel's clock advanced per delta, each delta seen
    by the writer before the next): the widget state written for the bubble stays within
    20x the final text, at most 25 writes a second plus 10, and ends with the exact text."""
    session, panel = fed_panel
    flushes = [0]
    flush = panel._flush

    def counting_flush():
        try:
            return flush()
        finally:
            flushes[0] += 1

    panel._flush = counting_flush
    feed(session, *user_turn("u1", "Talk"), *response_start("r1", "a1", "u1"))
    values = record_values(bubble_widget(panel, "a1"))
    words = []
    for n in range(1_000):
        gap = "\n\n" if paragraph_words and n and n % paragraph_words == 0 else " "
        words.append(("" if n == 0 else gap) + f"word{n}")
        seen = flushes[0]
        feed(session, delta("r1", "a1", words[-1]))
        wait_until(lambda seen=seen: flushes[0] > seen, what="the writer's look at the delta")
        panel._clock.now += 1 / 50
    final = "".join(words)
    feed(session, *response_end("r1", "a1", final))
    wait_until(lambda: values and 'data-status="completed"' in values[-1], what="the final")
    assert markdown_html(final) in values[-1]
    sent = sum(len(json.dumps({"value": value}, ensure_ascii=False).encode()) for value in values)
    assert sent <= 20 * len(final.encode()), (sent, len(final))
    assert len(values) <= 25 * (1_000 / 50) + 10


def test_outgoing_bubbles_render_like_user_bubbles_and_only_known_states():
    queued = outgoing_html('x" onclick="1', f"hi *there* {XSS}", "queued")
    assert "<em>there</em>" in queued
    assert "<img" not in queued
    assert "<script" not in queued
    assert 'onclick="1' not in queued
    assert 'data-status="queued"' in queued
    assert "not sent" in outgoing_html("item_1", "x", "stopped")
    assert "not sent" in outgoing_html("item_1", "x", "failed")
    odd = outgoing_html("item_1", "x", '"><script>')
    assert "<script" not in odd
    assert 'data-status="queued"' in odd
