"""The tutorials in JupyterLab as a newcomer meets them: opening one leaves it unmodified,
and Run All on the chat tutorial ends with a live panel on screen."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest

from tests.browser.lab_page import TIMEOUT, expect, open_notebook, run_all

pytestmark = [pytest.mark.browser, TIMEOUT]

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
TUTORIALS = sorted(NOTEBOOKS.glob("*.ipynb"))

# Resolves once the kernel has answered kernel_info (JupyterLab then writes language_info
# and the kernelspec into the notebook's metadata: what would make it dirty).
KERNEL_KNOWN = """async () => {
  const panel = window.jupyterapp.shell.currentWidget;
  await panel.context.ready;
  await panel.sessionContext.ready;
  const kernel = panel.sessionContext.session.kernel;
  await kernel.info;
  await new Promise((resolve) => requestAnimationFrame(() => resolve()));
  return {dirty: panel.context.model.dirty, status: kernel.status};
}"""


def copy_as_saved_here(path: Path, folder: Path) -> None:
    """Copy a tutorial, with ``language_info.version`` set to the kernel's Python.

    JupyterLab writes the kernel's exact Python version into the metadata: a tutorial can
    match one version only, and on any other one opening it differs by that field alone.
    Everything else the tutorial carries must be what JupyterLab writes.
    """
    notebook = json.loads(path.read_text(encoding="utf-8"))
    notebook["metadata"]["language_info"]["version"] = platform.python_version()
    (folder / path.name).write_text(json.dumps(notebook, indent=1) + "\n", encoding="utf-8")


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda path: path.stem)
def test_opening_a_tutorial_leaves_it_unmodified(lab, browser, path):
    copy_as_saved_here(path, lab.root)
    context, page = open_notebook(lab, browser, path.name)
    try:
        state = page.evaluate(KERNEL_KNOWN)
        assert state["dirty"] is False, f"{path.name} is marked modified on opening"
        tab = page.locator(".lm-TabBar-tab.jp-mod-current")
        expect(tab).to_have_count(1)
        assert "jp-mod-dirty" not in (tab.get_attribute("class") or "")
    finally:
        context.close()


def test_run_all_on_the_chat_tutorial_leaves_a_live_panel(lab, browser, artifacts):
    path = NOTEBOOKS / "chat_panel.ipynb"
    copy_as_saved_here(path, lab.root)
    code_cells = [
        i
        for i, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"])
        if cell["cell_type"] == "code"
    ]
    before = _stat(lab.root / "chat.ipynb")
    context, page = open_notebook(lab, browser, path.name)
    try:
        run_all(page, code_cells)
        panel = page.locator(".jp-Notebook .rt-chat")
        expect(panel).to_have_count(1)  # the closed extra panel left nothing behind
        expect(panel.locator(".rt-chat-status")).to_have_attribute("data-state", "ready")
        # Live: it still sends and answers after the whole tutorial ran.
        box = panel.locator(".rt-chat-input")
        box.fill("Still here after Run All")
        box.press("Enter")
        answer = panel.locator('.rt-chat-bubble[data-role="assistant"]').filter(
            has_text="Still here after Run All"
        )
        expect(answer).to_have_attribute("data-status", "completed")
        panel.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "chat-tutorial-run-all.png"))
        # Exports went to exports/ (another test's own chat.ipynb may live in the root).
        assert _stat(lab.root / "chat.ipynb") == before
        assert (lab.root / "exports" / "chat.ipynb").exists()
    finally:
        context.close()


def _stat(path):
    """What a file is now (``None``: absent), to tell whether something wrote it."""
    return (path.stat().st_mtime_ns, path.stat().st_size) if path.exists() else None
