"""The main job: the quickstart notebook in JupyterLab, run cell by cell as a new user would.

With no credentials in JupyterLab's environment, the kernel talks to the embedded offline
server. The test runs every cell through JupyterLab's own command, watches the first
``%%realtime`` answer grow in the page, and checks every cell finished without an error.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from tests.browser.lab_page import TIMEOUT, expect, open_notebook, run_all

pytestmark = [pytest.mark.browser, TIMEOUT]

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


def test_quickstart_runs_and_answers_stream_in(lab, browser, artifacts):
    shutil.copy(QUICKSTART, lab.root / QUICKSTART.name)
    notebook = nbformat.read(QUICKSTART, as_version=4)
    code_cells = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code"]
    first_answer = next(
        i for i, c in enumerate(notebook.cells) if c.source.startswith("%%realtime")
    )
    context, page = open_notebook(lab, browser, QUICKSTART.name)
    try:
        cells = page.locator(".jp-Notebook .jp-Cell")
        cells.nth(len(notebook.cells) - 1).wait_for()
        page.evaluate(WATCH_CELL, first_answer)
        run_all(page, code_cells)
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
