"""``--to-cell`` in a real JupyterLab page (and Notebook 7): the answer's code appears in
a new cell below the cell that asked, exactly as the kernel sent it (hostile fences and HTML
as text), and nothing runs; ``%realtime fix --to-cell`` after a failing cell does the same.
The copy controls (chat panel, ``--background`` cells) copy that same text."""

from __future__ import annotations

import pytest

from tests.browser.lab_page import (
    KERNEL_READY,
    TIMEOUT,
    cell,
    expect,
    open_notebook,
    open_notebook7,
    run_cell,
    run_cell_by_keyboard,
)

pytestmark = [pytest.mark.browser, TIMEOUT]

# The echo server repeats a message of several lines verbatim after "Echo:", so the
# answer's one code block is exactly CODE.
CODE = (
    "x = '<img src=x onerror=\"window.__rt_pwned = 1\">'\n"
    "```\n"
    "</pre><script>window.__rt_pwned = 2</script>\n"
    "print('ran:' + 'to-cell')"
)
CELLS = [
    "%load_ext rt_notebook\nimport rt_notebook\n"
    "from rt_notebook.server import EmbeddedServer\n"
    "server = EmbeddedServer(pace=0.001).start()\n"
    "session = rt_notebook.connect(websocket_base_url=server.websocket_base_url,"
    " api_key=server.token)",
    f"%%realtime --to-cell --no-interpolate\nHostile code\n\n````python\n{CODE}\n````",
    "after = 'the cell that was below'",
    "1/0",
    "%realtime fix --to-cell",
]
SOURCES = """() => {
  const panel = window.__rt_notebook || window.jupyterapp.shell.currentWidget;
  return panel.content.widgets.map((c) => [c.model.type, c.model.sharedModel.getSource(),
                                           c.model.sharedModel.execution_count ?? null]);
}"""


def _wait_for_cells(page, count: int) -> None:
    page.wait_for_function(
        "(n) => (window.__rt_notebook || window.jupyterapp.shell.currentWidget)"
        ".content.widgets.length === n",
        arg=count,
    )


def test_to_cell_and_fix_add_the_code_below_verbatim_and_run_nothing(lab, browser) -> None:
    context, page = open_notebook(lab, browser, "to_cell.ipynb", CELLS)
    try:
        page.wait_for_function(KERNEL_READY)
        run_cell(page, 0)
        run_cell(page, 1)
        _wait_for_cells(page, len(CELLS) + 1)
        cells = page.evaluate(SOURCES)
        assert cells[2] == ["code", CODE, None]  # below the asking cell, never run
        assert cells[3][1] == CELLS[2]  # the cell that was below is now after it
        expect(cell(page, 2).locator(".jp-InputPrompt")).to_have_text("[ ]:")
        expect(cell(page, 2).locator(".jp-OutputArea-output")).to_have_count(0)
        # The hostile code is text everywhere: in the new cell's editor and in the answer.
        expect(cell(page, 2).locator(".cm-content")).to_contain_text("<script>")
        assert page.evaluate("() => window.__rt_pwned") is None
        notebook = page.locator(".jp-Notebook")
        expect(notebook.locator("script, img[src='x'], img[onerror]")).to_have_count(0)
        expect(cell(page, 1).locator(".jp-OutputArea-output").last).to_contain_text("<script>")

        run_cell(page, 4, errors_ok=True)  # 1/0, moved down by the new cell
        run_cell(page, 5, errors_ok=True)  # %realtime fix --to-cell: its answer says "Traceback"
        expect(cell(page, 5).locator(".jp-OutputArea-output[data-mime-type*=error]")).to_have_count(
            0
        )
        _wait_for_cells(page, len(CELLS) + 2)
        fixed = page.evaluate(SOURCES)[6]
        assert fixed[0] == "code"
        assert fixed[1].startswith("1/0\n\nTraceback (most recent call last):")
        assert fixed[1].endswith("ZeroDivisionError: division by zero")
        assert fixed[2] is None
        assert page.evaluate("() => window.__rt_pwned") is None
    finally:
        context.close()


PANEL_CELLS = [
    "%load_ext rt_notebook\nimport rt_notebook\ns = rt_notebook.connect(offline=True)",
    "%realtime chat",
    f"%%realtime --no-interpolate\nTwo blocks\n\n```\nfirst = 1\n```\n\n````python\n{CODE}\n````",
    f"%%realtime --background --to-cell --no-interpolate\nIn the background\n\n````\n{CODE}\n````",
]
PANEL = ".jp-Notebook .rt-chat"


def test_the_panels_copy_code_copies_each_block_as_the_kernel_sent_it(
    lab, browser, artifacts
) -> None:
    context, page = open_notebook(lab, browser, "copy_code.ipynb", PANEL_CELLS)
    try:
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=lab.url)
        page.wait_for_function(KERNEL_READY)
        run_cell(page, 0)
        run_cell(page, 1)
        page.locator(PANEL).wait_for()
        run_cell(page, 2)
        answer = page.locator(f'{PANEL} .rt-chat-bubble[data-role="assistant"]')
        expect(answer).to_have_attribute("data-status", "completed")
        copies = answer.locator(".rt-chat-copy")
        expect(copies).to_have_count(2)
        expect(copies.nth(1)).to_be_visible()
        expect(copies.nth(1)).to_have_accessible_name("Copy code")
        # The user's own message shows the same blocks, with no copy control.
        user_copies = page.locator(f'{PANEL} .rt-chat-bubble[data-role="user"] .rt-chat-copy')
        expect(user_copies.first).to_be_hidden()
        copies.nth(1).click()
        expect(copies.nth(1)).to_have_attribute("data-copied", "yes")
        assert page.evaluate("() => navigator.clipboard.readText()") == CODE
        copies.nth(0).click()
        expect(copies.nth(0)).to_have_attribute("data-copied", "yes")
        assert page.evaluate("() => navigator.clipboard.readText()") == "first = 1"
        page.locator(PANEL).screenshot(path=str(artifacts / "panel-copy-code.png"))
        # The hostile code stayed text: no element it names exists, nothing ran.
        expect(page.locator(f"{PANEL} script, {PANEL} img")).to_have_count(0)
        assert page.evaluate("() => window.__rt_pwned") is None
        # The bubble's text is the answer's text (the control adds none).
        assert "Copy" not in answer.locator(".rt-chat-body").inner_text()

        # A --background --to-cell cell: no new cell, a "Copy code" button under its answer.
        run_cell(page, 3)
        button = cell(page, 3).locator("button.rt-copy-code")
        expect(button).to_have_text("Copy code (4 lines)")
        expect(page.locator(".jp-Notebook .jp-Cell")).to_have_count(len(PANEL_CELLS))
        button.click()
        expect(button).to_have_text("Copied")
        assert page.evaluate("() => navigator.clipboard.readText()") == CODE
        expect(cell(page, 3).locator("script, img")).to_have_count(0)
        assert page.evaluate("() => window.__rt_pwned") is None
        cell(page, 3).screenshot(path=str(artifacts / "background-copy-code.png"))
    finally:
        context.close()


def test_to_cell_adds_the_cell_below_in_notebook7(lab, browser) -> None:
    cells = [CELLS[0], "%%realtime --to-cell\nCode\n\n```python\nnb7 = 'below'\n```", "last = 1"]
    context, page = open_notebook7(lab, browser, "to_cell_nb7.ipynb", cells)
    try:
        run_cell_by_keyboard(page, 0)
        run_cell_by_keyboard(page, 1)
        rows = page.locator(".jp-Notebook .jp-Cell")
        expect(rows).to_have_count(len(cells) + 1)
        expect(cell(page, 2).locator(".cm-content")).to_have_text("nb7 = 'below'")
        expect(cell(page, 2).locator(".jp-InputPrompt")).to_have_text("[ ]:")
        expect(cell(page, 3).locator(".cm-content")).to_have_text("last = 1")
    finally:
        context.close()
