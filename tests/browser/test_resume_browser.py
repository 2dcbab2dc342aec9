"""``%realtime resume`` in a real JupyterLab page: the notebook JupyterLab saved (outputs and
their metadata as it keeps them) is found from the kernel's session path, with no file
named, and its conversation comes back in a fresh Session."""

from __future__ import annotations

import json

import pytest

from tests.browser.lab_page import TIMEOUT, open_notebook, run_cell, run_cell_when_idle, save

pytestmark = [pytest.mark.browser, TIMEOUT]

NOTEBOOK = "resume_lab.ipynb"
CELLS = [
    "%load_ext rt_notebook",
    "%%realtime\nRemember: the key is under the mat.",
    "%%realtime\nWhere is the key?",
    "%realtime reset",  # a fresh, empty conversation (as after a kernel restart)
    "%realtime resume",
    "import rt_notebook\nprint([item.text for item in rt_notebook.connect().items])",
]


def test_resume_finds_the_saved_notebook_and_restores_it(lab, browser):
    context, page = open_notebook(lab, browser, NOTEBOOK, CELLS)
    try:
        run_cell_when_idle(page, 0)
        assert "Echo: Remember: the key is under the mat." in run_cell(page, 1)
        assert "Echo: Where is the key?" in run_cell(page, 2)
        save(page)
        saved = json.loads((lab.root / NOTEBOOK).read_text(encoding="utf-8"))
        metadata = saved["cells"][1]["outputs"][-1]["metadata"]["rt_notebook"]
        assert [item["type"] for item in metadata["turn"]["items"]] == ["message", "message"]
        run_cell(page, 3)
        report = run_cell(page, 4)
        assert f"Resumed 4 items from {NOTEBOOK}; 0 skipped." in report
        shown = run_cell(page, 5)
        assert (
            "['Remember: the key is under the mat.', 'Echo: Remember: the key is under the "
            "mat.', 'Where is the key?', 'Echo: Where is the key?']"
        ) in shown
    finally:
        context.close()
