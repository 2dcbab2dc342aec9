"""Pure append-only streaming: the edits a page receives, the pace, the view loop.

Each text is streamed in random steps through :class:`StreamEdits`, the edits applied by
the page's own rule (:func:`apply_edit`, the same as ``stream.js``): the page always ends
holding sanitized Markdown of the whole text, sealed blocks are never touched again, and
the characters sent are about the text, once.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import random
import threading
import time

import pytest

from rt_notebook.render.markdown import safe_markdown
from rt_notebook.render.stream_edits import (
    PageMirror,
    StreamEdits,
    apply_edit,
    common_prefix,
)
from rt_notebook.render.view_loop import Pace, ViewLoop

PIECES = [
    "A paragraph with *words* and a [link](https://example.org).\n",
    "```python\ndef f():\n\n    return 1\n```\n",
    "# Heading\n",
    "> quoted\n> text\n",
    "1. one\n2. two\n",
    "| a | b |\n|---|---|\n| 1 | 2 |\n",
]
HOSTILE = [
    '<img src=x onerror="window.__rt=1">\n',
    "[x](javascript:alert(1))\n",
    "```html\n<b>code</b> & <i>more</i>\n```\n",
    "![remote](http://203.0.113.7/a.png)\n",
    "a < b && c\n",
]


def stream(text: str, steps: list[int], edits: StreamEdits | None = None):
    edits = edits or StreamEdits()
    page = PageMirror()
    sent = []
    for end in steps:
        edit = edits.update(text[:end])
        if edit is not None:
            before = list(page.blocks)
            apply_edit(page, edit)
            assert page.blocks[: len(before)] == before  # sealed blocks never change
            sent.append(edit)
    return page, sent, edits


def random_steps(rng: random.Random, length: int, count: int = 30) -> list[int]:
    return sorted({rng.randint(1, length) for _ in range(count)} | {length})


@pytest.mark.parametrize("pool", [PIECES, PIECES + HOSTILE], ids=["markdown", "hostile"])
def test_the_page_ends_with_the_sanitized_text_in_blocks_and_a_tail(pool):
    rng = random.Random(22)
    for _ in range(150):
        text = "\n".join(rng.choice(pool) for _ in range(rng.randint(1, 10)))
        page, _sent, edits = stream(text, random_steps(rng, len(text)))
        # What the page renders, piece by piece, is the sanitizer's output of each piece.
        boundaries = [len(b) for b in page.blocks]
        assert len(page.blocks) == edits.blocks
        assert page.tail == safe_markdown(text[edits.sealed :])
        assert all("<img" not in b and "javascript:" not in b.lower() for b in page.blocks)
        assert "<img" not in page.tail
        assert sum(boundaries) == edits.rendered
        if pool is PIECES:
            # Ordinary Markdown is its own sanitized form: blocks + tail is the text.
            assert "".join(page.blocks) + page.tail == text


def test_ordinary_text_only_appends_and_travels_once():
    words = [f"word{i}" for i in range(3_000)]
    text = "\n\n".join(" ".join(words[i : i + 60]) for i in range(0, len(words), 60))
    page, sent, _ = stream(text, [*list(range(1, len(text) + 1, 7)), len(text)])
    assert all("k" not in e for e in sent)  # nothing taken back
    assert all(isinstance(b, int) for e in sent for b in e.get("b", []))  # sealed by length
    appended = sum(len(e.get("a", "")) for e in sent)
    assert appended == len(text)  # every character once
    assert "".join(page.blocks) + page.tail == text
    assert len(page.blocks) == len(words) // 60 - 1


def test_an_open_code_fence_streams_with_small_corrections():
    code = "```python\n" + "\n".join(f"if x{i} < {i}: y = {i}" for i in range(300)) + "\n```"
    page, sent, _ = stream(code, [*list(range(1, len(code) + 1, 11)), len(code)])
    assert page.tail == safe_markdown(code)
    payload = sum(len(json.dumps(e, ensure_ascii=False)) for e in sent)
    # The sanitizer closes the open fence; each edit takes back that closing run only.
    assert payload < 1.5 * len(code) + 40 * len(sent), (payload, len(code), len(sent))


def test_past_the_limit_the_rest_is_plain_text_and_the_markdown_stays_bounded():
    paragraph = "x" * 990 + "\n\n"
    text = paragraph * 60 + "<b>tail</b> " * 50
    page, _sent, edits = stream(
        text, [*list(range(1, len(text) + 1, 500)), len(text)], StreamEdits(limit=20_000)
    )
    assert edits.cut is not None
    assert sum(len(b) for b in page.blocks) + len(page.tail) <= 20_000
    assert page.tail == ""
    # Plain text is the raw text (shown as text, never parsed): nothing is lost.
    assert "".join(page.blocks) + page.plain == text
    assert "<b>tail</b>" in page.plain


def test_one_huge_code_block_goes_plain_once_it_outgrows_the_limit():
    code = "```\n" + "line\n" * 10_000
    page, _, edits = stream(
        code, [*list(range(1, len(code) + 1, 997)), len(code)], StreamEdits(limit=20_000)
    )
    assert edits.cut == 0
    assert page.blocks == []
    assert page.tail == ""
    assert page.plain == code


def test_credentials_never_reach_the_page():
    from rt_notebook import redaction

    secret = "sk-test-" + "s3cr3t" * 4
    redaction.register_secret(secret)
    try:
        text = f"first {secret}\n\nsecond {secret}\n\n" + "word " * 50 + secret
        page, sent, _ = stream(
            text, [*list(range(1, len(text) + 1, 3)), len(text)], StreamEdits(limit=60)
        )
        assert secret not in json.dumps(sent)
        assert secret not in "".join(page.blocks) + page.tail + page.plain
        assert page.plain.endswith("***")
    finally:
        with redaction._lock:
            redaction._secrets.discard(secret)


def test_common_prefix():
    assert common_prefix("", "abc") == 0
    assert common_prefix("abc", "abcd") == 3
    assert common_prefix("abxd", "abyd") == 2
    assert common_prefix("abc", "ab") == 2
    rng = random.Random(1)
    for _ in range(500):
        a = "".join(rng.choice("ab") for _ in range(rng.randint(0, 12)))
        b = "".join(rng.choice("ab") for _ in range(rng.randint(0, 12)))
        expected = next(
            (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
        )
        assert common_prefix(a, b) == expected


def test_pace_lets_the_first_publish_out_at_once_then_one_per_interval():
    pace = Pace(0.2)
    assert pace.wait(10.0) == 0.0
    pace.published(10.0)
    # A change 50 ms later waits one interval from when it came (not from the publish),
    # with any that follow it: never longer.
    pace.changed(10.05)
    pace.changed(10.1)
    assert pace.wait(10.1) == pytest.approx(0.15)
    assert pace.wait(10.25) == 0.0
    pace.published(10.25)
    # After a whole interval without a publish, a change goes at once.
    pace.changed(10.5)
    assert pace.wait(10.5) == 0.0


def test_a_steady_stream_is_paced_from_each_messages_first_change():
    # Words every 50 ms, an interval of 230 ms: each message waits for its first word to
    # have waited the interval, so no word waits longer, and there are fewer messages than
    # one every interval (the gap before each message's first word is not spent waiting).
    pace, gap, interval = Pace(0.23), 0.05, 0.23
    arrivals = [i * gap for i in range(1, 401)]
    sent, lags, pending = [], [], []
    pace.published(0.0)
    for now in arrivals:
        pace.changed(now)
        pending.append(now)
        # Publish whenever due before the next word comes (the loop's wait, exactly).
        due = now + pace.wait(now)
        if due < now + gap:
            lags += [due - t for t in pending]
            pending.clear()
            pace.published(due)
            sent.append(due)
    assert max(lags) <= interval + 1e-9
    intervals = [b - a for a, b in itertools.pairwise(sent)]
    assert min(intervals) >= interval - 1e-9
    assert len(sent) < arrivals[-1] / interval * 0.95  # >= 5% fewer than one per interval


def test_view_loop_publishes_each_wake_within_the_pace_and_stops_when_done():
    published: list[int] = []
    state = {"value": 0, "shown": 0}

    def publish() -> bool:
        if state["value"] == state["shown"]:
            return False
        state["shown"] = state["value"]
        published.append(state["shown"])
        return True

    loop = ViewLoop(publish, interval=0.01)
    done: concurrent.futures.Future[None] = concurrent.futures.Future()
    thread = threading.Thread(target=loop.run, args=(done,))
    thread.start()
    for value in range(1, 200):
        state["value"] = value
        loop.wake()
    done.set_result(None)
    thread.join(30)
    assert not thread.is_alive()
    assert published == sorted(published)
    assert len(set(published)) == len(published)
    assert loop.publishes == len(published) >= 1


def test_view_loop_serves_until_stopped_and_calls_again_when_asked():
    """serve(): a publish per wake (within the pace), one more when a held-back part asks
    for it without any wake, nothing after stop(); a failing publish does not end it."""
    calls: list[str] = []
    loop_box: list[ViewLoop] = []

    def publish() -> bool:
        calls.append("publish")
        if len(calls) == 1:
            loop_box[0].again(0.01)  # something paced: call me again, no wake needed
        if len(calls) == 3:
            raise RuntimeError("a failed write")
        return True

    loop = ViewLoop(publish, interval=0.0)
    loop_box.append(loop)
    thread = threading.Thread(target=loop.serve)
    thread.start()
    loop.wake()
    deadline = time.monotonic() + 30
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(calls) == 2  # the wake, then the "again" with no wake
    loop.wake()  # this publish fails
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    loop.wake()  # and the loop goes on
    while len(calls) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(calls) == 4
    loop.stop()
    thread.join(30)
    assert not thread.is_alive()
    loop.wake()
    assert len(calls) == 4


def test_view_loop_raises_at_its_deadline():
    loop = ViewLoop(lambda: False)
    with pytest.raises(TimeoutError):
        loop.run(concurrent.futures.Future(), deadline=0.0)


def test_a_huge_answer_gets_bounded_html_that_keeps_every_character_and_runs_nothing():
    from rt_notebook.render.bounded import bounded_html, needs_bounds

    hostile = '<img src=x onerror="window.__rt=1"> [x](javascript:alert(1)) ![i](http://a/b.png)'
    raw = "\n\n".join(f"para {n} {hostile}" for n in range(2_000)) + "\n\n```\ncode <b>\n```"
    assert needs_bounds(safe_markdown(raw), limit=20_000)
    assert not needs_bounds("short", limit=20_000)
    page = bounded_html(raw, "*footer · [events](#rt-events-abc-req_1)*", limit=20_000)
    rendered, rest = page.split("<pre", 1)
    assert len(rendered) < 3 * 20_000  # the Markdown part is bounded
    assert "<img" not in page  # raw HTML shown as text, images as links
    assert 'href="javascript' not in page.lower()  # script links refused
    assert "<script" not in page
    # The cut is at a block boundary, and the rest is escaped text: every character kept.
    import html as html_module

    first = rendered.count("<p>para ")
    body = html_module.unescape(rest.split(">", 1)[1].split("</pre>", 1)[0])
    assert body.startswith(f"para {first} ")
    assert len(body) == 20_000  # the plain part is bounded too
    assert raw.startswith(body, raw.index(f"para {first} "))
    assert "more are not drawn" in rendered
    assert 'href="#rt-events-abc-req_1"' in page


def test_a_snapshot_gives_a_late_page_what_the_first_one_holds():
    rng = random.Random(5)
    text = "\n".join(rng.choice(PIECES + HOSTILE) for _ in range(40))
    page, _, edits = stream(text, random_steps(rng, len(text)), StreamEdits(limit=600))
    late = PageMirror()
    late.tail, late.blocks = "stale", ["stale"]  # whatever it made of edits it half saw
    apply_edit(late, edits.snapshot())
    assert (late.blocks, late.tail, late.plain) == (page.blocks, page.tail, page.plain)
