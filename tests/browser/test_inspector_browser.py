"""The event inspector in JupyterLab 4: ``%realtime inspect --live`` grows while the answer
streams, and the notebook keeps plain Markdown output."""

from __future__ import annotations

import re

import nbformat
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

NOTEBOOK = "inspector.ipynb"
CELLS = [
    "%load_ext rt_notebook\nimport rt_notebook\nfrom rt_notebook.server import EmbeddedServer\n"
    "server = EmbeddedServer(pace=0.02)\nserver.start()\n"
    "s = rt_notebook.connect(base_url=server.base_url, "
    "websocket_base_url=server.websocket_base_url, api_key=server.token)",
    # A long answer first: the inspected turn (the last) is queued when the view opens.
    "first = s.ask('long ' * 150)\nsecond = s.ask('inspect me ' * 40)",
    "%realtime inspect --live",
]
SETUP, ASK, INSPECT = range(len(CELLS))

RUN_CELL = """async ([index, wait]) => {
  const panel = window.__rt_notebook;
  await panel.sessionContext.ready;
  panel.content.activeCellIndex = index;
  panel.content.deselectAll();
  const done = window.jupyterapp.commands.execute('notebook:run-cell');
  if (wait) { await done; }
}"""

# Records every distinct state of one cell's output: rows of the table, and whether done.
WATCH_OUTPUT = """(index) => {
  window.__rt_inspect = [];
  const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[index];
  const record = () => {
    const text = cell.querySelector('.jp-OutputArea')?.innerText || '';
    const rows = cell.querySelectorAll('.jp-OutputArea tbody tr').length;
    const state = {rows, done: text.includes('(done)'), text: text.slice(0, 20000)};
    const last = window.__rt_inspect[window.__rt_inspect.length - 1];
    if (!last || last.rows !== state.rows || last.done !== state.done) {
      window.__rt_inspect.push(state);
    }
  };
  new MutationObserver(record).observe(cell, {subtree: true, childList: true, characterData: true});
  record();
}"""


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def run_cell(page, index: int) -> None:
    page.evaluate(RUN_CELL, [index, True])
    prompt = page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-InputPrompt")
    expect(prompt).to_have_text(re.compile(r"\[\d+\]"))


def test_the_live_inspector_grows_while_the_answer_streams(lab, browser, artifacts):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, str(lab.root / NOTEBOOK))
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(lab.notebook_url(NOTEBOOK))
        page.wait_for_function(
            "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
            " && window.jupyterapp.shell.currentWidget.sessionContext"
        )
        page.evaluate("() => { window.__rt_notebook = window.jupyterapp.shell.currentWidget; }")
        run_cell(page, SETUP)
        page.evaluate(WATCH_OUTPUT, INSPECT)
        run_cell(page, ASK)
        run_cell(page, INSPECT)
        page.wait_for_function("() => window.__rt_inspect.some((s) => s.done)")
        page.screenshot(path=str(artifacts / "inspector-live-done.png"))
        states = page.evaluate("() => window.__rt_inspect")
        shown = [s for s in states if s["rows"] > 0]
        final = next(s for s in states if s["done"])
        assert "response.done" in final["text"]
        assert re.search(r"response\.output_text\.delta x\d+", final["text"])
        # It grew: a state with fewer rows, before the turn was done, came first.
        assert any(s["rows"] < final["rows"] and not s["done"] for s in shown), states
        # The saved output is Markdown, not a widget.
        page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty")
        saved = nbformat.read(str(lab.root / NOTEBOOK), as_version=4)
        outputs = saved.cells[INSPECT].outputs
        assert outputs
        assert all(
            "application/vnd.jupyter.widget-view+json" not in o.get("data", {}) for o in outputs
        )
        assert any("text/markdown" in o.get("data", {}) for o in outputs)
    finally:
        context.close()
