"""The chat panel says why an answer failed or stopped short, as the user sees it: the
entries the panel's page holds (label, text, footer line), for a local model with a wrong
name, a model stream cut mid-answer, and a server whose responder breaks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from rt_notebook.client.session import Session
from rt_notebook.frontends.chat import ChatPanel
from tests.chat_standin import MODEL, ChatStandIn, Reply
from tests.timing import wait_until, within


@pytest.fixture(scope="module")
def standin() -> Iterator[ChatStandIn]:
    with ChatStandIn() as server:
        yield server


def _text(node: object) -> str:
    """A Markdown tree's text, as the page's text nodes hold it."""
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return " ".join(_text(child) for child in node[1:] if not isinstance(child, dict))
    return ""


def shown(panel: ChatPanel) -> list[str]:
    """Each bubble as the page draws it: label, text and footer line (the panel's copy of
    the page's list, which every op the page receives keeps equal to it)."""
    doc = panel._doc
    entries = [doc.entries[key] for key in doc.order]
    shown = []
    for entry in entries:
        meta = entry["meta"]
        body = " ".join(_text(block) for block in entry["blocks"])
        shown.append(" ".join([meta.get("label", ""), body, entry["tail"], meta.get("flag", "")]))
        shown[-1] += " " + meta.get("footer", "")
    return shown


@contextlib.contextmanager
def panel_on(session: Session) -> Iterator[ChatPanel]:
    panel = ChatPanel(session.connect())
    try:
        yield panel
    finally:
        panel.close()
        session.close()


def test_a_wrong_local_model_name_says_why_once(standin: ChatStandIn) -> None:
    with panel_on(Session(chat_base_url=standin.base_url, chat_model="no-such-model")) as panel:
        handle = panel.send("hello").result(within(10))
        assert handle is not None
        assert handle.wait(within(10)).status == "failed"
        why = "has no model 'no-such-model' or no /chat/completions (HTTP 404)"
        wait_until(lambda: any(why in text for text in shown(panel)), "the reason in the panel")
        assert sum(why in text for text in shown(panel)) == 1, shown(panel)  # said once
        assert "$0" not in " ".join(shown(panel))


def test_an_answer_cut_short_says_why_on_its_bubble(standin: ChatStandIn) -> None:
    standin.replies.append(Reply(text="one two three four five", drop_after=3))
    with panel_on(Session(chat_base_url=standin.base_url, chat_model=MODEL)) as panel:
        handle = panel.send("count").result(within(10))
        assert handle is not None
        result = handle.wait(within(10))
        assert result.status == "failed"
        assert result.reason
        flagged = f"failed ({result.reason})"

        def answer() -> str:
            return next((t for t in shown(panel) if "Assistant" in t), "")

        wait_until(lambda: flagged in answer(), "the reason on the answer's bubble")


class _Broken:
    """A responder with a bug: the server fails the response without an ``error`` event."""

    name = "broken"

    def respond(self, request: object) -> list[object]:
        raise RuntimeError("the responder tripped over a cable")


def test_a_failed_answer_with_no_error_event_still_says_why() -> None:
    from rt_notebook.server import EmbeddedServer

    with EmbeddedServer(responder=_Broken(), pace=0.0) as server:  # type: ignore[arg-type]
        session = Session(
            websocket_base_url=server.websocket_base_url, api_key=server.token, name="broken"
        )
        with panel_on(session) as panel:
            handle = panel.send("hello").result(within(10))
            assert handle is not None
            assert handle.wait(within(10)).status == "failed"
            why = "the answer failed: RuntimeError('the responder tripped over a cable')"
            wait_until(lambda: any(why in t for t in shown(panel)), "the reason in the panel")
