"""Render benchmark in Chromium: a huge, markup-dense answer streamed into JupyterLab at full speed.

Two answers echoed by the embedded server as fast as it can (pace 0): 400 KB of code- and
link-heavy lines (list items with a link and inline code, a fenced code block every 20
lines) and a 40,000-line (1.6 MB) one of the same kind. While each streams, and for 15 s
after the saved notebook is reopened in a new page, the benchmark times trivial script
evaluations (``page.evaluate("() => 1")``) one after another: the longest round trip is
how long the page stayed frozen (goal: ≤ 1 s, throughout). It also reports what the page
drew: sealed Markdown blocks while streaming, and whether the final output is the bounded
HTML (``text/html`` drawn, the exact answer kept in ``text/markdown`` and ``text/plain``).

The same answers are then sent from a chat panel (``panel.send``), which is closed when
the answer is done (its output becomes the static transcript, with a bounded
``text/html`` past the limit): the longest evaluation while the panel streams, the
Markdown blocks its bubble drew, whether its "show all" fold holds the rest, and the
longest evaluation reopening the saved notebook.

``python benchmarks/render_browser.py [--quick] [--panel]`` (``--quick``: the 400 KB answer
only; ``--panel``: the chat panel's cases only).
Needs Chromium at /usr/bin/chromium and Playwright.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _goals import goal

from tests.browser.conftest import CHROMIUM, Lab, _free_port, _lab_environment, _wait_until_serving
from tests.browser.lab_page import CHROMIUM_ARGS, goto_notebook, run_cell, save, write_notebook

FREEZE_GOAL_S = 1.0
REOPEN_WATCH_S = 15.0

SETUP = (
    "%load_ext rt_notebook\nimport rt_notebook\n"
    "from rt_notebook.server import EmbeddedServer\n"
    "server = EmbeddedServer(pace=0.0).start()\n"
    "session = rt_notebook.connect(websocket_base_url=server.websocket_base_url,"
    " api_key=server.token)\n"
    "question = open('answer.txt', encoding='utf-8').read()"
)
OUTPUT_KINDS = """() => {
  const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[2];
  const output = cell.querySelector('.jp-OutputArea-output');
  return output ? output.getAttribute('data-mime-type') : null;
}"""


def dense(size: int) -> str:
    """About ``size`` bytes of code- and link-heavy Markdown: lists of items with links and
    inline code, a paragraph break every 10 lines and a fenced code block every 20."""
    out: list[str] = []
    length, i = 0, 0
    while length < size:
        if i % 20 == 0:
            lines = ["", "```python"]
            lines += [f"result_{i}_{j} = compute({j}, key='k{j}')" for j in range(5)]
            lines += ["```", ""]
        elif i % 10 == 0:
            lines = ["", f"See [section {i}](https://example.org/s/{i}) and `mod_{i}.run()`:", ""]
        else:
            lines = [f"- [link {i}](https://example.org/p/{i}) calls `fn_{i}(x)` **{i}**"]
        out += lines
        length += sum(len(line) + 1 for line in lines)
        i += 1
    return "\n".join(out)


def round_trips(page, until) -> list[float]:
    """Time trivial evaluations back to back until ``until()``; return each round trip."""
    times = []
    while not until():
        start = time.perf_counter()
        page.evaluate("() => 1")
        times.append(time.perf_counter() - start)
    return times


PANEL_CELLS = [
    SETUP,
    "%%realtime\nwarm up",
    "panel = rt_notebook.ChatPanel(session)\npanel",
    "_ = panel.send(question).result(600).wait(600)",
    "panel.close()",
]
PANEL_FINISHED = """(index) => /\\[\\d+\\]/.test(
  document.querySelectorAll('.jp-Notebook .jp-Cell')[index].querySelector('.jp-InputPrompt')
    .innerText)"""
PANEL_STATE = """() => {
  const bubbles = document.querySelectorAll('.rt-chat-assistant');
  const last = bubbles[bubbles.length - 1];
  if (!last) return {answers: 0, done: false, blocks: 0, folded: false};
  const body = last.querySelector('.rt-chat-body');
  const fold = last.querySelector('.rt-chat-fold');
  return {
    answers: bubbles.length,
    done: last.dataset.status === 'completed',
    blocks: body ? body.children.length : 0,
    folded: Boolean(fold && !fold.hidden),
  };
}"""


def baseline_reopen(browser, lab: Lab) -> float:
    """The longest evaluation while JupyterLab opens a notebook with no outputs: what the
    page costs by itself (the reopening figures include it)."""
    write_notebook(lab.root, "baseline.ipynb", [SETUP])
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(600_000)
    try:
        start = time.monotonic()
        page.goto(lab.notebook_url("baseline.ipynb"))
        return max(round_trips(page, lambda: time.monotonic() - start > REOPEN_WATCH_S))
    finally:
        context.close()


def measure_panel(browser, lab: Lab, name: str, text: str) -> dict:
    """The answer sent from a chat panel: evaluations while it streams, then reopened."""
    (lab.root / "answer.txt").write_text(text, encoding="utf-8")
    write_notebook(lab.root, name, PANEL_CELLS)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(600_000)
    try:
        goto_notebook(page, lab.notebook_url(name))
        run_cell(page, 0)
        run_cell(page, 1)
        run_cell(page, 2)
        page.wait_for_selector(".rt-chat-view")
        run_cell(page, 3, wait=False)
        seen = {"blocks": 0, "folded": False}

        def shown() -> bool:
            # Until the page shows the huge answer (the panel's second) complete.
            state = page.evaluate(PANEL_STATE)
            seen["blocks"] = max(seen["blocks"], state["blocks"])
            seen["folded"] = seen["folded"] or state["folded"]
            return state["answers"] >= 2 and state["done"]

        streaming = round_trips(page, shown)
        streaming += round_trips(page, lambda: bool(page.evaluate(PANEL_FINISHED, 3)))
        run_cell(page, 4, wait=False)  # close: the output becomes the static transcript
        streaming += round_trips(page, lambda: bool(page.evaluate(PANEL_FINISHED, 4)))
        save(page)
    finally:
        context.close()
    saved = json.loads((lab.root / name).read_text(encoding="utf-8"))
    kinds = sorted(saved["cells"][2]["outputs"][-1]["data"])
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(600_000)
    try:
        start = time.monotonic()
        page.goto(lab.notebook_url(name))
        reopened = round_trips(page, lambda: time.monotonic() - start > REOPEN_WATCH_S)
    finally:
        context.close()
    return {
        "streaming_max": max(streaming),
        "reopen_max": max(reopened),
        "blocks": seen["blocks"],
        "folded": seen["folded"],
        "kinds": kinds,
    }


def measure(browser, lab: Lab, name: str, text: str) -> dict:
    (lab.root / "answer.txt").write_text(text, encoding="utf-8")
    write_notebook(lab.root, name, [SETUP, "%%realtime\nwarm up", "%%realtime\n{question}"])
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(600_000)
    try:
        goto_notebook(page, lab.notebook_url(name))
        run_cell(page, 0)
        run_cell(page, 1)
        page.wait_for_function("() => document.documentElement.dataset.rtStream === '1'")
        page.evaluate("() => { window.__rt_most_blocks = 0; }")
        run_cell(page, 2, wait=False)
        prompt = "document.querySelectorAll('.jp-Notebook .jp-Cell')[2]"
        finished = f"() => /\\[\\d+\\]/.test({prompt}.querySelector('.jp-InputPrompt').innerText)"
        blocks = f"() => {prompt}.querySelectorAll('.rt-stream-block').length"
        most = [0]

        def done() -> bool:
            most[0] = max(most[0], page.evaluate(blocks))
            return bool(page.evaluate(finished))

        streaming = round_trips(page, done)
        drawn = page.evaluate(OUTPUT_KINDS)
        save(page)
    finally:
        context.close()
    saved = json.loads((lab.root / name).read_text(encoding="utf-8"))
    data = saved["cells"][2]["outputs"][-1]["data"]
    exact = "".join(data["text/plain"]) == f"Echo:\n\n{text}"
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(600_000)
    try:
        start = time.monotonic()
        page.goto(lab.notebook_url(name))
        reopened = round_trips(page, lambda: time.monotonic() - start > REOPEN_WATCH_S)
    finally:
        context.close()
    return {
        "streaming_max": max(streaming),
        "reopen_max": max(reopened),
        "blocks": most[0],
        "drawn": drawn,
        "kinds": sorted(data),
        "exact": exact,
    }


def main() -> None:
    quick = "--quick" in sys.argv
    panel_only = "--panel" in sys.argv
    cases = [("400 KB of code and links", dense(400_000))]
    if not quick:
        cases.append(("1.6 MB of code and links", dense(1_600_000)))
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="rt-bench-lab-"))
    root = home / "root"
    root.mkdir()
    lab = Lab(url=f"http://127.0.0.1:{_free_port()}", token="bench" + str(_free_port()), root=root)
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent))
    assert jupyter is not None
    log = home / "lab.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                jupyter,
                "lab",
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={lab.url.rsplit(':', 1)[1]}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={lab.token}",
                f"--ServerApp.root_dir={root}",
                "--LabApp.expose_app_in_browser=True",
                "--LabApp.news_url=None",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                *(["--allow-root"] if os.geteuid() == 0 else []),
            ],
            env=_lab_environment(home),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_serving(lab, process, log)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            print("render in Chromium: a huge answer streamed at full speed into JupyterLab")
            print(
                f"  JupyterLab by itself: longest evaluation {baseline_reopen(browser, lab):.2f} s"
                " opening a notebook without outputs"
            )
            for index, (title, text) in enumerate([] if panel_only else cases):
                result = measure(browser, lab, f"huge{index}.ipynb", text)
                print(
                    f"  {title} ({len(text.encode()) / 1e6:.2f} MB): longest evaluation"
                    f" {result['streaming_max']:.2f} s while streaming,"
                    f" {result['reopen_max']:.2f} s reopening; {result['blocks']} Markdown"
                    f" blocks while streaming; final output drawn as {result['drawn']}"
                    f" (saved: {', '.join(result['kinds'])}); exact text: {result['exact']}"
                )
                what = f"longest page evaluation, {title}"
                goal(
                    "3",
                    f"{what}, streaming",
                    result["streaming_max"],
                    None,
                    FREEZE_GOAL_S,
                    at_most=True,
                    unit=" s",
                )
                goal(
                    "3",
                    f"{what}, reopening",
                    result["reopen_max"],
                    None,
                    FREEZE_GOAL_S,
                    at_most=True,
                    unit=" s",
                )
                goal(
                    "3",
                    f"final text exact, {title}",
                    float(result["exact"]),
                    None,
                    1,
                    at_most=False,
                )
            print("render in Chromium: the same answers sent from a chat panel")
            for index, (title, text) in enumerate(cases):
                result = measure_panel(browser, lab, f"panel{index}.ipynb", text)
                print(
                    f"  {title} in the panel: longest evaluation"
                    f" {result['streaming_max']:.2f} s while streaming,"
                    f" {result['reopen_max']:.2f} s reopening; {result['blocks']} nodes in the"
                    f" answer's bubble; rest folded behind show all: {result['folded']}"
                    f" (saved after close: {', '.join(result['kinds'])})"
                )
                what = f"longest page evaluation, panel, {title}"
                for when, key in (("streaming", "streaming_max"), ("reopening", "reopen_max")):
                    goal(
                        "3",
                        f"{what}, {when}",
                        result[key],
                        None,
                        FREEZE_GOAL_S,
                        at_most=True,
                        unit=" s",
                    )
            browser.close()
    finally:
        process.terminate()
        process.wait(20)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
