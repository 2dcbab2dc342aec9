"""The event inspector in JupyterLab 4: ``%realtime inspect --live`` grows while the answer
streams, and the notebook keeps plain Markdown output."""

from __future__ import annotations

import re

import nbformat
import pytest

from tests.browser import lab_page
from tests.kernel.harness import UNIT
from tests.timing import within

pytestmark = [pytest.mark.browser, pytest.mark.timeout(within(240))]

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

    # A busy machine: the kernel answers in its time (one scalable unit, as elsewhere).
    playwright_expect.set_options(timeout=60_000 * UNIT)
    return playwright_expect(locator)


def run_cell(page, index: int, wait: bool = True) -> None:
    lab_page.run_cell(page, index, wait, errors_ok=True)


def open_notebook(browser, lab, name, cells=None):
    """``lab_page.open_notebook`` in a wide page, with a shorter default timeout."""
    return lab_page.open_notebook(lab, browser, name, cells, viewport=(1600, 1000), timeout_s=60)


def test_the_live_inspector_grows_while_the_answer_streams(lab, browser, artifacts):
    context, page = open_notebook(browser, lab, NOTEBOOK, CELLS)
    try:
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
        lab_page.save(page)
        saved = nbformat.read(str(lab.root / NOTEBOOK), as_version=4)
        outputs = saved.cells[INSPECT].outputs
        assert outputs
        assert all(
            "application/vnd.jupyter.widget-view+json" not in o.get("data", {}) for o in outputs
        )
        assert any("text/markdown" in o.get("data", {}) for o in outputs)
    finally:
        context.close()


# The "events" link of a cell's footer -------------------------------------------------

CLICK_NOTEBOOK = "inspector_click.ipynb"
CLICK_CELLS = [
    "%load_ext rt_notebook\nimport rt_notebook\nfrom rt_notebook.server import EmbeddedServer\n"
    "server = EmbeddedServer(pace=0.02)\nserver.start()\n"
    "s = rt_notebook.connect(websocket_base_url=server.websocket_base_url, "
    "api_key=server.token)",
    "%%realtime\nanother cell's question",
    "%%realtime\n" + "stream " * 200,
]
C_SETUP, C_OTHER, C_LONG = range(len(CLICK_CELLS))
LINK = "a[href^='#rt-events-']"
PANE = ".jupyterlab-sidecar"  # the sidecar package's side area

# Records every distinct state of the inspector pane (outside the notebook): rows, done.
WATCH_PANE = """() => {
  window.__rt_pane = [];
  const record = () => {
    const pane = document.querySelector('.jupyterlab-sidecar');
    if (!pane) { return; }
    const text = pane.innerText || '';
    const rows = pane.querySelectorAll('tbody tr').length;
    const state = {rows, done: text.includes('(done)'), text: text.slice(0, 20000)};
    const last = window.__rt_pane[window.__rt_pane.length - 1];
    if (!last || last.rows !== state.rows || last.done !== state.done) {
      window.__rt_pane.push(state);
    }
  };
  new MutationObserver(record).observe(document.body,
    {subtree: true, childList: true, characterData: true});
}"""

SAVE = """async () => {
  const panel = window.jupyterapp.shell.currentWidget;
  await panel.context.save();
}"""


def test_a_footer_link_opens_that_cells_events_live_and_the_notebook_stays_clean(
    lab, browser, artifacts
):
    context, page = open_notebook(browser, lab, CLICK_NOTEBOOK, CLICK_CELLS)
    cells = page.locator(".jp-Notebook .jp-Cell")
    try:
        run_cell(page, C_SETUP)
        run_cell(page, C_OTHER)
        expect(cells.nth(C_OTHER).locator(LINK)).to_have_count(1)
        # The hub installed its click delegate (no output of its own anywhere).
        page.wait_for_function("() => !!document.documentElement.dataset.rtEvents")
        page.evaluate(WATCH_PANE)
        run_cell(page, C_LONG, wait=False)
        long_output = cells.nth(C_LONG).locator(".jp-OutputArea")
        expect(long_output).to_contain_text("stream stream")
        # Click while the answer streams (the cell is still running: its prompt is [*]).
        expect(cells.nth(C_LONG).locator(".jp-InputPrompt")).to_have_text(re.compile(r"\*"))
        long_output.locator(LINK).first.click()
        page.locator(PANE).wait_for()
        page.wait_for_function(
            "() => window.__rt_pane.some((s) => s.done)", timeout=within(120) * 1000
        )
        page.screenshot(path=str(artifacts / "inspector-click-done.png"))
        states = page.evaluate("() => window.__rt_pane")
        final = next(s for s in states if s["done"])
        assert "response.done" in final["text"]
        assert re.search(r"response\.output_text\.delta x\d+", final["text"])
        # Opened while it ran, and it grew live: fewer rows before the turn was done.
        assert any(0 < s["rows"] < final["rows"] and not s["done"] for s in states), states
        expect(cells.nth(C_LONG).locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"))
        # Saved: one Markdown output per answer, no widget view, no widget state.
        page.evaluate(SAVE)
        saved = nbformat.read(str(lab.root / CLICK_NOTEBOOK), as_version=4)
        ids = {}
        for index in (C_OTHER, C_LONG):
            outputs = [o for o in saved.cells[index].outputs if o.get("data")]
            assert len(outputs) == 1, saved.cells[index].outputs
            assert set(outputs[0]["data"]) == {"text/markdown", "text/plain"}
            assert "#rt-events-" in outputs[0]["data"]["text/markdown"]
            ids[index] = outputs[0]["metadata"]["rt_notebook"]["response_id"]
        raw = (lab.root / CLICK_NOTEBOOK).read_text()
        assert "application/vnd.jupyter.widget" not in raw
        assert "widgets" not in saved.metadata
        # Exactly that cell's events: its response, not the other cell's.
        assert ids[C_LONG] in final["text"]
        assert ids[C_OTHER] not in final["text"]
    finally:
        context.close()
    # Reopened with a fresh kernel (the old one's widgets are gone): no widget error, and
    # the old link is inert.
    stop_kernel(lab, CLICK_NOTEBOOK)
    context, page = open_notebook(browser, lab, CLICK_NOTEBOOK)
    try:
        cells = page.locator(".jp-Notebook .jp-Cell")
        expect(cells.nth(C_LONG).locator(".jp-RenderedMarkdown")).to_contain_text("stream")
        url = page.url
        # No hub in this kernel: the click is the browser's and JupyterLab's alone, and
        # both handle it synchronously (a fragment naming no element).
        cells.nth(C_OTHER).locator(LINK).first.click()
        assert page.locator(PANE).count() == 0
        assert page.url.split("#")[0] == url.split("#")[0]
        assert len(context.pages) == 1
        body = page.locator("body").inner_text()
        assert "Error displaying widget" not in body
        assert "model not found" not in body
        page.screenshot(path=str(artifacts / "inspector-click-reopened.png"))
    finally:
        context.close()


def stop_kernel(lab, name: str) -> None:
    """Delete the notebook's kernel session (its widget models go with it)."""
    import json
    import urllib.request

    headers = {"Authorization": f"token {lab.token}"}
    request = urllib.request.Request(f"{lab.url}/api/sessions", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as reply:
        sessions = json.load(reply)
    for session in sessions:
        if session.get("path", "").endswith(name):
            delete = urllib.request.Request(
                f"{lab.url}/api/sessions/{session['id']}", headers=headers, method="DELETE"
            )
            urllib.request.urlopen(delete, timeout=30).close()


# The "events" link of a chat panel answer, with hostile text in the events -----------

PANEL_NOTEBOOK = "inspector_panel.ipynb"
PANEL = ".jp-Notebook .rt-chat"


def test_a_panel_answer_link_opens_its_events_and_hostile_fields_stay_text(lab, browser, artifacts):
    from tests.browser.hostile import GROUPS, SENTINEL

    hostile = " ".join(GROUPS["html"][:6])
    cells = [
        CLICK_CELLS[C_SETUP],
        "%%realtime\na cell's question before the panel",
        "%realtime chat",
    ]
    context, page = open_notebook(browser, lab, PANEL_NOTEBOOK, cells)
    try:
        page.evaluate("() => { window.__rt_sentinel = 0; }")
        for index in range(len(cells)):
            run_cell(page, index)
        page.wait_for_function("() => !!document.documentElement.dataset.rtEvents")
        box = page.locator(f"{PANEL} .rt-chat-input")
        box.fill("panel question " + hostile)
        box.press("Enter")
        answer = page.locator(f'{PANEL} .rt-chat-bubble[data-role="assistant"]').filter(
            has_text="panel question"
        )
        expect(answer).to_have_attribute("data-status", "completed")
        item_id = answer.get_attribute("data-item-id")
        # The link under that answer (the panel's last one) opens its turn's events.
        page.locator(f"{PANEL} .rt-chat-events a").last.click()
        pane = page.locator(PANE)
        expect(pane).to_contain_text("(done)")
        expect(pane).to_contain_text(item_id)
        expect(pane).to_contain_text("panel question")
        assert "a cell's question before the panel" not in pane.inner_text()
        # Hostile strings in the events' fields are text in code blocks, never HTML.
        expect(pane).to_contain_text(SENTINEL)
        assert pane.locator("img, script, svg, iframe, details, video, object").count() == 0
        assert page.evaluate("() => window.__rt_sentinel") == 0
        page.screenshot(path=str(artifacts / "inspector-panel.png"))
    finally:
        context.close()


# Notebook 7 (no side area), then the same kernel from a new JupyterLab page -------------

NB7_NOTEBOOK = "inspector_nb7.ipynb"
NB7_CELLS = [
    "%load_ext rt_notebook\nimport rt_notebook\ns = rt_notebook.connect(offline=True)",
    "%%realtime\nHello from Notebook 7",
]


def test_notebook7_gets_a_note_and_a_new_page_on_the_same_kernel_gets_the_inspector(
    lab, browser, artifacts
):
    context, page = lab_page.open_notebook7(lab, browser, NB7_NOTEBOOK, NB7_CELLS)
    try:
        cells = page.locator(".jp-Notebook .jp-Cell")
        for index in range(len(NB7_CELLS)):
            lab_page.run_cell_by_keyboard(page, index, timeout_ms=60_000)
        answer = cells.nth(1).locator(".jp-OutputArea")
        expect(answer).to_contain_text("Echo: Hello from Notebook 7")
        page.wait_for_function("() => !!document.documentElement.dataset.rtEvents")
        link = answer.locator(LINK).first
        key = link.get_attribute("href").rsplit("-", 1)[1]
        link.click()
        note = answer.locator(".rt-events-note")
        expect(note).to_contain_text(f"%realtime inspect {key} --live")
        assert page.locator(PANE).count() == 0
        page.screenshot(path=str(artifacts / "inspector-notebook7-note.png"))
        page.evaluate(SAVE)  # the new page reads the answer from the file
    finally:
        context.close()
    # The kernel still runs: a new JupyterLab page restores its widgets, the hub's module
    # runs again without any output of its own, and the old answer's link works.
    context, page = open_notebook(browser, lab, NB7_NOTEBOOK)
    try:
        page.wait_for_function("() => !!document.documentElement.dataset.rtEvents")
        cells = page.locator(".jp-Notebook .jp-Cell")
        cells.nth(1).locator(LINK).first.click()
        pane = page.locator(PANE)
        expect(pane).to_contain_text("(done)")
        expect(pane).to_contain_text("Hello from Notebook 7")
        page.screenshot(path=str(artifacts / "inspector-restored.png"))
    finally:
        context.close()
    stop_kernel(lab, NB7_NOTEBOOK)
