"""rt_notebook's errors on the page: a ``%%realtime`` cell whose server cannot be reached
shows one error line in its output, in JupyterLab (where "Run All" stops there) and in
Notebook 7."""

from __future__ import annotations

import pytest

from tests.browser.lab_page import (
    KERNEL_READY,
    RUN_ALL,
    TIMEOUT,
    cell,
    expect,
    open_notebook,
    open_notebook7,
    page_timeout_ms,
    run_cell_by_keyboard,
)

pytestmark = [pytest.mark.browser, TIMEOUT]

CELLS = [
    "%load_ext rt_notebook\n%config RealtimeMagics.url = 'ws://127.0.0.1:9/v1'",
    "%%realtime --session unreachable\nIs anyone there?",
    "print('this cell must not run')",
]
LINE = "RealtimeConnectionError: could not connect to ws://127.0.0.1:9/v1"
# How JupyterLab and Notebook 7 draw an error output (IOPub ``error``).
ERROR_OUTPUT = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'


def _shows_one_line(page) -> None:
    error = cell(page, 1).locator(ERROR_OUTPUT)
    expect(error).to_have_count(1, timeout=page_timeout_ms())
    expect(error).to_contain_text(LINE)
    text = error.inner_text().strip()
    assert "\n" not in text, text
    assert "Traceback" not in text
    assert "Is anyone there?" not in text  # the cell is not echoed


def test_run_all_in_jupyterlab_stops_at_the_error_and_shows_it(lab, browser) -> None:
    context, page = open_notebook(lab, browser, "cell-errors.ipynb", CELLS)
    try:
        page.wait_for_function(KERNEL_READY)
        page.evaluate(RUN_ALL)
        _shows_one_line(page)
        page.wait_for_function(KERNEL_READY)  # idle again: Run All is over
        expect(cell(page, 2).locator(".jp-OutputArea-output")).to_have_count(0)
    finally:
        context.close()


def test_notebook7_shows_the_error_in_the_cell(lab, browser) -> None:
    context, page = open_notebook7(lab, browser, "cell-errors-nb7.ipynb", CELLS)
    try:
        for index in (0, 1):
            run_cell_by_keyboard(page, index, timeout_ms=page_timeout_ms())
        _shows_one_line(page)
    finally:
        context.close()
