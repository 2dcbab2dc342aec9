"""Shared fixtures: the embedded offline server on 127.0.0.1, Sessions connected to it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.timing import SCALE, within


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """pytest-timeout's per-test limit (pyproject's ``timeout``) follows ``RT_TEST_TIME_SCALE``
    too, unless ``--timeout`` or ``PYTEST_TIMEOUT`` sets it explicitly."""
    explicit = config.getoption("timeout", None) is not None or "PYTEST_TIMEOUT" in os.environ
    if SCALE != 1 and not explicit and config.getini("timeout"):
        config.option.timeout = within(float(config.getini("timeout")))


@pytest.fixture(autouse=True, scope="session")
def _no_real_credentials():
    """Tests never talk to the real service unless marked live."""
    prefixes = ("AZURE_OPENAI", "RT_NOTEBOOK_CHAT_")  # a local model set for the notebooks
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith(prefixes)}
    yield
    os.environ.update(saved)


TUTORIALS = Path(__file__).resolve().parent.parent / "notebooks"


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(autouse=True, scope="session")
def _tutorials_left_as_they_were():
    """No test writes into ``notebooks/`` (tests run the tutorials from copies, in folders
    of their own): every file there has the same bytes after the run, and none is new."""
    before = _folder_bytes(TUTORIALS)
    yield
    after = _folder_bytes(TUTORIALS)
    changed = sorted(n for n in before.keys() | after.keys() if before.get(n) != after.get(n))
    assert not changed, f"the tests changed or added files in notebooks/: {changed}"


@pytest.fixture(scope="session")
def offline_server():
    """One embedded server (pace 0: fast) for the whole run."""
    from rt_notebook.server import EmbeddedServer

    with EmbeddedServer(pace=0.0) as server:
        yield server


@pytest.fixture(scope="session")
def beta_server():
    """An embedded server started for the beta dialect (a default one refuses beta clients,
    as OpenAI's service does)."""
    from rt_notebook.server import EmbeddedServer

    with EmbeddedServer(pace=0.0, dialect="beta") as server:
        yield server


@pytest.fixture(scope="session")
def paced_server():
    """An embedded server that streams slowly enough to cancel mid-answer."""
    from rt_notebook.server import EmbeddedServer

    with EmbeddedServer(pace=0.02) as server:
        yield server


@pytest.fixture
def make_session():
    """Connect Sessions to an embedded server; closes them after the test."""
    from rt_notebook.client.session import Session

    sessions = []

    def make(server, **options):
        session = Session(
            base_url=server.base_url,
            websocket_base_url=server.websocket_base_url,
            api_key=server.token,
            **options,
        )
        sessions.append(session)
        return session.connect()

    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def session(offline_server, make_session):
    return make_session(offline_server)
