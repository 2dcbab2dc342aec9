"""Render benchmark: what an answer streamed into a cell costs on IOPub, and how late it is shown.

Every case streams one answer through a real IPython kernel (jupyter_client, the real
IOPub channel) from an embedded server paced at a given rate (the echo answer's deltas
are words), with a page "ready" as JupyterLab's is (so answers stream through their
widget, append only). For each case it prints, over every message the answer causes
(its display, its widget's open, messages and close, the final update; the kernel's hub
widgets are made once per kernel, before the first case, and not counted; an answer's
widget is kept for the next answer, and the warm-up answer before the cases opens it, so
each case pays a trait update and a reset instead of an open and a close):

- payload bytes (message content and buffers, as the kernel packs them: compact JSON, the
  bytes a front end receives) per byte of final text (goal ≤ 3.5);
- whole-message bytes (header, parent header, metadata too) per byte of final text;
- streaming messages per second of streaming (goal ≤ 5);
- display lag: for each delta, from its arrival in the kernel (a Session subscriber
  registered before the view's) to the widget message carrying it being handed to IOPub,
  median and 95th percentile (goal p95 ≤ 250 ms);
- whether the final text is exact.

Then the first-delta latency (over 100 answers, arrival to the first widget message,
median and p95 against 50 ms), and a burst of 100,000 deltas: every message the kernel
sent for it is received (none lost) and the final text is exact.

``python benchmarks/render.py [--quick]`` (``--quick``: 20 and 200 words/s and a burst,
smaller answers, for a smoke run).
"""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _goals import goal

from rt_notebook.server.responders import echo_reply
from tests.kernel.harness import Execution, Kernel
from tests.kernel.page import page_ready
from tests.kernel.test_render_kernel import answer_messages, payload, streaming, whole

PAYLOAD_GOAL = 3.5  # payload bytes per byte of final text
RATE_GOAL = 5  # streaming messages per second
LAG_GOAL_MS = 250  # display lag, 95th percentile
LATENCY_GOAL_MS = 50  # first delta shown
LATENCY_TRIALS = 100

SETUP = """
%load_ext rt_notebook
import json, time
import rt_notebook
from rt_notebook.protocol.conversation import ItemDelta
from rt_notebook.render import cell as _cell
from rt_notebook.server import EmbeddedServer
servers = {}
def session_at(rate):
    name = f"rate{rate}"
    if name not in servers:
        servers[name] = EmbeddedServer(pace=1 / rate if rate else 0.0).start()
    return rt_notebook.connect(
        name, websocket_base_url=servers[name].websocket_base_url, api_key=servers[name].token
    )
arrivals, sends, views = [], [], []
def on_changes(sess, changes):
    for change in changes:
        if isinstance(change, ItemDelta):
            arrivals.append((time.perf_counter(), len(sess.response_text(change.response_id))))
_publish = _cell.CellView._publish
def publish(self):
    sent = _publish(self)
    if sent:
        sends.append((time.perf_counter(), len(self._current_text())))
    return sent
_cell.CellView._publish = publish
_finish = _cell.CellView.finish
def finish(self):
    views.append(self)
    return _finish(self)
_cell.CellView.finish = finish
def lags():
    # Each delta waits until the first widget message whose text covers it.
    out, index = [], 0
    for arrived, length in arrivals:
        while index < len(sends) and (sends[index][1] < length or sends[index][0] < arrived):
            index += 1
        if index < len(sends):
            out.append((sends[index][0] - arrived) * 1000)
    return out
"""

ASK = """
arrivals.clear(); sends.clear(); views.clear()
_session = session_at({rate})
_unsubscribe = _session.subscribe(on_changes)
try:
    get_ipython().run_cell_magic("realtime", "--session rate{rate}", text)
finally:
    _unsubscribe()
print(json.dumps({{"lags": lags(), "sent": views[-1].updates, "deltas": len(arrivals)}}))
"""

LATENCY = """
import statistics
latencies = []
session = session_at(50)
for trial in range(TRIALS):
    arrivals.clear(); sends.clear()
    unsubscribe = session.subscribe(on_changes)
    try:
        cell = f"trial {trial} of the first delta"
        get_ipython().run_cell_magic("realtime", "--session rate50", cell)
    finally:
        unsubscribe()
    if arrivals and sends:
        latencies.append((sends[0][0] - arrivals[0][0]) * 1000)
latencies.sort()
print(json.dumps(latencies))
"""


# Why the slow cases cannot meet both goals (printed after the figures).
NOTE = """note: payload and lag pull against each other at slow rates. A delta waits at most
  one interval (CellView.interval, 210 ms) for the message carrying it; the view loop's pace
  counts it from the first delta a message carries, so words 50 ms apart (20 a second) go
  out every 250 ms and words 20 ms apart every 220 ms (lag p95 ~211 ms against 250 ms).
  Each message carries ~58 bytes of framing as the kernel packs it however little text it
  holds ({"data":{"method":"custom","content":"..."},"comm_id":"2c4"}: 54 bytes around an
  append sent as a bare string, and a 3-5 character model id): ~232 B/s at 20 words/s,
  ~264 B/s at 50. The text costs 1x while streaming and 1x in the final text/markdown
  (text/plain only names the answer once the page rendered it). Per answer: the display
  (~210 B), the kept widget's update for this answer (~115 B) and its reset (~60 B), the
  final update's footer, summary and provenance (~870 B): ~1.25 kB (the widget's open,
  ~730 B, is paid once per kernel). So 3.5x needs framing <= 1.5x minus the fixed share:
  - 2.9 kB answer (4.8 B a word) at 20 words/s: text 97 B/s, framing 2.4x + 2x + fixed
    0.42x = ~4.8x, and ~4.4x with no fixed cost at all;
  - at 50 words/s: 243 B/s, framing 1.07x + 2x + 0.42x + the sealed paragraphs' marks =
    ~3.55x;
  - 300-line code block (7.3 kB, ~8 B a word) at 20 words/s: 160 B/s, framing 1.45x + 2x
    + 0.17x + its newlines (2 bytes each in JSON, twice) = ~3.7x, ~3.5x with no fixed cost.
  Meeting 3.5x in those three takes a message every ~0.6 s for the first (lag p95 ~0.6 s)
  and every ~0.26-0.3 s for the other two (p95 ~250-290 ms): at or past the 250 ms lag
  goal. Even the smallest IOPub message (a stream message, ~30 bytes of framing) would
  leave the first above 3.5x."""


@dataclass
class Cost:
    text: int  # bytes of final text
    payload: int
    whole: int
    streaming: int  # widget messages while streaming
    seconds: float  # from the first to the last streaming message
    lags: list[float]
    exact: bool
    sent: int  # messages the kernel's view sent (display, widget, final)
    received: int  # of those, received by the client


def two_point_nine_kb(scale: int) -> str:
    """~2.9 KB of prose in paragraphs of 60 words."""
    words = [f"w{i}" for i in range(620 // scale)]
    return "\n\n".join(" ".join(words[i : i + 60]) for i in range(0, len(words), 60))


def one_paragraph(size: int) -> str:
    words, length = [], 0
    while length < size:
        words.append(f"word{len(words)}")
        length += len(words[-1]) + 1
    return " ".join(words)


def code_block(lines: int) -> str:
    return "```python\n" + "\n".join(f"value_{i} = compute({i})" for i in range(lines)) + "\n```"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def measure(kernel: Kernel, text: str, rate: int) -> Cost:
    kernel.execute(f"text = {text!r}\nsession_at({rate})")  # connected before it streams
    run = kernel.execute(ASK.format(rate=rate), timeout=3600)
    assert run.status == "ok", run.error_text()
    report = json.loads(run.stream_text().strip().splitlines()[-1])
    answer = echo_reply(text)
    messages = answer_messages(Execution(reply={}, messages=run.messages))
    streamed = streaming(messages)
    dates = [m["header"]["date"] for m in streamed]
    seconds = (max(dates) - min(dates)).total_seconds() if len(dates) > 1 else 0.0
    final = [m for m in messages if m["msg_type"] == "update_display_data"][-1]["content"]
    # The answer is the final text/markdown (its text/plain is a summary of it).
    exact = final["data"].get("text/markdown", "").startswith(answer + "\n\n*")
    # The view sends displays and the widget's custom messages (edits, the final reset);
    # a kept widget's trait update, its open and close are the widget's.
    counted = [
        m
        for m in messages
        if m["msg_type"] in ("display_data", "update_display_data")
        or m["content"].get("data", {}).get("method") == "custom"
    ]
    return Cost(
        text=len(answer.encode()),
        payload=sum(payload(m) for m in messages),
        whole=sum(whole(m) for m in messages),
        streaming=len(streamed),
        seconds=seconds,
        lags=report["lags"],
        exact=exact,
        sent=report["sent"],
        received=len(counted),
    )


def report(name: str, cost: Cost) -> bool:
    ratio = cost.payload / cost.text
    # Messages per second: the intervals between them over the time they span.
    rate = (cost.streaming - 1) / cost.seconds if cost.seconds else 0.0
    p50 = statistics.median(cost.lags) if cost.lags else 0.0
    p95 = percentile(cost.lags, 0.95) if cost.lags else 0.0
    print(
        f"  {name}: {cost.text / 1000:.1f} kB, {cost.streaming} streaming messages over"
        f" {cost.seconds:.1f} s; payload {ratio:.2f}x, whole {cost.whole / cost.text:.2f}x;"
        f" lag median {p50:.0f} ms p95 {p95:.0f} ms; exact {cost.exact}"
    )
    results = [
        goal("1", f"payload bytes / text, {name}", ratio, None, PAYLOAD_GOAL, at_most=True),
        goal("1", f"streaming messages / s, {name}", rate, None, RATE_GOAL, at_most=True),
        goal("1", f"display lag p95, {name}", p95, None, LAG_GOAL_MS, at_most=True, unit=" ms"),
        goal("1", f"final text exact, {name}", float(cost.exact), None, 1, at_most=False),
    ]
    return all(results)


def latency(kernel: Kernel, trials: int) -> list[float]:
    run = kernel.execute(f"TRIALS = {trials}\n{LATENCY}", timeout=600)
    assert run.status == "ok", run.error_text()
    return json.loads(run.stream_text().strip().splitlines()[-1])


def main() -> None:
    quick = "--quick" in sys.argv
    scale = 4 if quick else 1
    rates = [20, 200, 0] if quick else [20, 50, 200, 0]
    answers = [
        ("2.9 kB answer", two_point_nine_kb(scale)),
        ("17 kB paragraph", one_paragraph(17_000 // scale)),
        ("300-line code block", code_block(300 // scale)),
    ]
    kernel = Kernel()
    results = []
    try:
        setup = kernel.execute(SETUP)
        assert setup.status == "ok", setup.error_text()
        page_ready(kernel)
        kernel.execute("%%realtime\nwarm up")
        print("render: every IOPub message of an answer, real kernel, page ready, server paced")
        for title, text in answers:
            for rate in rates:
                name = f"{title} at {rate} words/s" if rate else f"{title} in a burst"
                results.append(report(name, measure(kernel, text, rate)))
        deltas = 100_000 // scale
        burst = "\n\n".join(
            " ".join(f"w{i}" for i in range(j, j + 100)) for j in range(0, deltas, 100)
        )
        cost = measure(kernel, burst, 0)
        lost = cost.sent - cost.received
        print(
            f"  burst of {deltas:,} deltas: {cost.sent} messages sent, {cost.received}"
            f" received, final text exact: {cost.exact}"
        )
        goal("2", "IOPub messages lost in a burst", float(lost), None, 0, at_most=True)
        goal("2", "final text exact in a burst", float(cost.exact), None, 1, at_most=False)
        values = latency(kernel, 20 if quick else LATENCY_TRIALS)
    finally:
        kernel.shutdown()
    median = statistics.median(values)
    p95 = percentile(values, 0.95)
    print(
        f"first delta on screen ({len(values)} answers at 50 words/s): median {median:.1f} ms,"
        f" p95 {p95:.1f} ms, max {max(values):.1f} ms"
    )
    first = "first delta on screen"
    goal("2", first, median, min(values), LATENCY_GOAL_MS, at_most=True, unit=" ms")
    goal("2", f"{first}, 95th percentile", p95, None, LATENCY_GOAL_MS, at_most=True, unit=" ms")
    print(f"IOPub goals met in {sum(results)} of {len(results)} cases")
    print(NOTE)


if __name__ == "__main__":
    main()
