"""A long answer streaming into a cell, in JupyterLab and Notebook 7: the page's DOM grows by
appends (each sealed block rendered once into its own element, never replaced while the
answer streams; only the tail is re-rendered), reads as a prefix of the answer throughout,
and ends as one Markdown output holding the exact answer, with no widget left.
"""

from __future__ import annotations

import re

import pytest

from rt_notebook.render.cell import plain_summary
from rt_notebook.server.responders import echo_reply
from tests.browser.lab_page import (
    KERNEL_READY,
    TIMEOUT,
    cell,
    expect,
    open_notebook,
    open_notebook7,
    page_timeout_ms,
    run_all,
    run_cell,
    run_cell_by_keyboard,
    save,
)
from tests.kernel.page import ANSWER_MODULE

pytestmark = [pytest.mark.browser, TIMEOUT]

TEXT = "\n\n".join(" ".join(f"p{p}w{w}" for w in range(25)) for p in range(40))
CELLS = [
    "%load_ext rt_notebook\nimport rt_notebook\n"
    "from rt_notebook.server import EmbeddedServer\n"
    "server = EmbeddedServer(pace=0.004).start()\n"
    "session = rt_notebook.connect(websocket_base_url=server.websocket_base_url,"
    " api_key=server.token)",
    "%%realtime\nwarm up",  # the kernel's first answer makes the stream hub
    f"%%realtime\n{TEXT}",
]

# Watches a cell: every state of the streamed text, sealed block elements added, and any
# sealed block element removed or changed while its answer's view is still on the page.
WATCH_CELL = """(index) => {
  const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[index];
  const watch = window.__rt_watch = {states: [], added: 0, replaced: 0, most: 0, streamed: 0};
  const record = (mutations) => {
    for (const mutation of mutations) {
      for (const node of mutation.addedNodes) {
        if (node.classList && node.classList.contains('rt-stream-block')) { watch.added += 1; }
      }
      for (const node of mutation.removedNodes) {
        if (!(node instanceof Element)) { continue; }
        const blocks = node.matches('.rt-stream-block') ? [node]
          : [...node.querySelectorAll('.rt-stream-block')];
        // Inside a view still on the page: a sealed block was taken away or redrawn.
        const inLiveView = mutation.target.isConnected && mutation.target.closest('.rt-stream');
        if (blocks.length && inLiveView) { watch.replaced += blocks.length; }
      }
      const block = mutation.target.closest && mutation.target.closest('.rt-stream-block');
      if (block && mutation.type === 'childList' && mutation.removedNodes.length) {
        watch.replaced += 1;  // a sealed block's content redrawn
      }
    }
    const view = cell.querySelector('.rt-stream');
    if (!view) { return; }
    watch.streamed = 1;
    watch.most = Math.max(watch.most, view.querySelectorAll('.rt-stream-block').length);
    // Blocks drawn by Jupyter's own Markdown renderer (not the plain-text fallback).
    watch.rendered = Math.max(watch.rendered || 0,
      view.querySelectorAll('.rt-stream-block .jp-RenderedMarkdown').length);
    const text = view.querySelector('.rt-stream-blocks').innerText + '\\n'
      + view.querySelector('.rt-stream-tail').innerText;
    if (text.trim() && watch.states[watch.states.length - 1] !== text) { watch.states.push(text); }
  };
  new MutationObserver(record).observe(cell, {subtree: true, childList: true, characterData: true});
}"""

OUTPUTS = """(index) => window.jupyterapp.shell.currentWidget.content.model.cells.get(index)
  .sharedModel.toJSON().outputs"""


def words(text: str) -> list[str]:
    return re.findall(r"p\d+w\d+", text)


def check_streamed(page, answer_cell) -> None:
    expected = words(TEXT)
    watch = page.evaluate("() => window.__rt_watch")
    assert watch["streamed"] == 1  # the answer streamed through its widget
    assert watch["replaced"] == 0  # no sealed block was ever replaced or redrawn
    assert watch["added"] >= 10  # blocks were appended one by one...
    assert watch["most"] >= 10
    assert watch["rendered"] >= 10
    assert len(watch["states"]) > 3  # ...and the page changed many times
    for state in watch["states"]:  # always a prefix of the answer: no gap, no repeat
        shown = words(state)
        assert shown == expected[: len(shown)], state[:300]
    # At the end: one rendered Markdown output holds the whole answer, exactly once.
    expect(answer_cell.locator(".rt-stream")).to_have_count(0)
    rendered = answer_cell.locator(".jp-RenderedMarkdown")
    expect(rendered).to_have_count(1)
    assert words(rendered.inner_text()) == expected


def test_a_long_answer_grows_by_appends_and_ends_as_one_output_in_jupyterlab(
    lab, browser, artifacts
):
    context, page = open_notebook(lab, browser, "long_answer.ipynb", CELLS)
    try:
        run_cell(page, 0)
        run_cell(page, 1)
        page.wait_for_function("() => document.documentElement.dataset.rtStream === '1'")
        page.evaluate(WATCH_CELL, 2)
        run_cell(page, 2, wait=False)
        answer_cell = cell(page, 2)
        expect(answer_cell.locator(".rt-stream-block").nth(4)).to_be_attached()
        answer_cell.locator(".jp-OutputArea").screenshot(
            path=str(artifacts / "long-answer-streaming.png")
        )
        expect(answer_cell.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"))
        expect(answer_cell.locator(".jp-RenderedMarkdown").last).to_contain_text("completed")
        page.screenshot(path=str(artifacts / "long-answer.png"))
        check_streamed(page, answer_cell)
        outputs = page.evaluate(OUTPUTS, 2)
        with_data = [o for o in outputs if o.get("data")]
        assert len(with_data) == 1, outputs
        assert set(with_data[0]["data"]) == {"text/markdown", "text/plain"}
        # The answer is the text/markdown, exact; text/plain names it (the page rendered
        # the stream: a second copy of the whole text would travel and be saved for nobody).
        assert with_data[0]["data"]["text/markdown"].startswith(f"Echo:\n\n{TEXT}\n\n*")
        assert with_data[0]["data"]["text/plain"] == plain_summary(f"Echo:\n\n{TEXT}")
        assert with_data[0]["metadata"]["rt_notebook"]["status"] == "completed"
        save(page)
        saved = (lab.root / "long_answer.ipynb").read_text(encoding="utf-8")
        assert ANSWER_MODULE not in saved  # no widget state of the answer is saved
        assert page.locator(".jp-OutputArea-output[data-mime-type*=error]").count() == 0
    finally:
        context.close()


def test_a_fresh_kernels_first_answer_streams_on_run_all(lab, browser):
    """Run All on a fresh kernel (``%load_ext``, ``connect()``, a first ``%%realtime`` cell,
    no pause): the first cell makes the stream hub, the page installs its renderer while
    the answer is asked for, and the answer streams (the cold-start benchmark counts on
    this when it plays the page's part), then ends as one exact Markdown output."""
    context, page = open_notebook(lab, browser, "first_answer.ipynb", [CELLS[0], CELLS[2]])
    try:
        expect(cell(page, 1)).to_be_attached()
        page.wait_for_function(KERNEL_READY)  # Run All as a user does, once the kernel is up
        page.evaluate(WATCH_CELL, 1)
        run_all(page, [0, 1])
        answer_cell = cell(page, 1)
        expect(answer_cell.locator(".jp-RenderedMarkdown").last).to_contain_text("completed")
        check_streamed(page, answer_cell)
    finally:
        context.close()


def test_a_long_answer_grows_by_appends_in_notebook7(lab, browser, artifacts):
    context, page = open_notebook7(lab, browser, "long_answer7.ipynb", CELLS)
    try:
        run_cell_by_keyboard(page, 0, timeout_ms=60_000)
        run_cell_by_keyboard(page, 1, timeout_ms=60_000)
        page.wait_for_function("() => document.documentElement.dataset.rtStream === '1'")
        page.evaluate(WATCH_CELL, 2)
        run_cell_by_keyboard(page, 2, timeout_ms=120_000)
        answer_cell = cell(page, 2)
        expect(answer_cell.locator(".jp-RenderedMarkdown").last).to_contain_text("completed")
        page.screenshot(path=str(artifacts / "long-answer-notebook7.png"))
        check_streamed(page, answer_cell)
    finally:
        context.close()


# While hostile text streams, every element added to the answer's view is audited at once
# (the security test audits the final outputs; this audits the streaming view).
WATCH_HOSTILE = """([index, audit]) => {
  const check = new Function('return ' + audit)();
  const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[index];
  const found = window.__rt_hostile = {bad: [], audits: 0, saw: 0};
  new MutationObserver(() => {
    if (!cell.querySelector('.rt-stream')) { return; }
    found.saw = 1;
    cell.classList.add('rt-audit-cell');
    found.audits += 1;
    found.bad.push(...check('.rt-audit-cell .rt-stream'));
  }).observe(cell, {subtree: true, childList: true, characterData: true});
}"""


def test_hostile_text_stays_inert_while_it_streams(lab, browser):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    import hostile
    from test_security_browser import AUDIT, INIT

    text = "\n\n".join(p for group in hostile.GROUPS.values() for p in group)
    cells = [CELLS[0].replace("pace=0.004", "pace=0.02"), CELLS[1], f"%%realtime\n{text}"]
    context, page = open_notebook(lab, browser, "hostile_stream.ipynb", cells)
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    try:
        page.evaluate(f"() => {{ {INIT} }}")  # (a bare script's last value would be called)
        run_cell(page, 0)
        run_cell(page, 1)
        page.wait_for_function("() => document.documentElement.dataset.rtStream === '1'")
        page.evaluate(WATCH_HOSTILE, [2, AUDIT])
        run_cell(page, 2, wait=True)
        expect(cell(page, 2).locator(".jp-RenderedMarkdown").last).to_contain_text("completed")
        found = page.evaluate("() => window.__rt_hostile")
        assert found["saw"] == 1  # it streamed through the widget
        assert found["audits"] > 3
        assert found["bad"] == []
        assert page.evaluate("() => window.__rt_sentinel") == 0
        assert page.evaluate("() => window.__rt_alerts") == 0
        assert not [u for u in requests if "203.0.113.7" in u]
    finally:
        context.close()


def test_past_the_limit_the_rest_is_plain_text_behind_show_all(lab, browser, artifacts):
    """A 166 KB answer: Markdown up to 100 KB, the rest folded as plain text behind the
    page's own "show all" control; the final output draws the bounded HTML."""
    items = "\n\n".join(f"- item {n} with [a link](https://example.org/{n})" for n in range(3_200))
    cells = [CELLS[0].replace("pace=0.004", "pace=0.0004"), CELLS[1], f"%%realtime\n{items}"]
    context, page = open_notebook(lab, browser, "bounded.ipynb", cells)
    try:
        run_cell(page, 0)
        run_cell(page, 1)
        page.wait_for_function("() => document.documentElement.dataset.rtStream === '1'")
        run_cell(page, 2, wait=False)
        answer_cell = cell(page, 2)
        show_all = answer_cell.locator(".rt-stream-show-all")
        expect(show_all).to_have_text("show all", timeout=page_timeout_ms(60))
        assert answer_cell.locator(".rt-stream-plain").count() == 0  # folded: not drawn
        answer_cell.locator(".rt-stream-fold").screenshot(path=str(artifacts / "bounded.png"))
        show_all.click()
        plain = answer_cell.locator(".rt-stream-plain")
        # The rest, as text: the Markdown of a list item and its link, not parsed.
        expect(plain).to_contain_text(re.compile(r"- item \d+ with \[a link\]\(https://"))
        assert plain.locator("a").count() == 0
        prompt = answer_cell.locator(".jp-InputPrompt")
        expect(prompt).to_have_text(re.compile(r"\[\d+\]"), timeout=page_timeout_ms(90))
        output = answer_cell.locator(".jp-OutputArea-output").last
        expect(output).to_have_attribute("data-mime-type", "text/html")
        expect(output).to_contain_text("follow as plain text")
        expect(output.locator("pre")).to_contain_text("item 3199")
    finally:
        context.close()


def test_the_next_answer_streams_through_the_kept_widget_with_its_own_link(lab, browser):
    """An answer's widget is kept for the next answer: the next cell streams (by appends,
    to the exact text) through a new view of it, whose "events" link is its own turn's,
    and the cell before keeps its output, untouched."""
    cells = [CELLS[0], CELLS[1], "%%realtime\nthe first answer", CELLS[2]]
    context, page = open_notebook(lab, browser, "kept_widget.ipynb", cells)
    try:
        run_cell(page, 0)
        run_cell(page, 1)
        page.wait_for_function("() => document.documentElement.dataset.rtStream === '1'")
        run_cell(page, 2)
        first = cell(page, 2).locator(".jp-RenderedMarkdown")
        expect(first).to_contain_text("completed")
        first_text = first.inner_text()
        first_link = first.locator("a[href^='#rt-events-']").get_attribute("href")
        page.evaluate(WATCH_CELL, 3)
        run_cell(page, 3, wait=False)
        answer_cell = cell(page, 3)
        expect(answer_cell.locator(".rt-stream-block").nth(2)).to_be_attached()
        streaming_link = answer_cell.locator(".rt-stream a").get_attribute("href")
        expect(answer_cell.locator(".jp-RenderedMarkdown").last).to_contain_text("completed")
        check_streamed(page, answer_cell)
        final = answer_cell.locator(".jp-RenderedMarkdown a[href^='#rt-events-']")
        assert streaming_link == final.get_attribute("href") != first_link
        assert first.inner_text() == first_text
        saved = page.evaluate(OUTPUTS, 2)[0]["data"]["text/markdown"]
        assert saved.startswith(echo_reply("the first answer") + "\n\n*")
    finally:
        context.close()


def test_after_a_page_reload_the_next_answer_streams_through_the_kept_widget(lab, browser):
    """The browser tab is reloaded between answers (same kernel): the reloaded page makes
    the kernel's widgets again (the stream hub installs its renderer, the kept answer
    widget says hello), and the next answer streams by appends to its exact text."""
    context, page = open_notebook(lab, browser, "reloaded.ipynb", CELLS)
    try:
        run_cell(page, 0)
        run_cell(page, 1)  # the kernel's first answer: its widget is kept afterwards
        page.wait_for_function("() => document.documentElement.dataset.rtStream === '1'")
        expect(cell(page, 1).locator(".jp-RenderedMarkdown").last).to_contain_text("completed")
        page.reload()
        page.wait_for_function(KERNEL_READY)
        page.evaluate("() => { window.__rt_notebook = window.jupyterapp.shell.currentWidget; }")
        page.wait_for_function("() => document.documentElement.dataset.rtStream === '1'")
        page.evaluate(WATCH_CELL, 2)
        run_cell(page, 2, wait=False)
        answer_cell = cell(page, 2)
        expect(answer_cell.locator(".jp-RenderedMarkdown").last).to_contain_text("completed")
        check_streamed(page, answer_cell)
    finally:
        context.close()


def test_a_text_format_answer_on_the_kept_widget_streams_as_text(lab, browser):
    """After a Markdown answer, a ``--format text`` answer streams through the same kept
    widget as plain text: nothing of it goes through the Markdown renderer."""
    cells = [CELLS[0], CELLS[1], f"%%realtime --format text\n{TEXT}"]
    context, page = open_notebook(lab, browser, "kept_text.ipynb", cells)
    try:
        run_cell(page, 0)
        run_cell(page, 1)  # a Markdown answer: its widget is kept
        page.wait_for_function("() => document.documentElement.dataset.rtStream === '1'")
        page.evaluate(WATCH_CELL, 2)
        run_cell(page, 2, wait=False)
        answer_cell = cell(page, 2)
        expect(answer_cell.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"))
        expect(answer_cell.locator(".jp-OutputArea-output").last).to_contain_text("completed")
        watch = page.evaluate("() => window.__rt_watch")
        assert watch["streamed"] == 1
        assert len(watch["states"]) > 3
        assert watch.get("rendered", 0) == 0  # shown as text while it streamed
        for state in watch["states"]:
            shown = words(state)
            assert shown == words(TEXT)[: len(shown)], state[:300]
        outputs = [o for o in page.evaluate(OUTPUTS, 2) if o.get("data")]
        assert set(outputs[-1]["data"]) == {"text/plain"}
    finally:
        context.close()
