"""The inspector in a real kernel: per-turn events, folded deltas, footer cost, status totals."""

from __future__ import annotations

import json

import pytest

from tests.timing import SCALE, within

from .harness import Kernel
from .page import page_ready

pytestmark = pytest.mark.kernel

SETUP = """
%load_ext rt_notebook
import json, threading, tempfile, os
import rt_notebook
from rt_notebook.server import EmbeddedServer
server = EmbeddedServer(pace=0.002)
server.start()
session = rt_notebook.connect(
    base_url=server.base_url, websocket_base_url=server.websocket_base_url, api_key=server.token
)
record_path = os.path.join(tempfile.mkdtemp(), "rec.jsonl")
"""

# From the recording alone (by ids, not by the recorded turn), the events of one turn, with
# deltas folded per type as the timeline folds them.
EXPECTED = """
def expected_for(tag, response_id, item_ids):
    item_ids, event_ids, out = set(item_ids), set(), []
    folded = {}
    for line in open(record_path):
        record = json.loads(line)
        event, direction = record["data"], record["direction"]
        kind = event["type"]
        item = event.get("item") or {}
        response = event.get("response") or {}
        if direction == "sent":
            mine = item.get("id") in item_ids or (
                (response.get("metadata") or {}).get("rt_notebook_request") == tag
            ) or event.get("response_id") == response_id
            if mine:
                event_ids.add(event.get("event_id"))
        else:
            rid = event.get("response_id") or response.get("id")
            if kind == "response.output_item.added" and rid == response_id:
                item_ids.add(item.get("id"))
            mine = rid == response_id or item.get("id") in item_ids or (
                event.get("item_id") in item_ids and kind.startswith("conversation.")
            ) or (kind == "error" and (event.get("error") or {}).get("event_id") in event_ids)
        if not mine:
            continue
        if kind.endswith(".delta"):
            if (direction, kind) in folded:
                folded[(direction, kind)][2] += 1
                continue
            folded[(direction, kind)] = [direction, kind, 1]
            out.append(folded[(direction, kind)])
        else:
            out.append([direction, kind, 1])
    return [tuple(entry) for entry in out]
"""


@pytest.fixture(scope="module")
def kernel():
    kernel = Kernel()
    setup = kernel.execute(SETUP + EXPECTED)
    assert setup.status == "ok", setup.error_text()
    yield kernel
    kernel.shutdown()


def test_a_cells_inspector_lists_exactly_its_events_with_others_interleaved(kernel):
    assert kernel.execute("%realtime record {record_path}").status == "ok"
    background = kernel.execute(
        "%%realtime --background --out bg\nTell a long story about background threads "
        + "and more words " * 20
    )
    assert background.status == "ok", background.error_text()
    asked = kernel.execute(
        "asked = []\n"
        "thread = threading.Thread(target=lambda: asked.append(session.ask('from a thread')))\n"
        "thread.start(); thread.join()"
    )
    assert asked.status == "ok", asked.error_text()
    fg = kernel.execute("%%realtime --out fg\nforeground question " + "word " * 30)
    assert fg.status == "ok", fg.error_text()
    footer = fg.final_markdown()
    assert "total " in footer
    assert "queued " in footer  # it waited behind the background cell and the ask()
    assert "$" not in footer  # a local backend, no prices given: no cost
    check = kernel.execute(
        f"asked[0].wait({within(30)}); bg.wait({within(30)})\n"
        "%realtime record --stop\n"
        "out = {}\n"
        "for name, response_id in (('fg', fg.id), ('bg', bg.wait().id), "
        "('ask', asked[0].wait().id)):\n"
        "    t = session.timeline(response_id)\n"
        "    out[name] = {\n"
        "        'actual': [(e.direction, e.type, e.count) for e in t.entries],\n"
        "        'expected': expected_for(t.key, response_id, t.item_ids[:1]),\n"
        "        'deltas': sum(e.count for e in t.entries if e.type.endswith('.delta')),\n"
        "    }\n"
        "print(json.dumps(out))"
    )
    assert check.status == "ok", check.error_text()
    out = json.loads(check.stream_text())
    for name in ("fg", "bg", "ask"):
        actual = [tuple(entry) for entry in out[name]["actual"]]
        expected = [tuple(entry) for entry in out[name]["expected"]]
        assert actual == expected, name
        assert actual[0][:2] == ("sent", "conversation.item.create")
        assert ("sent", "response.create", 1) in actual
        assert actual[-1][:2] == ("received", "response.done")
        assert out[name]["deltas"] > 1  # folded: several deltas, one entry
    # Folded: one entry per delta type, not one per delta.
    assert sum(1 for entry in out["fg"]["actual"] if entry[1].endswith(".delta")) == 1

    inspect = kernel.execute("%realtime inspect")
    assert inspect.status == "ok", inspect.error_text()
    shown = inspect.of_type("execute_result")[-1]["content"]["data"]["text/markdown"]
    assert f"x{out['fg']['deltas']}" in shown
    assert "response.created" in shown
    assert "```json" in shown
    token = kernel.execute("print(server.token)").stream_text().strip()
    assert token not in shown  # scrubbed

    by_id = kernel.execute("%realtime inspect {bg.wait().id}")
    assert by_id.status == "ok", by_id.error_text()
    assert (
        "Tell a long story"
        in by_id.of_type("execute_result")[-1]["content"]["data"]["text/markdown"]
    )
    unknown = kernel.execute("%realtime inspect resp_nothing")
    assert "no turn" in unknown.error_text()
    typo = kernel.execute("%realtime inspect a b")
    assert "usage: %realtime inspect" in typo.error_text()

    timeline = kernel.execute(
        "import subprocess, sys\n"
        "cli = subprocess.run([sys.executable, '-m', 'rt_notebook', 'transcript', record_path, "
        "'--timeline', fg.id], capture_output=True, text=True)\n"
        "print(cli.returncode); print(cli.stdout)"
    )
    printed = timeline.stream_text()
    assert printed.startswith("0\n"), printed
    assert f"x{out['fg']['deltas']}" in printed
    assert "response.done" in printed


PRICES = {
    "gpt-realtime-2.1": {
        "text_input": 4.0,
        "text_cached_input": 0.4,
        "text_output": 16.0,
        "audio_input": 32.0,
        "audio_cached_input": 0.4,
        "audio_output": 64.0,
        "image_input": 5.0,
        "image_cached_input": 0.5,
    }
}


def test_footer_cost_is_usage_times_the_table_and_absent_when_unpriced(kernel):
    set_prices = kernel.execute(f"%config RealtimeMagics.prices = {PRICES!r}")
    assert set_prices.status == "ok", set_prices.error_text()
    priced = kernel.execute("%%realtime --out priced\nwhat does this cost")
    assert priced.status == "ok", priced.error_text()
    expected = kernel.execute(
        "from rt_notebook.client import pricing\n"
        "from rt_notebook.render.inspector import format_cost\n"
        "print(priced.model, format_cost(pricing.cost(priced.usage, "
        f"{PRICES!r}['gpt-realtime-2.1'])))"
    ).stream_text()
    model, cost = expected.split()
    assert model == "gpt-realtime-2.1"  # the default model
    assert cost in priced.final_markdown()
    status = kernel.execute("%realtime status")
    shown = status.of_type("execute_result")[-1]["content"]["data"]["text/markdown"]
    assert "responses" in shown
    assert "tokens" in shown
    assert "$" in shown

    # Another model only: no guess.
    kernel.execute("%config RealtimeMagics.prices = {'other-model': {'text_input': 1.0}}")
    unpriced = kernel.execute("%%realtime\nand now")
    assert "$" not in unpriced.final_markdown()
    typo = kernel.execute("%config RealtimeMagics.prices = {'m': {'text_inptu': 1.0}}")
    assert "unknown price kind" in typo.shown_error() + typo.error_text()

    # The offline server is never priced, even with a table for its model.
    kernel.execute(f"%config RealtimeMagics.prices = {PRICES!r}")
    offline = kernel.execute(
        "off = rt_notebook.connect('off', offline=True)\nprint(off.endpoint.offline)"
    )
    assert offline.stream_text().strip() == "True", offline.error_text()
    answer = kernel.execute("%%realtime --session off\nfree?")
    assert answer.status == "ok", answer.error_text()
    assert "$" not in answer.final_markdown()
    kernel.execute("%config RealtimeMagics.prices = {}")


def test_inspect_live_grows_while_the_turn_runs(kernel):
    # A long answer first, so the inspected turn (the last one) is still queued when the
    # live view opens; it then streams and finishes under the view's eyes.
    words = round(2000 * SCALE)
    start = kernel.execute(
        f"first = session.ask('long ' * {words})\nsecond = session.ask('inspect me ' * 40)"
    )
    assert start.status == "ok", start.error_text()
    live = kernel.execute("%realtime inspect --live")
    assert live.status == "ok", live.error_text()
    shown = live.of_type("display_data")[-1]
    display_id = shown["content"]["transient"]["display_id"]
    assert "response.done" not in shown["content"]["data"]["text/markdown"]
    updates = []

    def final(message):
        if message["msg_type"] != "update_display_data":
            return False
        if message["content"].get("transient", {}).get("display_id") != display_id:
            return False
        updates.append(message["content"]["data"]["text/markdown"])
        return "response.done" in updates[-1] and "(done)" in updates[-1]

    kernel.wait_for_message(final, timeout=60)
    assert len(updates) >= 2
    assert "```json" in updates[-1]  # bodies once it is done
    counts = kernel.execute(
        "t = session.timeline(second.wait().id)\n"
        "print(sum(e.count for e in t.entries if e.type.endswith('.delta')))"
    )
    assert f"x{counts.stream_text().strip()}" in updates[-1]


def test_an_events_click_is_handled_while_the_blocking_cell_still_streams(kernel):
    """The front end's click on a footer link, sent as a comm message to the kernel's events
    hub, is answered before the cell it belongs to has finished (the hub's comm is served
    by rt_notebook's subshell, not by the blocked main shell)."""
    import queue
    import re

    hub = kernel.execute("from rt_notebook.widgets import events\nprint(events.hub().comm.comm_id)")
    assert hub.status == "ok", hub.error_text()
    comm_id = hub.stream_text().strip()
    page_ready(kernel)  # the answer streams to the page through its widget
    client = kernel.client
    msg_id = client.execute("%%realtime\n" + "stream " * 1500)
    order: list[str] = []
    key = ""
    while True:
        try:
            message = client.get_iopub_msg(timeout=within(60))
        except queue.Empty:
            raise AssertionError(f"kernel silent; seen {order}") from None
        kind, content = message["msg_type"], message["content"]
        if kind == "comm_msg" and content.get("comm_id") == comm_id:
            note = content["data"].get("content") or {}
            if note.get("event") == "note":
                order.append("note")
                assert f"%realtime inspect {key} --live" in note["text"]
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        data = content.get("data") or {}
        # The answer's widget carries its events link from the start: click it.
        # (its open, or a kept widget's update for this answer)
        state = json.dumps(data.get("state", {})) if kind in ("comm_open", "comm_msg") else ""
        link = re.search(r"#rt-events-[0-9a-f]+-(req_\w+)", state)
        if link and not key:
            key = link.group(1)
            click = client.session.msg(
                "comm_msg",
                {
                    "comm_id": comm_id,
                    "data": {
                        "method": "custom",
                        "content": {"event": "open", "key": key, "app": "kernel test"},
                    },
                },
            )
            client.shell_channel.send(click)
            order.append("click")
        if kind == "update_display_data" and "text/plain" in data:
            order.append("final")
        if kind == "status" and content["execution_state"] == "idle":
            break
    assert order[:3] == ["click", "note", "final"], order
    opened = kernel.execute("print(events.hub().opened)")
    assert opened.stream_text().strip() == repr([key])
