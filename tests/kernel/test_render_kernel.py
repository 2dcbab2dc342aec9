"""Streaming cost in a real kernel: exact final text and IOPub bounded by the text at
every delta rate (slowed embedded servers), blocking and background, saved by nbclient.

Bounds asserted (counts and bytes, never times): display-message bytes ≤ 20 times the final
text, and messages ≤ 25 times the stream's duration + 10, the duration read from the
messages' own timestamps (a slow machine only widens the allowance).
"""

from __future__ import annotations

import json
import re

import nbformat
import pytest
from nbclient import NotebookClient

from rt_notebook.server.responders import echo_reply
from tests.timing import PROCESS_WAIT

from .harness import Execution, Kernel

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
PACES = {"burst": 0.0, "fast": 0.001, "slow": 0.01}


@pytest.fixture(scope="module")
def kernel():
    kernel = Kernel()
    setup = kernel.execute(f"PACES = {PACES!r}\n{SETUP}")
    assert setup.status == "ok", setup.error_text()
    yield kernel
    kernel.shutdown()


def paragraphs(count: int, words: int) -> str:
    return "\n\n".join(" ".join(f"p{p}w{w}" for w in range(words)) for p in range(count))


def display_messages(run: Execution) -> list[dict]:
    return run.of_type("display_data", "update_display_data")


def assert_bounded(run: Execution, text: str) -> None:
    messages = display_messages(run)
    size = sum(len(json.dumps(m["content"], ensure_ascii=False).encode()) for m in messages)
    assert size <= 20 * len(text.encode()), (size, len(text))
    dates = [m["header"]["date"] for m in messages]
    seconds = (max(dates) - min(dates)).total_seconds()
    assert len(messages) <= 25 * seconds + 10, (len(messages), seconds)


def ask(kernel: Kernel, session: str, text: str, options: str = "") -> Execution:
    kernel.execute(f"question = {text!r}")
    run = kernel.execute(f"%%realtime --session {session} {options}\n{{question}}", timeout=120)
    assert run.status == "ok", run.error_text()
    return run


@pytest.mark.parametrize(
    ("session", "text"),
    [
        ("slow", paragraphs(10, 15)),  # 150 deltas at ~100 a second
        ("fast", paragraphs(40, 40)),  # 1,600 deltas at ~1,000 a second
        ("fast", " ".join(f"word{i}" for i in range(2_500))),  # one 17 KB paragraph
        ("fast", "```\n" + "\n".join(f"line = {i}" for i in range(1_500)) + "\n```"),
        ("burst", paragraphs(100, 100)),  # 10,000 deltas as fast as they come
    ],
    ids=["paragraphs-slow", "paragraphs-fast", "one-paragraph", "code-fence", "burst"],
)
def test_final_text_is_exact_and_iopub_is_bounded_by_the_text(kernel, session, text):
    run = ask(kernel, session, text)
    answer = echo_reply(text)
    final = run.final_markdown()
    assert final.startswith(answer + "\n\n*"), final[-200:]
    assert_bounded(run, answer)
    last = display_messages(run)
    # The final update writes text/plain, exactly, and the provenance.
    finals = [m for m in last if m["content"]["data"].get("text/markdown") == final]
    assert finals[-1]["content"]["data"]["text/plain"] == answer
    assert finals[-1]["content"]["metadata"]["rt_notebook"]["status"] == "completed"
    # Every block display opened while streaming is emptied at the end.
    shown: dict[str, dict] = {}
    for message in last:
        shown[message["content"]["transient"]["display_id"]] = message["content"]["data"]
    assert [data for data in shown.values() if data] == [finals[-1]["content"]["data"]]


def test_streaming_updates_only_the_tail_and_publishes_blocks_once(kernel):
    text = paragraphs(30, 15)  # ~4.5 s: blocks are sealed at most once a second
    messages = display_messages(ask(kernel, "slow", text))
    final = next(i for i, m in enumerate(messages) if "text/plain" in m["content"]["data"])
    streamed = [m["content"]["data"]["text/markdown"] for m in messages[1:final]]
    assert len(streamed) > 10  # it did stream
    # No streaming message resends the whole answer, only the last paragraphs...
    assert max(len(s) for s in streamed) < len(text) / 2
    # ...and what the block displays show, in order, reads as the whole answer.
    shown: dict[str, str] = {}
    for message in messages[:final]:
        # The streaming tail carries the "events" link under it; the answer is above it.
        shown[message["content"]["transient"]["display_id"]] = EVENTS_LINK.sub(
            "", message["content"]["data"]["text/markdown"]
        )
    assert len(shown) > 2
    words, answer = "".join(shown.values()).split(), echo_reply(text).split()
    assert words == answer[: len(words)]  # (the final update brings the last deltas)
    assert len(words) > len(answer) * 0.9


def test_background_stream_stays_in_one_display_and_bounded(kernel):
    text = paragraphs(10, 15)
    kernel.execute(f"question = {text!r}")
    run = kernel.execute("%%realtime --session slow --background --out pending\n{question}")
    assert run.status == "ok", run.error_text()
    wait = kernel.execute("print(pending.wait(60).status)", any_parent=True)
    assert wait.stream_text().strip() == "completed"
    messages = [
        m
        for m in run.messages + wait.messages
        if m["msg_type"] in ("display_data", "update_display_data")
    ]
    assert len({m["content"]["transient"]["display_id"] for m in messages}) == 1
    answer = echo_reply(text)
    assert messages[-1]["content"]["data"]["text/plain"] == answer
    run.messages = messages
    assert_bounded(run, answer)


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


def test_hostile_html_is_neutralised_in_every_streamed_block(kernel):
    """Raw HTML in every paragraph, a code fence holding HTML: no display message, block
    or tail, ever carries a live tag; the code keeps its characters."""
    hostile = '<img src=x onerror="window.__rt=1">'
    parts = [f"para {n} {hostile} &lt;b&gt; [x](javascript:alert({n}))" for n in range(40)]
    parts.insert(20, "```html\n<b>code stays</b>\n```")
    text = "\n\n".join(parts)
    messages = display_messages(ask(kernel, "fast", text))
    for message in messages:
        markdown = message["content"]["data"].get("text/markdown", "")
        assert "<img" not in markdown
        assert "javascript:" not in markdown.lower()
    assert any(
        "<b>code stays</b>" in m["content"]["data"].get("text/markdown", "") for m in messages
    )
    assert len({m["content"]["transient"]["display_id"] for m in messages}) > 1  # blocks
