"""The chat panel without a browser: exports, and the panel's logic driven by a Session fed
events by hand (deterministic pacing) or talking to the embedded server. What the page
shows is read as the page gets it: the ops the panel's widget sends, applied by
:class:`Page` as ``chat_view.js`` applies them."""

from __future__ import annotations

import asyncio
import json
import threading
import weakref

import nbformat
import pytest

from rt_notebook.client.responses import ItemSnapshot
from rt_notebook.client.session import Session
from rt_notebook.errors import ConfigurationError, RealtimeError, ServerError
from rt_notebook.frontends.chat import STREAM_INTERVAL, ChatPanel, PanelState
from rt_notebook.frontends.magics import RealtimeMagics
from rt_notebook.render.export import hard_breaks, transcript_cells, transcript_markdown
from rt_notebook.render.markdown import markdown_html
from rt_notebook.render.markdown_tree import markdown_tree, tree_text
from rt_notebook.render.panel_doc import outgoing_entry
from rt_notebook.server import EmbeddedServer
from rt_notebook.server.responders import echo_reply
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


class Page:
    """A page's copy of a panel's list: the ops the panel's widget sends, applied as
    ``chat_view.js`` applies them, starting from the replay a page asks for when it
    loads. ``sizes`` holds each op's key (or None) and JSON size, as it went out."""

    def __init__(self, panel):
        self.panel = weakref.proxy(panel)  # a page does not keep its panel alive
        self.entries = {}
        self.order = []
        self.ready = False
        self.sizes = []
        self.ops = []
        self.threads = set()
        real = panel.view.send

        def receive(content, buffers=None):
            self.threads.add(threading.current_thread().name)
            real(content, buffers)
            wire = json.dumps(content, ensure_ascii=False)
            self.ops.append(json.loads(wire))
            self.apply(json.loads(wire))
            self.sizes.append(
                (content.get("key") or content.get("entry", {}).get("key"), len(wire.encode()))
            )

        panel.view.send = receive
        panel.view._handle_message(None, {"event": "replay"}, [])
        wait_until(lambda: self.ready, what="the replay")

    def apply(self, op):
        kind = op["op"]
        if kind == "reset":
            self.entries = {entry["key"]: entry for entry in op["entries"]}
            self.order = [entry["key"] for entry in op["entries"]]
            self.ready = True
        elif not self.ready:
            return
        elif kind == "put":
            self.entries[op["entry"]["key"]] = op["entry"]
            self._place(op["entry"]["key"], op["after"])
        elif kind == "meta":
            self.entries[op["key"]]["meta"] = op["meta"]
        elif kind == "grow":
            entry = self.entries[op["key"]]
            entry["tail"] += op["append"]
            if "seal" in op:
                entry["blocks"] = entry["blocks"] + op["seal"]
                entry["tail"] = entry["tail"][op["cut"] :]  # the tests' text is all BMP
            if "plain" in op:
                kept = entry.get("plain", "")[: op.get("keep", len(entry.get("plain", "")))]
                entry["plain"] = kept + op["plain"]
        elif kind == "move":
            self._place(op["key"], op["after"])
        elif kind == "remove":
            del self.entries[op["key"]]
            self.order.remove(op["key"])

    def _place(self, key, after):
        if key in self.order:
            self.order.remove(key)
        self.order.insert(0 if after is None else self.order.index(after) + 1, key)

    def has(self, key):
        return key in self.entries

    def text(self, key):
        entry = self.entries.get(key)
        return None if entry is None else tree_text(entry["blocks"]) + entry["tail"]

    def meta(self, key):
        entry = self.entries.get(key)
        return {} if entry is None else entry["meta"]

    def data(self, key, name):
        return self.meta(key).get("data", {}).get(name)

    def bubbles(self, role=None):
        """Keys of the bubbles, in order (``role``: only those of that role)."""
        keys = [k for k in self.order if self.entries[k]["kind"] == "bubble"]
        return [k for k in keys if role is None or self.data(k, "role") == role]

    def approvals(self):
        return [k for k in self.order if self.entries[k]["kind"] == "approval"]

    def ops_for(self, key):
        return [size for op_key, size in self.sizes if op_key == key]


def test_streaming_bubble_is_paced_and_ends_with_the_exact_text(fed_panel):
    session, panel = fed_panel
    page = Page(panel)
    feed(session, *user_turn("u1", "Count"), *response_start("r1", "a1", "u1"))
    wait_until(lambda: page.has("i:a1"), what="the answer's bubble")
    feed(session, delta("r1", "a1", "one"))
    wait_until(lambda: page.text("i:a1") == "one", what="the first delta, shown at once")
    assert page.meta("i:a1")["streaming"]
    feed(session, *(delta("r1", "a1", f" w{n}") for n in range(50)))  # the clock stands
    feed(session, delta("r1", "a1", " last"))
    panel._clock.now += STREAM_INTERVAL  # one interval later: one more update may go out
    wait_until(lambda: page.text("i:a1").endswith("last"), what="a paced update")
    final = "one " + " ".join(f"w{n}" for n in range(50)) + " last."
    feed(session, *response_end("r1", "a1", final))
    wait_until(lambda: page.data("i:a1", "status") == "completed", what="the final state")
    assert page.text("i:a1") == final
    assert page.entries["i:a1"]["blocks"] == markdown_tree(final)  # as if rendered at once
    assert not page.meta("i:a1")["streaming"]
    # The first delta, one paced update and the final text: three appends.
    grows = [op for op in page.ops if op.get("key") == "i:a1" and op["op"] == "grow"]
    assert len(grows) == 3
    assert [op["append"] for op in grows[:2]] == ["one", final[3:-1]]
    # Besides: the bubble's put and its label once or twice (as the item and its response
    # end, maybe seen apart).
    assert len(page.ops_for("i:a1")) <= 6
    assert len(page.ops_for("i:u1")) == 1  # only the streaming bubble is written


def test_a_huge_answer_is_markdown_up_to_the_limit_then_folded_plain_text(fed_panel):
    """Past MARKDOWN_LIMIT characters the rest of an answer goes as the entry's plain
    text (the page folds it behind its own "show all"), appended, never parsed or
    resent; a panel opened later on the finished answer shows it bounded the same way."""
    from rt_notebook.render.panel_doc import PANEL_MARKDOWN_LIMIT as MARKDOWN_LIMIT

    session, panel = fed_panel
    page = Page(panel)
    feed(session, *user_turn("u1", "Go"), *response_start("r1", "a1", "u1"))
    wait_until(lambda: page.has("i:a1"), what="the answer's bubble")
    lines = [f"- [link {n}](https://example.org/{n}) `code_{n}()`" for n in range(5_000)]
    final = "\n\n".join(lines)  # ~230 KB of links and code
    assert len(final) > 2 * MARKDOWN_LIMIT
    pieces = [final[i : i + 4_000] for i in range(0, len(final), 4_000)]
    for piece in pieces:
        shown = len(page.ops)
        feed(session, delta("r1", "a1", piece))
        panel._clock.now += STREAM_INTERVAL
        wait_until(lambda shown=shown: len(page.ops) > shown, what="the delta's op")
    feed(session, *response_end("r1", "a1", final))
    wait_until(lambda: page.data("i:a1", "status") == "completed", what="the final state")
    entry = page.entries["i:a1"]
    plain = entry["plain"]
    assert final.endswith(plain)
    assert len(final) - len(plain) <= MARKDOWN_LIMIT  # the Markdown part is bounded
    assert entry["tail"] == ""
    assert "code_4999()" in plain  # the rest, as text
    assert "<a" not in plain
    # Each character of the plain part travelled once (appended, never resent).
    sent = sum(len(op.get("plain", "")) for op in page.ops if op.get("key") == "i:a1")
    assert sent == len(plain)
    assert all(op.get("keep") is None for op in page.ops if op.get("key") == "i:a1")
    # A panel opened on the finished answer: the same bound.
    later = ChatPanel(session)
    try:
        fresh = Page(later)
        wait_until(lambda: fresh.has("i:a1"), what="the answer in a new panel")
        again = fresh.entries["i:a1"]
        assert len(again["plain"]) > 0
        assert len(final) - len(again["plain"]) <= MARKDOWN_LIMIT
        assert final.endswith(again["plain"])
    finally:
        later.close()


def test_streamed_text_is_appended_never_resent(fed_panel):
    """What the page receives for a streaming answer: each character once as text, then
    once in the finished block that shows it, never the whole text again."""
    session, panel = fed_panel
    page = Page(panel)
    appended = []
    feed(session, *user_turn("u1", "Go"), *response_start("r1", "a1", "u1"))
    wait_until(lambda: page.has("i:a1"), what="the answer's bubble")
    paragraphs = [" ".join(f"p{p}w{n}" for n in range(30)) for p in range(6)]
    for number, paragraph in enumerate(paragraphs):
        piece = ("\n\n" if number else "") + paragraph
        feed(session, delta("r1", "a1", piece))
        appended.append(piece)
        panel._clock.now += STREAM_INTERVAL
        wait_until(lambda: page.text("i:a1") == "".join(appended).replace("\n\n", ""))
    entry = page.entries["i:a1"]
    assert [tree_text([b]) for b in entry["blocks"]] == paragraphs[:-1]  # sealed ones
    assert entry["tail"] == paragraphs[-1]  # the growing one, as text
    grows = [op for op in page.ops if op.get("key") == "i:a1" and op["op"] == "grow"]
    assert "".join(op["append"] for op in grows) == "".join(appended)


def test_every_widget_write_comes_from_the_writer_thread(fed_panel, monkeypatch):
    import ipywidgets as widgets

    session, panel = fed_panel
    page = Page(panel)
    threads = []
    original = widgets.Widget.send_state

    def recording_send_state(self, key=None):
        threads.append(threading.current_thread().name)
        return original(self, key)

    monkeypatch.setattr(widgets.Widget, "send_state", recording_send_state)
    feed(session, *user_turn("u1", "Hi"), *response_start("r1", "a1", "u1"))
    feed(session, delta("r1", "a1", "Hello"), *response_end("r1", "a1", "Hello."))
    wait_until(lambda: page.text("i:a1") == "Hello.")
    wait_until(lambda: panel.state is PanelState.READY)
    error = {"type": "invalid_request_error", "code": "late", "message": "a status change"}
    feed(session, {"type": "error", "error": error})
    wait_until(lambda: panel.view.status["state"] == "error")
    assert threads
    assert set(threads) == {"rt_notebook-chat"}
    assert page.threads == {"rt_notebook-chat"}


def test_bubbles_follow_server_order_and_deletions(fed_panel):
    session, panel = fed_panel
    page = Page(panel)
    feed(session, *user_turn("u2", "second"), *user_turn("u1", "first", previous=None))
    wait_until(lambda: page.order == ["i:u1", "i:u2"], what="server order")
    assert [page.text(k) for k in page.order] == ["first", "second"]
    feed(session, {"type": "conversation.item.deleted", "item_id": "u1"})
    wait_until(lambda: page.order == ["i:u2"], what="the deletion")
    assert "u1" not in panel._bubbles
    assert page.entries == panel._doc.entries  # the page and the kernel's copy agree


def test_server_error_gets_a_bubble_and_the_status_line(fed_panel):
    session, panel = fed_panel
    page = Page(panel)
    feed(session, *user_turn("u1", "hi"))
    error = {"type": "invalid_request_error", "code": "bad_thing", "message": XSS}
    feed(session, {"type": "error", "error": error})
    wait_until(lambda: panel.state is PanelState.ERROR)
    wait_until(lambda: len(page.order) == 2)
    last = page.order[-1]
    assert page.meta(last)["kind"] == "error"
    assert page.entries[last]["blocks"] == [["p", f"bad_thing: {XSS}"]]  # text, not Markdown
    # The status line is written by the panel's writer thread, after the state changes.
    wait_until(lambda: panel.view.status["state"] == "error", what="the error status")
    assert "bad_thing" in panel.view.status["line"]
    assert panel._errors() == [f"bad_thing: {XSS}"]
    feed(session, *response_start("r1", "a1", "u1"))
    wait_until(lambda: panel.state is PanelState.RESPONDING, what="the error to clear")


def test_cancelled_response_is_marked(fed_panel):
    session, panel = fed_panel
    page = Page(panel)
    feed(session, *user_turn("u1", "long"), *response_start("r1", "a1", "u1"))
    feed(session, delta("r1", "a1", "Half"), *response_end("r1", "a1", "Half", "cancelled"))
    wait_until(lambda: page.data("i:a1", "response-status") == "cancelled")
    assert page.data("i:a1", "status") == "incomplete"
    assert page.meta("i:a1")["flag"] == "cancelled"


def test_a_page_that_joins_late_gets_the_whole_list_once(fed_panel):
    session, panel = fed_panel
    first = Page(panel)
    feed(session, *user_turn("u1", "hi *there*"), *response_start("r1", "a1", "u1"))
    feed(session, delta("r1", "a1", "Hel"))
    wait_until(lambda: first.text("i:a1") == "Hel")
    late = Page(panel)  # a reload: the page asks for a replay
    assert late.order == first.order
    assert late.text("i:a1") == "Hel"
    feed(session, *response_end("r1", "a1", "Hello."))
    wait_until(lambda: late.data("i:a1", "status") == "completed")
    wait_until(lambda: first.entries == late.entries)
    assert late.entries["i:u1"]["blocks"] == [["p", "hi ", ["em", "there"]]]


def test_composer_messages_reach_the_panel(fed_panel, monkeypatch):
    session, panel = fed_panel
    sent, stopped = [], []
    monkeypatch.setattr(panel, "send", lambda text, images=(): sent.append(text))
    monkeypatch.setattr(session, "cancel", lambda: stopped.append(True))
    panel.composer._handle_message(panel.composer, {"event": "submit", "text": "a\nb"}, [])
    panel.composer._handle_message(panel.composer, {"event": "submit", "text": "  "}, [])
    panel.composer._handle_message(panel.composer, {"event": "stop"}, [])
    panel.composer._handle_message(panel.composer, {"event": "unknown"}, [])
    assert sent == ["a\nb"]
    assert stopped == [True]


# The panel on a real Session (embedded server) ------------------------------------------


def assistant_entries(page):
    return [page.entries[k] for k in page.bubbles("assistant")]


def settled(page):
    """Whether no assistant bubble is streaming any more."""
    return all(not e["meta"]["streaming"] for e in assistant_entries(page))


def test_send_streams_the_answer_and_exports_the_transcript(session, tmp_path):
    panel = ChatPanel(session)
    page = Page(panel)
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
        wait_until(lambda: len(assistant_entries(page)) == 1)
        wait_until(lambda: assistant_entries(page)[0]["meta"]["data"]["status"] == "completed")
        answer = assistant_entries(page)[0]
        assert answer["blocks"] == markdown_tree(final)  # the exact final text
        assert answer["tail"] == ""
        assert '["strong", "panel"]' in json.dumps(answer["blocks"])

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
    pages = Page(first), Page(second)
    try:
        session.ask("from a cell").wait(WAIT)  # what %%realtime does
        first.send("from the panel").result(WAIT).wait(WAIT)
        texts = [item.text for item in session.items]
        assert texts[0] == "from a cell"
        assert texts[2] == "from the panel"  # the next cell sees it
        for page in pages:
            wait_until(lambda p=page: len(p.order) == 4)
            wait_until(lambda p=page: settled(p))
            wait_until(lambda p=page: p.entries == p.panel._doc.entries)
        assert pages[0].order == [f"i:{item.id}" for item in session.items]
        assert [pages[0].text(k) for k in pages[0].order] == [
            pages[1].text(k) for k in pages[1].order
        ]
    finally:
        first.close()
        second.close()


def test_stop_cancels_the_running_response(paced_server, make_session):
    session = make_session(paced_server)
    panel = ChatPanel(session)
    page = Page(panel)
    try:
        handle = panel.send(" ".join(f"w{n}" for n in range(300))).result(WAIT)
        wait_until(lambda: handle.text, what="the answer to start")
        wait_until(lambda: panel.state is PanelState.RESPONDING)
        panel.composer._handle_message(panel.composer, {"event": "stop"}, [])
        assert handle.wait(WAIT).status == "cancelled"
        wait_until(lambda: any(e["meta"]["flag"] == "cancelled" for e in assistant_entries(page)))
        wait_until(lambda: panel.state is PanelState.READY)
        assert not panel.composer.responding
    finally:
        panel.close()


def test_stop_before_the_turn_is_submitted_sends_nothing(session, monkeypatch):
    panel = ChatPanel(session)
    page = Page(panel)
    try:
        entered, release = threading.Event(), threading.Event()
        # Hold the sender thread so the message is still waiting for it when Stop comes.
        panel._sender.submit(lambda: (entered.set(), release.wait(WAIT)))
        assert entered.wait(WAIT)
        future = panel.send("never sent")
        key = outgoing_key(page, "never sent")
        assert page.data(key, "status") == "queued"  # shown before the sender ran
        panel.stop()
        release.set()
        assert future.result(WAIT) is None
        wait_until(lambda: page.data(key, "status") == "stopped", what="not sent")
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


def outgoing_key(page, text):
    """The key of the panel's outgoing bubble for ``text`` once the page has it."""

    def find():
        for key in page.bubbles("user"):
            if key.startswith("o:") and text in page.text(key):
                return key
        return None

    wait_until(lambda: find() is not None, what=f"an outgoing bubble for {text!r}")
    return find()


def user_keys(page, text):
    return [k for k in page.bubbles("user") if text in page.text(k)]


LONG = " ".join(f"cell{n}" for n in range(2000))  # ~40 s at the paced server's pace


def test_a_message_sent_during_a_cell_answer_shows_queued_then_as_the_item(
    paced_server, make_session
):
    session = make_session(paced_server)
    panel = ChatPanel(session)
    page = Page(panel)
    try:
        cell = session.ask(LONG)  # what a running %%realtime cell does
        wait_until(lambda: cell.text, what="the cell's answer to start")
        future = panel.send("queued *behind* <b>it</b>")
        key = outgoing_key(page, "queued")
        assert not cell.done()  # shown while the cell's answer still streams
        assert page.data(key, "status") == "queued"
        # The same Markdown as other bubbles; the tag is text.
        assert page.entries[key]["blocks"] == [["p", "queued ", ["em", "behind"], " <b>it</b>"]]
        assert page.order[-1] == key  # after the running answer
        handle = future.result(WAIT)
        message_id = handle.item_ids[0]
        assert session.item(message_id) is None  # not sent while the cell's turn runs
        cell.cancel()
        result = handle.wait(WAIT)
        assert result.status == "completed"
        assert result.text == echo_reply("queued *behind* <b>it</b>")
        wait_until(lambda: page.has(f"i:{message_id}"), what="the message's own bubble")
        wait_until(lambda: not page.has(key), what="queued bubble gone")
        keys = user_keys(page, "queued")
        assert keys == [f"i:{message_id}"]
        assert page.data(keys[0], "item-id") == message_id
        assert page.data(keys[0], "status") == "completed"
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
    page = Page(panel)
    try:
        cell = session.ask(LONG)
        wait_until(lambda: cell.text, what="the cell's answer to start")
        handle = panel.send("never sent").result(WAIT)
        key = outgoing_key(page, "never sent")
        panel.composer._handle_message(panel.composer, {"event": "stop"}, [])
        assert cell.wait(WAIT).status == "cancelled"
        assert handle.wait(WAIT).status == "cancelled"
        wait_until(lambda: page.data(key, "status") == "stopped", what="marked not sent")
        assert page.meta(key)["flag"] == "not sent: stopped"
        assert session.item(handle.item_ids[0]) is None
        assert [item.text for item in session.items if item.role == "user"] == [LONG]
        # It stays where it was (after the cancelled answer), and a later message is
        # answered normally below it.
        later = panel.send("after stop").result(WAIT)
        assert later.wait(WAIT).text == echo_reply("after stop")
        wait_until(lambda: page.has(f"i:{later.item_ids[0]}"))
        wait_until(lambda: panel.state is PanelState.READY)
        wait_until(lambda: page.order.index(key) < page.order.index(f"i:{later.item_ids[0]}"))
        assert page.order.index(f"i:{cell.item_ids[0]}") < page.order.index(key)
        assert "never sent" not in panel.to_markdown()  # not part of the conversation
        assert panel._errors() == []  # a stopped message is not an error
    finally:
        panel.close()


def test_a_refused_message_is_marked_and_reported(fed_panel):
    session, panel = fed_panel
    page = Page(panel)
    future = panel.send("refused")
    handle = future.result(WAIT)
    message_id = handle.item_ids[0]
    key = outgoing_key(page, "refused")
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
    wait_until(lambda: page.data(key, "status") == "failed", what="marked failed")
    wait_until(lambda: panel.state is PanelState.ERROR)
    assert panel._errors() == [f"bad_item: no: {XSS}"]  # once, from the error event
    wait_until(lambda: any(page.meta(k)["kind"] == "error" for k in page.order))


def test_a_turn_that_fails_without_a_server_error_is_reported(fed_panel):
    session, panel = fed_panel
    page = Page(panel)
    handle = panel.send("lost").result(WAIT)
    key = outgoing_key(page, "lost")
    session.close()  # the connection goes away before the message was acknowledged
    with pytest.raises(RealtimeError):
        handle.wait(WAIT)
    wait_until(lambda: page.data(key, "status") == "failed", what="marked failed")
    wait_until(panel._errors, what="the failure reported")


def test_messages_sent_from_two_threads_at_once_each_get_their_own_answer(session):
    panels = [ChatPanel(session), ChatPanel(session)]
    pages = [Page(panel) for panel in panels]
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
        for page in pages:
            wait_until(lambda p=page: len(p.order) == 2 * len(texts))
            wait_until(lambda p=page: p.panel._outgoing == [], what="no outgoing bubble left")
            wait_until(lambda p=page: settled(p))
        wanted = [f"i:{item.id}" for item in session.items]
        assert pages[0].order == pages[1].order == wanted
        assert [pages[0].text(k) for k in wanted] == [pages[1].text(k) for k in wanted]
    finally:
        for panel in panels:
            panel.close()


def test_panel_without_a_session_connects_in_the_background(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    panel = ChatPanel(name="chat-unit-background")
    try:
        wait_until(lambda: panel.state is PanelState.READY, timeout=30)
        wait_until(lambda: "offline server" in panel.view.status["line"], what="the status line")
        assert panel.session is not None
        assert panel.session.endpoint.offline
    finally:
        panel.close()
        if panel.session is not None:
            panel.session.close()


def test_panel_follows_a_session_replaced_in_the_registry(monkeypatch):
    from rt_notebook.client.registry import connect

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    old = connect("chat-unit-follow", offline=True)
    panel = ChatPanel(old)
    page = Page(panel)
    try:
        new = connect("chat-unit-follow", offline=True)  # what %realtime reset does
        wait_until(lambda: panel.session is new, timeout=5)
        new.ask("after reset").wait(WAIT)
        wait_until(lambda: page.order == [f"i:{item.id}" for item in new.items])
        assert len(page.order) == 2
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
    page = Page(panel)
    try:
        result = panel.send("What is the weather in Paris?").result(WAIT).wait(WAIT)
        (call,) = result.function_calls
        session.add_function_output(call.call_id, '{"temp_c": 21}')
        session.create_response().wait(WAIT)

        def of_kind(kind):
            return [k for k in page.bubbles() if page.meta(k)["kind"] == kind]

        wait_until(lambda: of_kind("function-call") and of_kind("function-output"))
        [call_key] = of_kind("function-call")
        assert page.meta(call_key)["label"] == "Function call"
        assert page.meta(call_key)["code"] == "get_weather"
        assert '"city"' in page.text(call_key)
        [output_key] = of_kind("function-output")
        assert page.meta(output_key)["code"] == call.call_id
        assert page.entries[output_key]["blocks"] == [["pre", ["code", '{\n  "temp_c": 21\n}']]]
        wait_until(
            lambda: any(e["meta"]["data"]["status"] == "completed" for e in assistant_entries(page))
        )
        cells = panel.to_cells()
        assert cells[-1].source.startswith(f"%%realtime --function-output {call.call_id}")
    finally:
        panel.close()


def test_a_call_from_the_panel_is_approved_in_the_panel(session):
    ran = []

    def wipe(path: str) -> str:
        ran.append(path)
        return f"wiped {path}"

    session.register_tool(wipe, approval=True)
    panel = ChatPanel(session)
    page = Page(panel)
    try:
        panel.send('call wipe {"path": "p.txt"}').result(WAIT).wait(WAIT)
        wait_until(page.approvals, what="the approval row")
        [row] = page.approvals()
        # Under the call's bubble, and the status line says what it waits for.
        above = page.order[page.order.index(row) - 1]
        assert page.meta(above)["kind"] == "function-call"
        assert page.meta(row)["label"] == 'Run wipe({"path":"p.txt"})?'
        wait_until(lambda: panel.state is PanelState.APPROVAL, what="awaiting approval")
        # What the page's Approve sends, on this (comm) thread; a key it never got is ignored.
        panel.view._handle_message(None, {"event": "decide", "call": "a:99", "allow": True}, [])
        panel.view._handle_message(None, {"event": "decide", "call": row, "allow": True}, [])
        wait_until(lambda: ran == ["p.txt"], what="the tool ran")
        wait_until(lambda: page.meta(row)["decided"] == "approved", what="the row's outcome")
        assert page.meta(row)["label"] == "wipe: approved"
        wait_until(lambda: panel.state is PanelState.READY, what="ready")
        # A second click (another view, a late page) decides nothing more.
        panel.view._handle_message(None, {"event": "decide", "call": row, "allow": False}, [])
        assert ran == ["p.txt"]
    finally:
        panel.close()


def test_closing_the_panel_interrupts_its_pending_approvals(session):
    session.register_tool(lambda path: path, name="wipe", approval=True)
    panel = ChatPanel(session)
    page = Page(panel)
    result = panel.send('call wipe {"path": "q.txt"}').result(WAIT).wait(WAIT)
    tool_round = session.tools.round_for(result.id)
    wait_until(page.approvals, what="the approval row")
    panel.close()
    assert tool_round.wait(within(10))
    assert tool_round.calls[0].state.value == "interrupted"
    # A closed panel asks no more: a later call from its requests is refused at once.
    assert panel._ask_approval(tool_round.calls[0]) is False


class _ShortNaps(threading.Event):
    """A view loop's stop event whose timed waits last a moment at most: the writer's paced
    naps are real seconds, while here the panel's own (frozen) clock paces it."""

    def wait(self, timeout: float | None = None) -> bool:
        return super().wait(None if timeout is None else min(timeout, 0.002))


@pytest.mark.parametrize("paragraph_words", [40, 0], ids=["paragraphs", "one-paragraph"])
def test_streaming_bubble_bytes_stay_within_three_and_a_half_times_the_text(
    fed_panel, paragraph_words
):
    """1,000 deltas at 50 a second (the panel's clock advanced per delta, each delta seen
    by the writer before the next): what the page receives for the bubble stays within
    3.5x the final text (each character once as text, once in its block), at most five
    messages a second plus a few, and ends with the exact text."""
    session, panel = fed_panel
    panel._loop._stopping = _ShortNaps()  # the test's clock, not the wall's, paces the writer
    page = Page(panel)
    flushes = [0]
    flush = panel._flush

    def counting_flush():
        try:
            return flush()
        finally:
            flushes[0] += 1

    panel._flush = counting_flush
    feed(session, *user_turn("u1", "Talk"), *response_start("r1", "a1", "u1"))
    wait_until(lambda: page.has("i:a1"), what="the answer's bubble")
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
    wait_until(lambda: page.data("i:a1", "status") == "completed", what="the final")
    assert page.entries["i:a1"]["blocks"] == markdown_tree(final)
    assert page.text("i:a1") == tree_text(markdown_tree(final))
    sizes = page.ops_for("i:a1")
    assert sum(sizes) <= 3.5 * len(final.encode()), (sum(sizes), len(final))
    assert len(sizes) <= 5 * (1_000 / 50) + 5


def test_outgoing_entries_render_like_user_bubbles_and_only_known_states():
    queued = outgoing_entry("o:1", 'x" onclick="1', f"hi *there* {XSS}", "queued")
    assert queued["blocks"] == [["p", "hi ", ["em", "there"], f" {XSS}"]]
    assert queued["meta"]["kind"] == "user"
    assert queued["meta"]["data"]["status"] == "queued"
    assert queued["meta"]["data"]["item-id"] == 'x" onclick="1'  # an attribute value, as text
    assert outgoing_entry("o:1", "item_1", "x", "stopped")["meta"]["flag"] == "not sent: stopped"
    assert outgoing_entry("o:1", "item_1", "x", "failed")["meta"]["flag"] == "not sent: error"
    odd = outgoing_entry("o:1", "item_1", "x", '"><script>')
    assert odd["meta"]["data"]["status"] == "queued"


# Lifetime: bounded models, nothing left behind, a static transcript when closed ----------


def test_a_panel_is_a_fixed_number_of_widget_models(session):
    from ipywidgets.widgets.widget import _instances

    before = set(_instances)
    panel = ChatPanel(session)
    page = Page(panel)
    try:
        models = len(set(_instances) - before)
        for n in range(12):
            panel.send(f"message {n}").result(WAIT).wait(WAIT)
        wait_until(lambda: len(page.order) == 24 and settled(page), what="24 bubbles")
        assert len(set(_instances) - before) == models  # not one per bubble
        assert models <= 10
    finally:
        panel.close()
    assert set(_instances) - before == set()  # close() closes them all


def test_dropped_panels_leave_no_thread_or_subscriber(session):
    import gc

    from ipywidgets.widgets.widget import _instances

    threads = set(threading.enumerate())
    subscribers = len(session._driver.subscribers)
    models = set(_instances)
    panels = [ChatPanel(session) for _ in range(10)]  # never shown, never closed
    for panel in panels:
        Page(panel)  # with a page that asked for the list
    assert len(session._driver.subscribers) == subscribers + 10
    assert len(set(threading.enumerate()) - threads) >= 10  # a writer each
    del panels, panel
    gc.collect()
    wait_until(
        lambda: len(session._driver.subscribers) == subscribers, what="subscriptions dropped"
    )
    wait_until(lambda: set(threading.enumerate()) <= threads, what="the writers to end")
    assert set(_instances) <= models  # their widgets closed with them


def test_a_closed_panel_leaves_its_transcript_where_it_was_shown(session, monkeypatch):
    import rt_notebook.frontends.chat as chat

    shown = []

    class Handle:
        def __init__(self, obj):
            self.bundles = [obj]

        def update(self, bundle, raw=False):
            assert raw
            self.bundles.append(bundle)

    def fake_display(obj, display_id=False):
        assert display_id is True  # so that close() can replace it
        shown.append(Handle(obj))
        return shown[-1]

    monkeypatch.setattr(chat, "display", fake_display)
    panel = ChatPanel(session)
    panel.show()
    assert shown[0].bundles == [panel.widget]
    panel.send("keep *this*").result(WAIT).wait(WAIT)
    transcript = panel.to_markdown()
    panel.close()
    [bundle] = shown[0].bundles[1:]
    assert bundle["text/markdown"].endswith(transcript)
    assert bundle["text/markdown"].startswith("**Realtime chat** · session `default` · closed")
    assert (
        bundle["text/plain"]
        == "Realtime chat (closed) · session default · 2 items (see the Markdown)"
    )
    assert "keep *this*" in transcript
    assert panel not in chat._shown  # a closed panel is no longer held
