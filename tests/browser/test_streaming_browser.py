"""A long answer streaming into a cell in JupyterLab: it reads as one piece while it grows
(finished blocks in their own outputs, the tail updated), and ends as one Markdown output.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from tests.browser.lab_page import RUN_ALL, TIMEOUT, expect, open_notebook

pytestmark = [pytest.mark.browser, TIMEOUT]

# Records, on every change, the cell's rendered Markdown outputs joined in order.
WATCH_CELL = """(index) => {
  window.__rt_states = [];
  window.__rt_most_outputs = 0;
  const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[index];
  const record = () => {
    const parts = [...cell.querySelectorAll('.jp-OutputArea .jp-RenderedMarkdown')];
    const text = parts.map((p) => p.innerText.trim()).filter((t) => t).join('\\n\\n');
    window.__rt_most_outputs = Math.max(window.__rt_most_outputs, parts.length);
    const states = window.__rt_states;
    if (text && states[states.length - 1] !== text) { states.push(text); }
  };
  new MutationObserver(record).observe(cell, {subtree: true, childList: true, characterData: true});
}"""

OUTPUTS = """(index) => window.jupyterapp.shell.currentWidget.content.model.cells.get(index)
  .sharedModel.toJSON().outputs"""


def words(text: str) -> list[str]:
    return re.findall(r"p\d+w\d+", text)


def test_a_long_answer_streams_in_blocks_and_ends_as_one_output(lab, browser, artifacts):
    text = "\n\n".join(" ".join(f"p{p}w{w}" for w in range(25)) for p in range(40))
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "%load_ext rt_notebook\nimport rt_notebook\n"
            "from rt_notebook.server import EmbeddedServer\n"
            "server = EmbeddedServer(pace=0.003).start()\n"
            "session = rt_notebook.connect(websocket_base_url=server.websocket_base_url,"
            " api_key=server.token)"
        ),
        nbformat.v4.new_code_cell(f"%%realtime\n{text}"),
    ]
    nbformat.write(notebook, lab.root / "long_answer.ipynb")
    context, page = open_notebook(lab, browser, "long_answer.ipynb")
    try:
        cells = page.locator(".jp-Notebook .jp-Cell")
        cells.nth(1).wait_for()
        page.evaluate(WATCH_CELL, 1)
        page.evaluate(RUN_ALL)
        expect(cells.nth(1).locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"))
        expect(cells.nth(1).locator(".jp-RenderedMarkdown").last).to_contain_text("completed")
        page.screenshot(path=str(artifacts / "long-answer.png"))
        expected = words(text)
        states = page.evaluate("() => window.__rt_states")
        # While it grows, the outputs read in order as a prefix of the answer (no gap, no
        # repeat), and there was more than one output at some point (blocks).
        # The one exception is the collapse: the whole answer is written into the first
        # output just before the block outputs below it are emptied (so the top of the
        # answer never changes); for a moment the blocks follow the whole answer.
        for state in states:
            shown = words(state)
            if shown[: len(expected)] == expected:
                continue  # the collapse
            assert shown == expected[: len(shown)], state[:300]
        assert len(states) > 3
        assert page.evaluate("() => window.__rt_most_outputs") > 1
        # At the end: one rendered Markdown output holds the whole answer, exactly once.
        rendered = cells.nth(1).locator(".jp-RenderedMarkdown")
        assert rendered.count() == 1
        assert words(rendered.inner_text()) == expected
        outputs = page.evaluate(OUTPUTS, 1)
        with_data = [o for o in outputs if o.get("data")]
        assert len(with_data) == 1, outputs
        assert with_data[0]["metadata"]["rt_notebook"]["status"] == "completed"
        assert (
            page.locator(".jp-Notebook .jp-OutputArea-output[data-mime-type*=error]").count() == 0
        )
    finally:
        context.close()
