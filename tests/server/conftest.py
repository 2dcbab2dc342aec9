"""Fixtures for the embedded server's tests: servers on 127.0.0.1 and strict event checks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rt_notebook.server import EmbeddedServer


@pytest.fixture(scope="module")
def fast_server() -> Iterator[EmbeddedServer]:
    """An echo server that streams without pauses (pace 0), one per module; started for
    ``auto`` (GA, beta for beta clients) because tests of both dialects share it."""
    with EmbeddedServer(pace=0, dialect="auto") as server:
        yield server


@pytest.fixture(scope="module")
def slow_server() -> Iterator[EmbeddedServer]:
    """An echo server pausing 50 ms between deltas, so a cancel can land mid-stream.

    Tests only count events; the pace just leaves room for the client's next frame.
    Started for ``auto``: tests of both dialects share it.
    """
    with EmbeddedServer(pace=0.05, dialect="auto") as server:
        yield server
