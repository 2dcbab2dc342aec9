"""``make lab`` on a machine without a browser: the URL it prints opens the quickstart.

The README's first command, run as written (``make lab``) with ``--no-browser`` and a free
port added through ``LAB_ARGS``, from a root holding a copy of the quickstart (the
repository's own notebook stays untouched). Its output is read as a user reads it: one
http URL, whose path is the quickstart's; then headless Chromium opens that URL and the
quickstart is the notebook JupyterLab shows.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import _free_port, _lab_environment
from tests.browser.lab_page import TIMEOUT, expect, page_timeout_ms
from tests.timing import within

pytestmark = [pytest.mark.browser, TIMEOUT]

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "notebooks" / "quickstart.ipynb"
URL = re.compile(r"https?://\S+")


class MakeLab:
    """``make lab`` in its own process group, its output read line by line on a thread."""

    def __init__(self, root: Path, home: Path, port: int) -> None:
        venv = Path(sys.executable).parent.parent
        command = [
            "make",
            "--no-print-directory",
            "-o",  # the venv the tests run in has JupyterLab: install nothing
            f"{venv}/.installed-lab",
            "lab",
            f"VENV={venv}",
            f"NOTEBOOKS={root}",
            f"LAB_ARGS=--no-browser --port={port} --ServerApp.port_retries=0",
        ]
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            env=_lab_environment(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own group: stopping it stops JupyterLab too
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.printed: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:  # closed at the end of the output
            for line in self.process.stdout:
                self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def read_until(self, marker: str) -> list[str]:
        """Every line printed up to and including the first that contains ``marker``."""
        while True:
            try:
                line = self.lines.get(timeout=within(90))
            except queue.Empty:
                raise AssertionError(f"make lab printed no {marker!r}:\n{self.printed}") from None
            if line is None:
                raise AssertionError("make lab ended:\n" + "\n".join(self.printed))
            self.printed.append(line)
            if marker in line:
                return list(self.printed)

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)  # the group this test started
        try:
            self.process.wait(within(20))
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(within(10))
        self._reader.join(within(10))


@pytest.fixture
def make_lab(chromium_path: Path, tmp_path: Path) -> Iterator[MakeLab]:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(QUICKSTART, root / QUICKSTART.name)
    lab = MakeLab(root, tmp_path / "home", _free_port())
    try:
        yield lab
    finally:
        lab.stop()


def test_make_lab_prints_one_url_that_opens_the_quickstart(make_lab: MakeLab, browser) -> None:
    # The block JupyterLab prints for people once it serves ends with its URLs.
    printed = make_lab.read_until("Or copy and paste")
    printed += [make_lab.read_until("http")[-1]]
    assert printed[0].startswith("make lab: JupyterLab on ")  # the make target's own line
    urls = {match for line in printed for match in URL.findall(line)}
    assert len(urls) == 1, printed  # one URL, not localhost and 127.0.0.1 and a Launcher
    (url,) = urls
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    assert parts.path == "/lab/tree/quickstart.ipynb"
    assert urllib.parse.parse_qs(parts.query)["token"][0]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(page_timeout_ms())
        page.goto(url)
        wait = page_timeout_ms()
        # The current tab of the main area is the quickstart, a notebook, not a Launcher.
        current = page.locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-current")
        expect(current).to_have_text(re.compile(r"quickstart\.ipynb"), timeout=wait)
        expect(page.locator(".jp-NotebookPanel .jp-Cell").first).to_be_visible(timeout=wait)
        assert page.locator(".jp-Launcher:visible").count() == 0
    finally:
        context.close()
