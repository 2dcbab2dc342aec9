"""The main job: the quickstart notebook in JupyterLab, run cell by cell as a new user would.

With no credentials in JupyterLab's environment, the kernel talks to the embedded offline
server. The test runs every cell through JupyterLab's own command, watches the first
``%%realtime`` answer grow in the page, and checks every cell finished without an error.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

QUICKSTART = Path(__file__).resolve().parents[2] / "notebooks" / "quickstart.ipynb"

# Records every distinct text of one cell's rendered Markdown output as it changes.
WATCH_CELL = """(index) => {
  window.__rt_cell_states = [];
  const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[index];
  const record = () => {
    const output = cell.querySelector('.jp-OutputArea .jp-RenderedMarkdown');
    const text = output ? output.innerText.trim() : '';
    const states = window.__rt_cell_states;
    if (text && states[states.length - 1] !== text) { states.push(text); }
  };
  new MutationObserver(record).observe(cell, {subtree: true, childList: true, characterData: true});
}"""

RUN_ALL = """async () => {
  const panel = window.jupyterapp.shell.currentWidget;
  await panel.sessionContext.ready;
  await window.jupyterapp.commands.execute('notebook:run-all-cells');
}"""


def test_quickstart_runs_and_answers_stream_in(lab, browser, artifacts):
    from playwright.sync_api import expect

    shutil.copy(QUICKSTART, lab.root / QUICKSTART.name)
    notebook = nbformat.read(QUICKSTART, as_version=4)
    code_cells = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code"]
    first_answer = next(
        i for i, c in enumerate(notebook.cells) if c.source.startswith("%%realtime")
    )
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(90_000)
    try:
        page.goto(lab.notebook_url(QUICKSTART.name))
        page.wait_for_function(
            "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
            " && window.jupyterapp.shell.currentWidget.sessionContext"
        )
        cells = page.locator(".jp-Notebook .jp-Cell")
        cells.nth(len(notebook.cells) - 1).wait_for()
        page.evaluate(WATCH_CELL, first_answer)
        page.evaluate(RUN_ALL)
        for index in code_cells:  # every code cell ran: its prompt shows a number
            prompt = cells.nth(index).locator(".jp-InputPrompt")
            expect(prompt).to_have_text(re.compile(r"\[\d+\]"))
        answer = cells.nth(first_answer).locator(".jp-RenderedMarkdown").last
        expect(answer).to_contain_text("offline server")  # the footer: honest about it
        page.screenshot(path=str(artifacts / "quickstart-run-all.png"))
        answer.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "quickstart-first-answer.png"))

        states = page.evaluate("() => window.__rt_cell_states")
        final = states[-1]
        assert "Realtime session?" in final  # the offline server echoes the question
        growing = [s for s in states[:-1] if not s.startswith("waiting for")]
        assert growing, f"the answer never showed an intermediate state: {states}"
        assert (
            page.locator(".jp-Notebook .jp-OutputArea-output[data-mime-type*=error]").count() == 0
        )
        assert "Traceback" not in page.locator(".jp-Notebook").inner_text()
    finally:
        context.close()
