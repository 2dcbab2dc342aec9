"""Offline, in a real kernel: the first cell gets a small note (not a stderr box), and each
answer's footer names the offline server rather than a model that did not answer."""

from __future__ import annotations

import pytest

from .harness import Kernel

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def kernel():
    kernel = Kernel()
    yield kernel
    kernel.shutdown()


def test_offline_note_and_footer(kernel):
    assert kernel.execute("%load_ext rt_notebook").status == "ok"
    first = kernel.execute("%%realtime\nHello offline")
    assert first.status == "ok", first.error_text()
    assert first.stream_text("stderr") == ""  # no pink box
    notes = [
        m["content"]["data"].get("text/markdown", "")
        for m in first.of_type("display_data")
        if "OPENAI_API_KEY" in m["content"]["data"].get("text/markdown", "")
    ]
    assert len(notes) == 1
    assert "embedded" in notes[0] or "offline" in notes[0]
    footer = first.final_markdown().rsplit("\n\n", 1)[-1]
    assert "offline server (echo)" in footer
    assert "gpt-realtime" not in footer
    second = kernel.execute("%%realtime\nAgain")
    assert second.status == "ok", second.error_text()
    assert not any(
        "OPENAI_API_KEY" in m["content"]["data"].get("text/markdown", "")
        for m in second.of_type("display_data")
    )  # said once per kernel
