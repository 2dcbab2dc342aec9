"""Streaming cost in a real kernel, as the front end receives it: every message an answer
causes (its display, the final update, its widget's open or update, messages and reset),
counted whole and by payload, at several delta rates (slowed embedded servers), blocking
and background, saved by nbclient.

Bounds asserted (counts and bytes, never times):

- streaming messages ≤ 5 per second of streaming + 3, the duration read from the
  messages' own timestamps (a slow machine only widens the allowance);
- payload bytes (message content as the kernel packs it, the text as JSON spells it) ≤ 2
  x the final text (once while streaming, then as text/markdown; text/plain only names
  it) + the message as sent where the final metadata keeps it + 2,000 bytes (the
  widget's open ~730 where the answer opens it, or a kept widget's update ~115; the
  display ~210, the reset or close ~60, the footer, summary and provenance ~870) + 80
  bytes per streaming message (~57 bytes of the comm message's own framing, and a sealed
  block's marks);
- in a burst (few messages), payload ≤ 3.5 x the final text;
- whole messages (header, parent header, metadata too) ≤ payload + 500 bytes a message
  (~410 here).

The kernel's two hub widgets (the events links, the stream renderer) are made once per
kernel, before the module's first answer (``page_ready``, ``warm``), and not counted per
answer. The page's "ready" is sent as a page sends it (a comm message to the hub).
"""

from __future__ import annotations

import json
import re

import nbformat
import pytest
from jupyter_client.session import Session
from nbclient import NotebookClient

from rt_notebook.render.cell import plain_summary
from rt_notebook.render.stream_edits import PageMirror, apply_edit
from rt_notebook.server.responders import echo_reply
from tests.timing import PROCESS_WAIT

from .harness import Execution, Kernel
from .page import ANSWER_MODULE, page_ready

pytestmark = pytest.mark.kernel

SETUP = """
%load_ext rt_notebook
import rt_notebook
from rt_notebook.server import EmbeddedServer
servers = {}
for name, pace in PACES.items():
    servers[name] = EmbeddedServer(pace=pace).start()
    rt_notebook.connect(
        name, websocket_base_url=servers[name].websocket_base_url, api_key=servers[name].token
    )
"""
EVENTS_LINK = re.compile(r"\n\n\*\[events\]\(#rt-events-[\w-]+\)\*$")
PACES = {"burst": 0.0, "fast": 0.001, "slow": 0.01, "words20": 0.05}
ANSWER_TYPES = ("display_data", "update_display_data", "comm_open", "comm_msg", "comm_close")


@pytest.fixture(scope="module")
def kernel():
    kernel = Kernel()
    setup = kernel.execute(f"PACES = {PACES!r}\n{SETUP}")
    assert setup.status == "ok", setup.error_text()
    page_ready(kernel)
    warm = kernel.execute("%%realtime --session burst\nwarm up the hubs")
    assert warm.status == "ok", warm.error_text()
    yield kernel
    kernel.shutdown()


def paragraphs(count: int, words: int) -> str:
    return "\n\n".join(" ".join(f"p{p}w{w}" for w in range(words)) for p in range(count))


def answer_messages(run: Execution) -> list[dict]:
    """The messages this answer caused (not a hub's: those come once per kernel)."""
    return [
        m
        for m in run.messages
        if m["msg_type"] in ANSWER_TYPES
        and "Hub" not in str(m["content"].get("data", {}).get("state", {}).get("_anywidget_id"))
    ]


def _final_index(messages: list[dict]) -> int:
    return max(i for i, m in enumerate(messages) if m["msg_type"] == "update_display_data")


def _custom(message: dict) -> bool:
    data = message["content"].get("data", {})
    return message["msg_type"] == "comm_msg" and data.get("method") == "custom"


def streaming(messages: list[dict]) -> list[dict]:
    """The answer's streaming messages: its widget's edits before the final update (the
    reset after it is the widget's end: the page forgets the text)."""
    return [m for m in messages[: _final_index(messages)] if _custom(m)]


def edits(messages: list[dict]) -> list[dict]:
    """The edits the page received (a bare string is an edit that only appends it)."""
    sent = [m["content"]["data"]["content"] for m in streaming(messages)]
    return [{"a": edit} if isinstance(edit, str) else edit for edit in sent]


# Bytes as they travel: the kernel packs each message part with its Session's packer
# (orjson, compact JSON, since orjson is installed), and JupyterLab's websocket protocol
# forwards those bytes unchanged. Re-serializing with json.dumps (", " and ": ") would
# count spaces no front end receives.
_pack = Session().pack


def payload(message: dict) -> int:
    return len(_pack(message["content"])) + sum(len(b) for b in message.get("buffers", []))


def whole(message: dict) -> int:
    parts = ("header", "parent_header", "metadata", "content")
    return sum(len(_pack(message[p])) for p in parts)


def assert_bounded(messages: list[dict], text: str, question: str = "") -> None:
    size = len(_pack(text)) - 2  # the text as sent
    # The final metadata keeps the message as sent when the cell's source does not hold
    # it (here ``{question}``): %realtime resume rebuilds the conversation from it.
    saved = len(_pack(question)) - 2 if question else 0
    streamed = streaming(messages)
    total = sum(payload(m) for m in messages)
    limit = 2 * size + saved + 2_000 + 80 * len(streamed)
    assert total <= limit, (total, size, len(streamed))
    assert sum(whole(m) for m in messages) <= total + 500 * len(messages)
    if len(streamed) > 1:
        dates = [m["header"]["date"] for m in streamed]
        seconds = (max(dates) - min(dates)).total_seconds()
        assert len(streamed) <= 5 * seconds + 3, (len(streamed), seconds)


def ask(kernel: Kernel, session: str, text: str, options: str = "") -> Execution:
    kernel.execute(f"question = {text!r}")
    run = kernel.execute(f"%%realtime --session {session} {options}\n{{question}}", timeout=120)
    assert run.status == "ok", run.error_text()
    return run


def assert_final(messages: list[dict], answer: str) -> None:
    """One display, ending as the exact answer in text/markdown (text/plain names it: the
    page rendered the stream), its widget then reset: nothing of the stream is left to
    save."""
    displays = {
        m["content"]["transient"]["display_id"]
        for m in messages
        if m["msg_type"] in ("display_data", "update_display_data")
    }
    assert len(displays) == 1
    final = [m for m in messages if m["msg_type"] == "update_display_data"][-1]["content"]
    assert final["data"]["text/plain"] == plain_summary(answer)
    assert final["data"]["text/markdown"].startswith(answer + "\n\n*")
    assert set(final["data"]) == {"text/markdown", "text/plain"}
    assert final["metadata"]["rt_notebook"]["status"] == "completed"
    # One widget: opened for this answer, or kept from an earlier one and updated for it.
    comm_ids = {m["content"]["comm_id"] for m in messages if m["msg_type"].startswith("comm_")}
    assert len(comm_ids) == 1
    assert all(len(comm_id) <= 5 for comm_id in comm_ids)  # named by every streaming message
    opened = [m["content"]["data"]["state"] for m in messages if m["msg_type"] == "comm_open"]
    synced = [m["content"]["data"]["state"] for m in messages if _synced(m)]
    assert all(ANSWER_MODULE in state["_esm"] for state in opened)
    assert len(opened) == 1 or ("link" in synced[0] and not opened)
    # After the final update the page forgets the text (a reset edit); the widget is then
    # kept for the next answer, or closed when enough are kept.
    end = messages[_final_index(messages) + 1 :]
    assert end[0]["content"]["data"] == {"method": "custom", "content": {"r": 1}}
    assert [m["msg_type"] for m in end[1:]] in ([], ["comm_close"])


def _reset(message: dict) -> bool:
    return _custom(message) and message["content"]["data"]["content"] == {"r": 1}


def _synced(message: dict) -> bool:
    """A trait update: a kept widget's link and waiting line set for a new answer."""
    data = message["content"].get("data", {})
    return message["msg_type"] == "comm_msg" and data.get("method") == "update"


@pytest.mark.parametrize(
    ("session", "text"),
    [
        ("words20", paragraphs(4, 15)),  # 60 deltas at ~20 a second
        ("slow", paragraphs(10, 15)),  # 150 deltas at ~100 a second
        ("fast", paragraphs(40, 40)),  # 1,600 deltas at ~1,000 a second
        ("fast", " ".join(f"word{i}" for i in range(2_500))),  # one 17 KB paragraph
        ("fast", "```\n" + "\n".join(f"line = {i}" for i in range(300)) + "\n```"),
        ("burst", paragraphs(100, 100)),  # 10,000 deltas as fast as they come
    ],
    ids=["words20", "paragraphs-slow", "paragraphs-fast", "one-paragraph", "code-300", "burst"],
)
def test_final_text_is_exact_and_iopub_is_bounded_by_the_text(kernel, session, text):
    run = ask(kernel, session, text)
    answer = echo_reply(text)
    messages = answer_messages(run)
    assert run.final_markdown().startswith(answer + "\n\n*")
    assert_final(messages, answer)
    assert_bounded(messages, answer, question=text)
    if session == "burst":
        saved = len(text.encode())  # the message as sent, in the final metadata
        assert sum(payload(m) for m in messages) <= 3.5 * len(answer.encode()) + saved


def test_streaming_sends_each_character_once_and_seals_blocks_in_place(kernel):
    text = paragraphs(30, 15)  # ~4.5 s at ~100 deltas a second
    messages = answer_messages(ask(kernel, "slow", text))
    sent = edits(messages)
    assert len(sent) > 10  # it did stream
    page = PageMirror()
    for edit in sent:
        apply_edit(page, edit)
    answer = echo_reply(text)
    shown = "".join(page.blocks) + page.tail
    # Ordinary text only grows: nothing taken back, each character sent once, and what
    # the page holds reads as the answer (the final update brings the last deltas).
    assert all("k" not in e and "pk" not in e for e in sent)
    assert sum(len(e.get("a", "")) for e in sent) == len(shown)
    assert answer.startswith(shown)
    assert len(shown) > 0.9 * len(answer)
    # Paragraphs were sealed as blocks, each by its length in the page's tail.
    assert len(page.blocks) > 10
    assert all(isinstance(b, int) for e in sent for b in e.get("b", []))


def test_a_page_that_joins_late_gets_one_snapshot(kernel):
    """Every page that makes the answer's model says hello; a second one (a reloaded page,
    which missed the edits sent before) gets everything once, as a snapshot edit."""
    text = paragraphs(20, 15)  # ~3 s at ~100 deltas a second
    # A fresh widget, which no page has said hello to: close the kept ones (a kept widget
    # closed since is never used again).
    closed = kernel.execute(
        "from rt_notebook.widgets import stream as _stream\n"
        "for kept in list(_stream._idle):\n    kept.close()\n"
        f"question = {text!r}"
    )
    assert closed.status == "ok", closed.error_text()

    answers: list[str] = []  # the answer's comm id, once it opened

    def hello(message):
        # A page says hello once it loaded the answer's module: after the open (here at the
        # first edit, when the kernel routes the widget's messages to its subshell).
        content = message["content"]
        state = content.get("data", {}).get("state", {})
        if message["msg_type"] == "comm_open" and ANSWER_MODULE in state.get("_esm", ""):
            answers.append(content["comm_id"])
        elif message["msg_type"] == "comm_msg" and content["comm_id"] in answers:
            answers.remove(content["comm_id"])  # once
            for _ in range(2):  # the page that saw it open, then a late one
                said = {
                    "comm_id": content["comm_id"],
                    "data": {"method": "custom", "content": {"hello": 1}},
                }
                kernel.client.shell_channel.send(kernel.client.session.msg("comm_msg", said))

    run = kernel.execute("%%realtime --session slow\n{question}", on_message=hello)
    assert run.status == "ok", run.error_text()
    sent = edits(answer_messages(run))
    snapshots = [i for i, e in enumerate(sent) if e.get("r")]
    assert len(snapshots) == 1
    first, late = PageMirror(), PageMirror()
    for index, edit in enumerate(sent):
        apply_edit(first, edit)
        if index >= snapshots[0]:  # the late page holds only what followed its hello
            apply_edit(late, edit)
    assert (late.blocks, late.tail) == (first.blocks, first.tail)
    assert echo_reply(text).startswith("".join(late.blocks) + late.tail)


def test_background_stream_is_the_same_widget_and_final_output(kernel):
    text = paragraphs(10, 15)
    kernel.execute(f"question = {text!r}")
    run = kernel.execute("%%realtime --session slow --background --out pending\n{question}")
    assert run.status == "ok", run.error_text()
    wait = kernel.execute("print(pending.wait(60).status)", any_parent=True)
    assert wait.stream_text().strip() == "completed"
    seen = run.messages + wait.messages
    if not any(_reset(m) for m in seen):
        # The thread's final update and reset may still be on their way after `wait`.
        kernel.wait_for_message(lambda m: seen.append(m) or _reset(m))
    messages = answer_messages(Execution(reply={}, messages=seen))
    answer = echo_reply(text)
    assert len(edits(messages)) > 3  # it streamed from the background thread
    # Every message of the answer carries the cell's parent header.
    assert {m["parent_header"]["msg_id"] for m in messages} == {run.msg_id}
    assert_final(messages, answer)
    assert_bounded(messages, answer, question=text)


def test_nbclient_saves_one_markdown_output_with_the_whole_answer(tmp_path):
    text = paragraphs(6, 12)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "%load_ext rt_notebook\nimport rt_notebook\n"
            "from rt_notebook.server import EmbeddedServer\n"
            "server = EmbeddedServer(pace=0.005).start()\n"
            "session = rt_notebook.connect(websocket_base_url=server.websocket_base_url,"
            " api_key=server.token)"
        ),
        nbformat.v4.new_code_cell(f"%%realtime\n{text}"),
    ]
    NotebookClient(notebook, timeout=PROCESS_WAIT, kernel_name="python3").execute()
    path = tmp_path / "saved.ipynb"
    nbformat.write(notebook, path)
    outputs = nbformat.read(path, as_version=4).cells[1].outputs
    markdown = [o for o in outputs if o.get("data")]
    assert len(markdown) == 1, outputs
    assert markdown[0]["data"]["text/plain"] == f"Echo:\n\n{text}"
    assert markdown[0]["data"]["text/markdown"].startswith(f"Echo:\n\n{text}\n\n*")
    assert markdown[0]["metadata"]["rt_notebook"]["status"] == "completed"
    # No page said "ready", so the answer opened no widget: no saved widget state holds
    # it or its text (nbclient keeps the state of every widget ever opened).
    saved = json.dumps(nbformat.read(path, as_version=4).metadata.get("widgets", {}))
    assert ANSWER_MODULE not in saved
    assert "p0w0" not in saved


def test_text_format_streams_text_and_ends_as_plain_text(kernel):
    text = paragraphs(10, 15) + "\n\n<b>not markup</b>"
    messages = answer_messages(ask(kernel, "slow", text, "--format text"))
    # The widget's state (its open, or a kept widget's update) tells the page: show text.
    state = next(
        m["content"]["data"]["state"]
        for m in messages
        if m["msg_type"] == "comm_open" or _synced(m)
    )
    assert state["plain"] is True
    sent = edits(messages)
    assert len(sent) > 3
    page = PageMirror()
    for edit in sent:
        apply_edit(page, edit)
    shown = "".join(page.blocks) + page.tail
    answer = echo_reply(text)
    assert answer.startswith(shown)  # the raw text, unescaped: it is shown as text
    final = [m for m in messages if m["msg_type"] == "update_display_data"][-1]["content"]
    assert set(final["data"]) == {"text/plain"}
    assert final["data"]["text/plain"].startswith(answer)


def test_a_huge_answer_streams_bounded_and_ends_with_html_and_the_exact_text(kernel):
    """Past 100 KB of Markdown the rest streams as plain text; the final output adds a
    bounded text/html (drawn instead of megabytes of Markdown) and keeps the exact text."""
    text = "\n\n".join(f"- [link {n}](https://example.org/{n}) `code_{n}()`" for n in range(8_000))
    messages = answer_messages(ask(kernel, "burst", text))
    answer = echo_reply(text)
    sent = edits(messages)
    # Past the limit the rest streams as plain text (test_render_append checks the edits);
    # here a burst may end before any publish past it (the final output holds the rest), so
    # only the bound is asserted: the Markdown streamed stays under the limit.
    rendered = sum(len(b) for e in sent for b in e.get("b", []) if isinstance(b, str))
    rendered += sum(b for e in sent for b in e.get("b", []) if isinstance(b, int))
    assert rendered <= 100_000
    final = [m for m in messages if m["msg_type"] == "update_display_data"][-1]["content"]
    assert final["data"]["text/plain"] == answer
    assert final["data"]["text/markdown"].startswith(answer + "\n\n*")
    html = final["data"]["text/html"]
    rendered, rest = html.split("<pre", 1)
    assert len(rendered) < 4 * 100_000  # the Markdown drawn is bounded (links make it long)
    assert "more are not drawn" in rendered
    assert "code_3000()" in rest  # some of the rest is drawn as plain text
    assert "code_7999()" not in rest  # but not all of it: the drawing is bounded


def test_hostile_html_is_neutralised_in_every_streamed_block(kernel):
    """Raw HTML in every paragraph, a code fence holding HTML: no message, sealed block
    or tail edit, ever carries a live tag; the code keeps its characters."""
    hostile = '<img src=x onerror="window.__rt=1">'
    parts = [f"para {n} {hostile} &lt;b&gt; [x](javascript:alert({n}))" for n in range(40)]
    parts.insert(20, "```html\n<b>code stays</b>\n```")
    text = "\n\n".join(parts)
    messages = answer_messages(ask(kernel, "slow", text))
    sent = edits(messages)
    assert len(sent) > 1
    for message in messages:
        content = json.dumps(message["content"], ensure_ascii=False)
        assert "<img" not in content
        assert "javascript:" not in content.lower()
    page = PageMirror()
    for edit in sent:
        apply_edit(page, edit)
    shown = "".join(page.blocks) + page.tail
    assert len(page.blocks) > 1  # blocks
    # The code block keeps its characters (if the stream got that far before it ended).
    assert "<b>code stays</b>" in shown or "para 20" not in shown


def test_answers_in_turn_stream_through_one_kept_widget_each_with_its_own_link(kernel):
    """A widget whose answer ended is kept: the next answers open none (the open, ~730 B
    and a module import in the page, is paid once), each sets the widget's events link to
    its own turn, and after each the page is told to forget the text."""
    comm_ids, opens = set(), 0
    for n in range(3):
        text = paragraphs(3, 10) + f" turn{n}"
        messages = answer_messages(ask(kernel, "slow", text))
        assert_final(messages, echo_reply(text))
        opens += sum(m["msg_type"] == "comm_open" for m in messages)
        comm_ids |= {m["content"]["comm_id"] for m in messages if m["msg_type"] == "comm_msg"}
        links = [m["content"]["data"]["state"].get("link") for m in messages if _synced(m)]
        footer = [m for m in messages if m["msg_type"] == "update_display_data"][-1]
        (href,) = re.findall(r"\((#rt-events-[\w-]+)\)", footer["content"]["data"]["text/markdown"])
        assert links in ([href], [])  # [] only where this answer opened its widget
        assert links or opens
        page = PageMirror()
        for edit in [m["content"]["data"]["content"] for m in messages if _custom(m)]:
            apply_edit(page, {"a": edit} if isinstance(edit, str) else edit)
        assert (page.blocks, page.tail) == ([], "")  # the reset left nothing in the page
    assert opens == 0  # the module's earlier answers left a widget kept
    assert len(comm_ids) == 1


def test_answers_at_once_each_get_a_widget_and_only_a_few_are_kept(kernel):
    """Six background answers at once: six widgets stream side by side; when they end at
    most KEPT stay kept (all open, all different), the rest are closed."""
    runs = []
    # Each answer lasts over a second (150 words at 100 a second, 48 at 20), and a
    # Session answers its cells in turn: all six cells start (and open their widgets)
    # before the first answer ends.
    for n in range(6):
        session, words = (("slow", paragraphs(10, 15)), ("words20", paragraphs(4, 12)))[n % 2]
        kernel.execute(f"question = {words + f' at once {n}'!r}")
        run = kernel.execute(
            f"%%realtime --session {session} --background --out b{n}\n{{question}}"
        )
        assert run.status == "ok", run.error_text()
        runs.append(run)
    done = kernel.execute(
        "import threading\n"
        "print([b.wait(60).status for b in (b0, b1, b2, b3, b4, b5)])\n"
        # The cells' threads send the final updates and resets after the results.
        "for thread in threading.enumerate():\n"
        "    if thread.name == 'rt_notebook-cell':\n        thread.join(60)\n"
        "print(len(_stream._idle), _stream.KEPT,"
        " len({w.model_id for w in _stream._idle if w.comm is not None}))",
        any_parent=True,
    )
    lines = done.stream_text().strip().splitlines()
    assert lines[0] == str(["completed"] * 6)
    kept, limit, open_and_distinct = map(int, lines[1].split())
    assert kept == open_and_distinct == limit  # six ended: the pool is full
    streamed = {
        m["content"]["comm_id"]
        for m in (*[m for r in runs for m in r.messages], *done.messages)
        if m["msg_type"] in ("comm_open", "comm_msg")
        and m["parent_header"].get("msg_id") in {r.msg_id for r in runs}
    }
    assert len(streamed) == 6  # each answer had its own widget while they all streamed
