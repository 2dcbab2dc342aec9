"""Browser test support: a notebook page in JupyterLab, driven through Playwright.

Imported by the browser tests, not collected. Write a notebook from cell sources, open it
in a new browser context, run one cell (or all) through JupyterLab's own command and wait
until its prompt says it finished, wait for the notebook's kernel, save. The same in
Notebook 7, where cells run as a person runs them (a click, then Shift+Enter). Playwright's
default timeout on these pages, and pytest-timeout's limit for a browser test, follow
``RT_TEST_TIME_SCALE`` (``tests/timing.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.timing import within

__all__ = [
    "APP_READY",
    "CHROMIUM_ARGS",
    "KERNEL_READY",
    "RUN_ALL",
    "RUN_CELL",
    "TIMEOUT",
    "cell",
    "expect",
    "goto_notebook",
    "open_notebook",
    "open_notebook7",
    "page_timeout_ms",
    "run_all",
    "run_cell",
    "run_cell_by_keyboard",
    "run_cell_when_idle",
    "save",
    "write_notebook",
]

# Debian's Chromium in a container: no sandbox, no GPU, nothing fetched in the background.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

TIMEOUT = pytest.mark.timeout(within(240))
"""pytest-timeout's limit for one browser test (a marker overrides the scaled default)."""

# JupyterLab has loaded and shows a notebook with a session context.
APP_READY = (
    "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
    " && window.jupyterapp.shell.currentWidget.sessionContext"
)

# The notebook's own kernel is connected and idle (not just the toolbar's indicator,
# which can read "idle" while the notebook has no kernel yet).
KERNEL_READY = """() => {
    const session = window.jupyterapp?.shell?.currentWidget?.sessionContext;
    const kernel = session?.session?.kernel;
    return !!session?.isReady && !!kernel && kernel.connectionStatus === "connected"
        && kernel.status === "idle";
}"""

# Runs one cell of the notebook opened by goto_notebook (pinned: a side panel becomes the
# shell's current widget) through JupyterLab's own command; with ``wait`` it resolves when
# the cell has finished.
RUN_CELL = """async ([index, wait]) => {
  const panel = window.__rt_notebook || window.jupyterapp.shell.currentWidget;
  await panel.sessionContext.ready;
  panel.content.activeCellIndex = index;
  panel.content.deselectAll();
  const done = window.jupyterapp.commands.execute('notebook:run-cell');
  if (wait) { await done; }
}"""

RUN_ALL = """async () => {
  const panel = window.__rt_notebook || window.jupyterapp.shell.currentWidget;
  await panel.sessionContext.ready;
  await window.jupyterapp.commands.execute('notebook:run-all-cells');
}"""

_PIN = "() => { window.__rt_notebook = window.jupyterapp.shell.currentWidget; }"
_FINISHED = re.compile(r"\[\d+\]")  # "[*]" while a cell runs, "[n]" once it has finished


def expect(locator: Any) -> Any:
    """Playwright's ``expect`` (imported late: collecting the tests needs no Playwright)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def page_timeout_ms(seconds: float = 90) -> float:
    """Playwright's default timeout for a page: ``seconds`` on an idle machine, scaled."""
    return within(seconds) * 1000


def write_notebook(root: Path, name: str, cells: Sequence[str]) -> Path:
    """A notebook of code cells with a Python 3 kernelspec, written as ``root/name``."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    path = root / name
    nbformat.write(notebook, str(path))
    return path


def goto_notebook(page: Any, url: str) -> None:
    """Load JupyterLab at ``url`` and wait for its notebook (pinned for ``run_cell``)."""
    page.goto(url)
    page.wait_for_function(APP_READY)
    page.evaluate(_PIN)


def open_notebook(
    lab: Any,
    browser: Any,
    name: str,
    cells: Sequence[str] | None = None,
    *,
    viewport: tuple[int, int] = (1400, 1000),
    timeout_s: float = 90,
) -> tuple[Any, Any]:
    """Write ``cells`` as ``name`` in the lab's root (unless ``None``: the file is there),
    open it in a new context; return ``(context, page)``. The caller closes the context."""
    if cells is not None:
        write_notebook(lab.root, name, cells)
    width, height = viewport
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.set_default_timeout(page_timeout_ms(timeout_s))
        goto_notebook(page, lab.notebook_url(name))
    except BaseException:
        context.close()
        raise
    return context, page


def open_notebook7(
    lab: Any,
    browser: Any,
    name: str,
    cells: Sequence[str],
    *,
    viewport: tuple[int, int] = (1400, 1000),
    timeout_s: float = 90,
) -> tuple[Any, Any]:
    """Write ``cells`` as ``name`` and open it in Notebook 7 (``/notebooks/``) in a new
    context, once its last cell is on the page; return ``(context, page)``."""
    write_notebook(lab.root, name, cells)
    width, height = viewport
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.set_default_timeout(page_timeout_ms(timeout_s))
        page.goto(f"{lab.url}/notebooks/{name}?token={lab.token}")
        page.locator(".jp-Notebook .jp-Cell").nth(len(cells) - 1).wait_for()
    except BaseException:
        context.close()
        raise
    return context, page


def run_cell_by_keyboard(page: Any, index: int, timeout_ms: float | None = None) -> None:
    """Run cell ``index`` as a person would, once the notebook's kernel is connected and
    idle: click it, see it active, Shift+Enter; return once its prompt shows it finished
    (within ``timeout_ms``, else the page's default).

    Why not the toolbar's execution indicator: it can read "idle" while the notebook has
    no kernel yet (its session still starting), and a cell run with no kernel is silently
    dropped, so the cell stayed "[ ]" (seen in 2 of 6 page loads)."""
    page.wait_for_function(KERNEL_READY)
    row = cell(page, index)
    row.locator(".jp-InputArea-editor").click()
    expect(row).to_have_class(re.compile(r"\bjp-mod-active\b"))
    page.keyboard.press("Shift+Enter")
    prompt = expect(row.locator(".jp-InputPrompt"))
    if timeout_ms is None:
        prompt.to_have_text(_FINISHED)
    else:
        prompt.to_have_text(_FINISHED, timeout=timeout_ms)


def cell(page: Any, index: int) -> Any:
    """The locator of the notebook's ``index``-th cell."""
    return page.locator(".jp-Notebook .jp-Cell").nth(index)


def run_cell(page: Any, index: int, wait: bool = True, errors_ok: bool = False) -> str:
    """Run cell ``index``; with ``wait``, return its output text once its prompt shows it
    finished, failing if it shows a traceback (unless ``errors_ok``)."""
    page.evaluate(RUN_CELL, [index, wait])
    if not wait:
        return ""
    expect(cell(page, index).locator(".jp-InputPrompt")).to_have_text(_FINISHED)
    text = " ".join(cell(page, index).locator(".jp-OutputArea-output").all_inner_texts())
    if not errors_ok:
        assert "Traceback" not in text, text
    return text


def run_cell_when_idle(page: Any, index: int, wait: bool = True) -> str:
    """:func:`run_cell`, once the notebook's kernel is connected and idle (the pages that
    start a kernel and at once run cells that talk to the browser)."""
    page.wait_for_function(KERNEL_READY)
    return run_cell(page, index, wait)


def run_all(page: Any, code_cells: Sequence[int]) -> None:
    """Run All through JupyterLab's command; return once each of ``code_cells`` finished."""
    page.evaluate(RUN_ALL)
    for index in code_cells:  # every code cell ran: its prompt shows a number
        expect(cell(page, index).locator(".jp-InputPrompt")).to_have_text(_FINISHED)


def save(page: Any) -> None:
    """Save the notebook through JupyterLab; return once it is no longer dirty."""
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function(
        "() => !(window.__rt_notebook || window.jupyterapp.shell.currentWidget).context.model.dirty"
    )
