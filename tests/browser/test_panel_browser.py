"""The chat panel's edges in JupyterLab and Notebook 7: approvals where the call happened
(the panel's bubble, a background cell's area), the notebook in its label, a notice when
the kernel restarts, and ``--side`` where there is no side area."""

from __future__ import annotations

import re

import pytest

from tests.browser.lab_page import (
    TIMEOUT,
    expect,
    open_notebook,
    page_timeout_ms,
    run_cell,
    write_notebook,
)

pytestmark = [pytest.mark.browser, TIMEOUT]

NOTEBOOK = "panel_edges.ipynb"
SETUP = '''%load_ext rt_notebook
import rt_notebook
s = rt_notebook.connect(offline=True)

@s.tool(approval=True)
def delete_file(path: str) -> str:
    """Delete a file."""
    return f"deleted {path}"'''
CELLS = [
    SETUP,
    "%realtime chat",
    '%%realtime --background\ncall delete_file {"path": "bg.txt"}',
]
SETUP_CELL, PANEL_CELL, BACKGROUND_CELL = range(len(CELLS))
INLINE = ".jp-Notebook .rt-chat"


@pytest.fixture(scope="module")
def page(lab, browser, artifacts):
    context, page = open_notebook(lab, browser, NOTEBOOK, CELLS, timeout_s=60)
    run_cell(page, SETUP_CELL)
    run_cell(page, PANEL_CELL)
    expect(page.locator(f"{INLINE} .rt-chat-status")).to_have_attribute("data-state", "ready")
    yield page
    context.close()


def test_the_label_names_the_notebook(page):
    header = page.locator(f"{INLINE} .rt-chat-header")
    expect(header).to_contain_text(NOTEBOOK)
    expect(header).to_contain_text("session default")


def test_approval_from_the_panel_is_asked_in_its_bubble(page, artifacts):
    box = page.locator(f"{INLINE} .rt-chat-input")
    box.fill('call delete_file {"path": "panel.txt"}')
    box.press("Enter")
    row = page.locator(f"{INLINE} .rt-approval")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Run delete_file")
    status = page.locator(f"{INLINE} .rt-chat-status-line .rt-chat-status")
    expect(status).to_have_attribute("data-state", "awaiting approval")
    page.screenshot(path=str(artifacts / "panel-approval-asked.png"))
    row.get_by_role("button", name="Approve").click()
    output = page.locator(f"{INLINE} .rt-chat-function-output")
    expect(output.filter(has_text="deleted panel.txt")).to_have_count(1)
    expect(row).to_contain_text("delete_file: approved")
    expect(status).to_have_attribute("data-state", "ready")


def test_approval_from_a_background_cell_is_asked_in_that_cell(page, artifacts):
    run_cell(page, BACKGROUND_CELL)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(BACKGROUND_CELL)
    approve = cell.locator(".jp-OutputArea").get_by_role("button", name="Approve")
    expect(approve).to_have_count(1)
    cell.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "panel-background-approval.png"))
    approve.click()
    expect(cell.locator(".jp-OutputArea")).to_contain_text("delete_file: approved")
    # The tool ran: its output reached the conversation (the panel shows it).
    output = page.locator(f"{INLINE} .rt-chat-function-output")
    expect(output.filter(has_text="deleted bg.txt")).to_have_count(1)


def test_a_huge_answer_shows_markdown_up_to_the_limit_and_folds_the_rest(page, artifacts):
    """Past 100 KB of Markdown the rest of an answer is plain text behind the panel's own
    "show all" button (not raw <details>): closed at first, the whole rest once opened."""
    text = "\n\n".join(f"`code_{n}_" + "x" * 2_000 + "`" for n in range(70))  # ~140 KB
    box = page.locator(f"{INLINE} .rt-chat-input")
    box.fill(text)
    box.press("Enter")
    answer = page.locator(f"{INLINE} .rt-chat-assistant").last
    expect(answer).to_have_attribute("data-status", "completed", timeout=page_timeout_ms(120))
    fold = answer.locator(".rt-chat-fold")
    expect(fold).to_be_visible()
    expect(fold).to_contain_text("characters are plain text")
    plain = answer.locator(".rt-chat-plain")
    expect(plain).to_be_hidden()
    body = answer.locator(".rt-chat-body")
    assert "code_69_" not in body.inner_text()  # the end is not drawn until asked for
    assert body.locator("code").count() < 70  # Markdown only up to the limit
    assert page.locator(f"{INLINE} details").count() == 0
    answer.get_by_role("button", name="show all").click()
    expect(plain).to_be_visible()
    expect(plain).to_contain_text("code_69_")
    page.screenshot(path=str(artifacts / "panel-huge-answer.png"))
    answer.get_by_role("button", name="hide").click()
    expect(plain).to_be_hidden()


def test_a_restarted_kernel_leaves_panels_saying_so(page, artifacts):
    box = page.locator(f"{INLINE} .rt-chat-input")
    box.fill(" ".join(f"long{n}" for n in range(400)))
    box.press("Enter")
    stop = page.locator(f"{INLINE} .rt-chat-stop")
    expect(stop).to_be_enabled()  # responding
    page.evaluate(
        "async () => { await window.__rt_notebook.sessionContext.session.kernel.restart(); }"
    )
    gone = page.locator(f'{INLINE} .rt-chat-status[data-state="kernel-gone"]')
    expect(gone).to_be_visible()
    expect(gone).to_contain_text("kernel gone")
    expect(page.locator(f"{INLINE} .rt-chat-status-line")).to_be_hidden()
    expect(stop).to_be_disabled()
    expect(box).to_be_disabled()
    page.screenshot(path=str(artifacts / "panel-kernel-gone.png"))


def run_in_notebook7(cell) -> None:
    """Shift+Enter in the cell's editor, as a person would, until the cell runs.

    Notebook 7 (unlike JupyterLab here) does not expose its application to scripts, and
    right after the page loads it can drop a Shift+Enter (the cell advances, nothing runs,
    the prompt stays "[ ]"). A person presses again; so does this, only in that case.
    """
    prompt = cell.locator(".jp-InputPrompt")
    editor = cell.locator(".jp-InputArea-editor .cm-content")
    for _ in range(3):
        editor.click()
        expect(cell).to_have_class(re.compile(r"\bjp-mod-active\b"))
        editor.press("Shift+Enter")
        try:  # "[*]" as soon as the kernel takes it, "[n]" once done
            expect(prompt).not_to_have_text(re.compile(r"\[ \]"), timeout=page_timeout_ms(10))
            break
        except AssertionError:
            continue
    expect(prompt).to_have_text(re.compile(r"\[\d+\]"), timeout=page_timeout_ms(60))


def test_side_panel_in_notebook7_is_shown_inline_with_a_note(lab, browser, artifacts):
    name = "notebook7_side.ipynb"
    write_notebook(lab.root, name, [SETUP, "%realtime chat --side"])
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(page_timeout_ms(90))
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    try:
        page.goto(f"{lab.url}/notebooks/{name}?token={lab.token}")
        cells = page.locator(".jp-Notebook .jp-Cell")
        cells.nth(1).wait_for()
        idle = page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]')
        for index in range(2):
            expect(idle).to_have_count(1)
            run_in_notebook7(cells.nth(index))
        note = cells.nth(1).locator(".rt-chat-side-note")
        expect(note).to_contain_text("no side area for widgets")
        panel = cells.nth(1).locator(".rt-chat")
        expect(panel.locator(".rt-chat-status")).to_have_attribute("data-state", "ready")
        box = panel.locator(".rt-chat-input")
        box.fill("Hello from the fallback")
        box.press("Enter")
        answer = panel.locator('.rt-chat-bubble[data-role="assistant"]')
        expect(answer.filter(has_text="Hello from the fallback")).to_have_count(1)
        page.screenshot(path=str(artifacts / "notebook7-side-fallback.png"))
        assert not [m for m in messages if "Could not create a view" in m]
    finally:
        context.close()
