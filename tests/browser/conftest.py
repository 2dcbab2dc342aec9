"""Browser fixtures: one JupyterLab server for the whole run, headless Chromium per module.

JupyterLab runs from this virtualenv on 127.0.0.1 (a free port, a random token, a temporary
root with the test notebook, settings and runtime directories of its own, no OpenAI or
Azure credentials in its environment, so the kernel talks to the embedded offline server).
Its start costs most of a minute on a busy machine, so every test file shares it (the
``lab`` fixture, session-scoped); each file still starts from a clean server: when a test
file ends, every kernel and notebook session it started is shut down (``_fresh_kernels``),
so no kernel, widget model or Session of one file is seen by (or slows) the next, and a
notebook name a later file writes again opens with a fresh kernel. Chromium is Debian's
``/usr/bin/chromium`` driven by Playwright's sync API.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.lab_page import CHROMIUM_ARGS, page_timeout_ms
from tests.timing import within

# Every expect() waits as long as a page action may (30 s on an idle machine, scaled by
# RT_TEST_TIME_SCALE), not Playwright's fixed 5 s: a state the test waits for arrives later
# on a busy machine, never differently.
expect.set_options(timeout=page_timeout_ms(30))

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

# Settings that keep the UI quiet and predictable: no news or update toasts, every cell in
# the DOM (no windowing), no autoclosing brackets when the tests type.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab server."""

    url: str  # http://127.0.0.1:PORT
    token: str
    root: Path

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_serving(lab: Lab, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + within(90)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            status = f"{lab.url}/api/status?token={lab.token}"
            with urllib.request.urlopen(status, timeout=2) as reply:
                if reply.status == 200:
                    return
        time.sleep(0.2)
    raise RuntimeError(f"JupyterLab did not start:\n{log.read_text()[-3000:]}")


def _lab_environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_OPENAI"))}
    for variable, folder in {
        "JUPYTER_CONFIG_DIR": "config",
        "JUPYTER_RUNTIME_DIR": "runtime",
        "JUPYTERLAB_SETTINGS_DIR": "settings",
        "JUPYTERLAB_WORKSPACES_DIR": "workspaces",
        "IPYTHONDIR": "ipython",
    }.items():
        (home / folder).mkdir(parents=True, exist_ok=True)
        env[variable] = str(home / folder)
    for name, values in LAB_SETTINGS.items():
        plugin, file = name.rsplit("/", 1)
        target = home / "settings" / plugin / file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    return env


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing on CI: install Debian's chromium package")
        pytest.skip(
            f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)"
        )
    return CHROMIUM


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def lab(chromium_path, tmp_path_factory) -> Iterator[Lab]:
    """JupyterLab on 127.0.0.1 with the notebooks from ``notebooks`` in its root."""
    home = tmp_path_factory.mktemp("lab")
    root = home / "root"
    root.mkdir()
    lab = Lab(url=f"http://127.0.0.1:{_free_port()}", token=secrets.token_hex(16), root=root)
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent))
    assert jupyter is not None, "jupyter is not installed next to this Python"
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
                "--JupyterNotebookApp.expose_app_in_browser=True",  # Notebook 7's window.jupyterapp
                "--LabApp.news_url=None",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                "--LabApp.extension_manager=readonly",
                *(["--allow-root"] if os.geteuid() == 0 else []),  # CI containers run as root
            ],
            env=_lab_environment(home),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_serving(lab, process, log)
        _running.append(lab)
        yield lab
    finally:
        _running.clear()
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _api(lab: Lab, path: str, method: str = "GET") -> object:
    """One call to the Jupyter server's REST API (JSON reply, or ``None``)."""
    request = urllib.request.Request(
        f"{lab.url}/api/{path}", headers={"Authorization": f"token {lab.token}"}, method=method
    )
    with urllib.request.urlopen(request, timeout=within(30)) as reply:
        body = reply.read()
    return json.loads(body) if body else None


def _kernel_ids(lab: Lab) -> set[str]:
    kernels = _api(lab, "kernels")
    assert isinstance(kernels, list)
    return {kernel["id"] for kernel in kernels}


def shut_down_kernels_since(lab: Lab, before: set[str]) -> list[str]:
    """Shut down every kernel (and its notebook session) not in ``before``; their ids."""
    new = _kernel_ids(lab) - before
    sessions = _api(lab, "sessions")
    assert isinstance(sessions, list)
    for session in sessions:
        if session["kernel"]["id"] in new:
            with contextlib.suppress(urllib.error.HTTPError):  # ended meanwhile
                _api(lab, f"sessions/{session['id']}", "DELETE")
    for kernel_id in new & _kernel_ids(lab):  # kernels no notebook session holds
        with contextlib.suppress(urllib.error.HTTPError):
            _api(lab, f"kernels/{kernel_id}", "DELETE")
    return sorted(new)


_running: list[Lab] = []  # the session's JupyterLab, once started


@pytest.fixture(scope="module", autouse=True)
def _fresh_kernels() -> Iterator[None]:
    """Per-file isolation on the shared server: the kernels a test file started end with it."""
    before = _kernel_ids(_running[0]) if _running else set()
    yield
    if _running:
        shut_down_kernels_since(_running[0], before)


@pytest.fixture(scope="module")
def browser(chromium_path):
    """Chromium for one module: Playwright's sync API keeps an asyncio loop running on
    this thread while it is open, which would break ``asyncio.run`` in later tests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
