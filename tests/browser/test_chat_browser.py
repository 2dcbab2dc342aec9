"""The chat panel in JupyterLab 4, driven like a person would in headless Chromium.

One notebook, one kernel, one inline panel for the module: the tests run in file order
and each looks only at the bubbles its own message created. Screenshots of each state go
to ``test-artifacts/``.
"""

from __future__ import annotations

import re

import pytest

from rt_notebook.server.responders import echo_reply
from tests.browser.lab_page import TIMEOUT, expect, goto_notebook, open_notebook, run_cell, save

pytestmark = [pytest.mark.browser, TIMEOUT]

NOTEBOOK = "chat.ipynb"
XSS = '<img src=x onerror="window.__rt_xss=1"> and <script>window.__rt_xss=2</script>'
CELLS = [
    "%load_ext rt_notebook\nimport rt_notebook\ns = rt_notebook.connect(offline=True)",
    "%realtime chat",
    "%%realtime\nHello from a notebook cell",
    "%realtime chat --side",
    "%%realtime\nThis cell and the side panel share one conversation",
    "rt_notebook.ChatPanel(s).write_transcript()",
    "%%realtime\n" + " ".join(f"busy{n}" for n in range(300)),
]
SETUP, INLINE_PANEL, CELL_EXCHANGE, SIDE_PANEL, SIDE_EXCHANGE, TRANSCRIPT, BUSY = range(len(CELLS))

# The panel rendered in the notebook (the side panel lives outside .jp-Notebook).
INLINE = ".jp-Notebook .rt-chat"

# Records every distinct (item, status, text) of the inline panel's assistant bubbles.
WATCH_ASSISTANT = """(selector) => {
  window.__rt_states = [];
  const root = document.querySelector(selector);
  const record = () => {
    for (const bubble of root.querySelectorAll('.rt-chat-bubble[data-role="assistant"]')) {
      const state = {
        id: bubble.dataset.itemId,
        status: bubble.dataset.status,
        text: bubble.querySelector('.rt-chat-body').innerText.trim(),
      };
      const seen = window.__rt_states.some(
        (s) => s.id === state.id && s.status === state.status && s.text === state.text);
      if (!seen) { window.__rt_states.push(state); }
    }
  };
  new MutationObserver(record).observe(root, {subtree: true, childList: true, characterData: true});
  record();
}"""


def words(count: int, stem: str) -> str:
    return " ".join(f"{stem}{n}" for n in range(count))


@pytest.fixture(scope="module")
def page(lab, browser, artifacts):
    context, page = open_notebook(
        lab, browser, NOTEBOOK, CELLS, viewport=(1600, 1000), timeout_s=60
    )
    run_cell(page, SETUP)
    run_cell(page, INLINE_PANEL)
    page.locator(INLINE).wait_for()
    expect_status(page, INLINE, "ready")
    expect(page.locator(f"{INLINE} .rt-chat-status")).to_contain_text("offline server")
    yield page
    page.screenshot(path=str(artifacts / "chat-99-end.png"))
    context.close()


def expect_status(page, panel: str, state: str) -> None:
    expect(page.locator(f"{panel} .rt-chat-status")).to_have_attribute("data-state", state)


def send(page, text: str, panel: str = INLINE) -> None:
    box = page.locator(f"{panel} .rt-chat-input")
    box.fill(text)
    box.press("Enter")


def bubble(page, role: str, text: str, panel: str = INLINE):
    return page.locator(f'{panel} .rt-chat-bubble[data-role="{role}"]').filter(has_text=text)


def test_enter_sends_and_the_answer_grows_live_to_the_exact_text(page, artifacts):
    message = words(150, "stream")  # ~3 s at the embedded server's default pace
    final = echo_reply(message)
    page.evaluate(WATCH_ASSISTANT, INLINE)
    send(page, message)
    expect(page.locator(f"{INLINE} .rt-chat-input")).to_have_value("")
    expect(bubble(page, "user", "stream149")).to_have_count(1)
    answer = bubble(page, "assistant", "Echo: stream0")
    expect(answer).to_have_attribute("data-status", "in_progress")
    expect_status(page, INLINE, "responding")
    page.screenshot(path=str(artifacts / "chat-01-streaming.png"))
    expect(answer).to_have_attribute("data-status", "completed")
    expect(answer.locator(".rt-chat-body")).to_have_text(final)
    expect_status(page, INLINE, "ready")
    states = page.evaluate("() => window.__rt_states")
    item = next(s["id"] for s in states if s["text"] == final)
    texts = [s["text"] for s in states if s["id"] == item and s["status"] == "in_progress"]
    growing = [t for t in texts if t and final.startswith(t) and t != final]
    assert len(growing) >= 2, f"saw only {texts!r} before the final text"
    assert sorted(growing, key=len) == growing  # it only ever grew
    page.screenshot(path=str(artifacts / "chat-02-final.png"))


# Records, in the inline panel's assistant bodies, every element removed and every text
# node removed outside the streaming tail (a finished block is never rewritten).
WATCH_REWRITES = """(selector) => {
  window.__rt_rewrites = [];
  const root = document.querySelector(selector);
  new MutationObserver((records) => {
    for (const record of records) {
      const body = record.target.closest && record.target.closest('.rt-chat-body');
      if (!body || !body.closest('.rt-chat-bubble[data-role="assistant"]')) { continue; }
      for (const node of record.removedNodes) {
        const inTail = record.target.closest('.rt-chat-tail');
        if (node.nodeType === 1 || !inTail) { window.__rt_rewrites.push(node.textContent); }
      }
    }
  }).observe(root, {subtree: true, childList: true});
}"""


def test_a_long_answer_grows_by_appending_blocks(page):
    paragraphs = [words(40, f"para{p}w") for p in range(4)]
    page.evaluate(WATCH_REWRITES, INLINE)
    box = page.locator(f"{INLINE} .rt-chat-input")
    box.fill("\n\n".join(paragraphs))
    box.press("Enter")
    answer = bubble(page, "assistant", "para0w0")
    expect(answer).to_have_attribute("data-status", "completed")
    blocks = answer.locator(".rt-chat-body > p")
    expect(blocks).to_have_count(5)  # "Echo:" and the four paragraphs, each its own block
    assert blocks.all_inner_texts() == ["Echo:", *paragraphs]
    assert answer.locator(".rt-chat-tail").inner_text() == ""
    assert page.evaluate("() => window.__rt_rewrites") == []  # appended, never rewritten


def test_shift_enter_adds_a_line_and_runs_no_cell(page):
    prompts = page.locator(".jp-Notebook .jp-InputPrompt").all_inner_texts()
    box = page.locator(f"{INLINE} .rt-chat-input")
    box.click()
    box.press_sequentially("first line")
    box.press("Shift+Enter")
    box.press_sequentially("second line")
    expect(box).to_have_value("first line\nsecond line")
    box.press("Enter")
    sent = bubble(page, "user", "second line")
    expect(sent).to_have_count(1)
    assert "first line\nsecond line" in sent.locator(".rt-chat-body").inner_text()
    expect(bubble(page, "assistant", "second line")).to_have_attribute("data-status", "completed")
    assert page.locator(".jp-Notebook .jp-InputPrompt").all_inner_texts() == prompts


def test_stop_cancels_mid_stream(page, artifacts):
    send(page, words(400, "long"))
    answer = bubble(page, "assistant", "Echo: long0")
    expect(answer).to_have_attribute("data-status", "in_progress")
    stop = page.locator(f"{INLINE} .rt-chat-stop")
    expect(stop).to_be_enabled()
    stop.click()
    expect(answer).to_have_attribute("data-response-status", "cancelled")
    expect(answer.locator(".rt-chat-flag")).to_have_text("cancelled")
    assert "long399" not in answer.inner_text()
    expect_status(page, INLINE, "ready")
    expect(stop).to_be_disabled()
    page.screenshot(path=str(artifacts / "chat-03-stopped.png"))


def test_a_cell_exchange_appears_in_the_panel(page, artifacts):
    run_cell(page, CELL_EXCHANGE)
    expect(bubble(page, "user", "Hello from a notebook cell")).to_have_count(1)
    answer = bubble(page, "assistant", "Echo: Hello from a notebook cell")
    expect(answer).to_have_attribute("data-status", "completed")
    page.screenshot(path=str(artifacts / "chat-04-cell-exchange.png"))


def test_html_in_a_reply_does_not_run(page, artifacts):
    send(page, XSS)
    answer = bubble(page, "assistant", "Echo: <img")
    expect(answer).to_have_attribute("data-status", "completed")
    assert 'onerror="window.__rt_xss=1"' in answer.locator(".rt-chat-body").inner_text()
    assert "<script>window.__rt_xss=2</script>" in answer.inner_text()
    assert page.locator(f"{INLINE} .rt-chat-body img, {INLINE} .rt-chat-body script").count() == 0
    assert page.evaluate("() => window.__rt_xss") is None
    page.screenshot(path=str(artifacts / "chat-05-xss-inert.png"))


def test_side_panel_next_to_the_cells_shows_the_live_conversation(page, artifacts):
    run_cell(page, SIDE_PANEL)
    side = ".rt-chat.rt-chat-side"
    page.locator(side).wait_for()
    expect_status(page, side, "ready")
    # The side panel shows the history too, and both panels see what the next cell adds.
    expect(bubble(page, "user", "Hello from a notebook cell", side)).to_have_count(1)
    run_cell(page, SIDE_EXCHANGE, wait=False)
    shared = "Echo: This cell and the side panel share one conversation"
    for panel in (side, INLINE):
        expect(bubble(page, "assistant", shared, panel)).to_have_attribute(
            "data-status", "completed"
        )
    send(page, "And the side panel can answer back", side)
    for panel in (side, INLINE):
        answer = bubble(page, "assistant", "Echo: And the side panel can answer back", panel)
        expect(answer).to_have_attribute("data-status", "completed")
    expect_status(page, side, "ready")
    # The cell that took part, its answer, and the inline panel above it, beside the side panel.
    cell = page.locator(".jp-Notebook .jp-Cell").nth(SIDE_EXCHANGE)
    expect(cell.locator(".jp-RenderedMarkdown").first).to_contain_text(shared)
    cell.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "chat-06-side-by-side.png"))


def test_transcript_is_written_as_plain_output(page, artifacts):
    run_cell(page, TRANSCRIPT)
    output = page.locator(".jp-Notebook .jp-Cell").nth(TRANSCRIPT).locator(".jp-RenderedMarkdown")
    expect(output).to_contain_text("Hello from a notebook cell")
    expect(output).to_contain_text("And the side panel can answer back")
    assert page.evaluate("() => window.__rt_xss") is None
    output.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "chat-07-transcript.png"))


def test_enter_and_stop_work_while_a_cell_is_running(page, artifacts):
    # JupyterLab 4.6 delivers widget messages on a kernel subshell while a cell is busy:
    # the panel's message enters the conversation, and Stop stops the cell's response.
    run_cell(page, BUSY, wait=False)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(BUSY)
    prompt = cell.locator(".jp-InputPrompt")
    answer = bubble(page, "assistant", "Echo: busy0")
    expect(answer).to_have_attribute("data-status", "in_progress")
    send(page, "sent while the cell runs")
    # Shown at once, marked queued: its turn comes after the cell's answer.
    queued = bubble(page, "user", "sent while the cell runs")
    expect(queued).to_have_count(1)
    expect(queued).to_have_attribute("data-status", "queued")
    expect(queued).to_contain_text("queued")
    assert prompt.inner_text().strip() == "[*]:"
    page.locator(f"{INLINE} .rt-chat-stop").click()
    expect(answer).to_have_attribute("data-response-status", "cancelled")
    # Stop cancelled its turn too: it stays, saying it was not sent, and got no answer.
    expect(queued).to_have_attribute("data-status", "stopped")
    expect(queued).to_contain_text("not sent")
    expect(bubble(page, "assistant", "Echo: sent while the cell runs")).to_have_count(0)
    expect(prompt).to_have_text(re.compile(r"\[\d+\]"))
    expect(cell.locator(".jp-OutputArea")).to_contain_text("cancelled")
    expect_status(page, INLINE, "ready")
    page.screenshot(path=str(artifacts / "chat-08-stop-a-running-cell.png"))


def test_a_reloaded_page_gets_the_whole_list_from_the_kernel(page, artifacts):
    read = """(els) => els.map((e) => [e.dataset.itemId, e.dataset.role, e.dataset.status,
        e.querySelector('.rt-chat-body').innerText])"""
    bubbles = page.locator(f"{INLINE} .rt-chat-bubble")
    before = bubbles.evaluate_all(read)
    assert len(before) >= 10
    save(page)
    goto_notebook(page, page.url)  # a reload: the panel's list lives in the kernel
    expect(bubbles).to_have_count(len(before))
    assert bubbles.evaluate_all(read) == before
    expect_status(page, INLINE, "ready")
    send(page, "after the reload")
    expect(bubble(page, "assistant", "Echo: after the reload")).to_have_attribute(
        "data-status", "completed"
    )
    page.screenshot(path=str(artifacts / "chat-09-reloaded.png"))
