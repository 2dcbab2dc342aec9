"""Render benchmark: IOPub cost of streamed answers and first-delta latency, in a real kernel.

Every case streams one answer through a real IPython kernel (jupyter_client, the real
IOPub channel) from an embedded server paced at a given delta rate, twice, interleaved:
``%%realtime`` and the naive baseline (a subscriber updating one display handle with the
whole text on every delta). For each it prints the display messages and their bytes (the
JSON content as sent, UTF-8), the ratio of bytes to the final text, and the goals: bytes
≤ 20 times the text, messages ≤ 25 per second of streaming + 10, final text exact.

Then the first-delta latency: over 100 ``%%realtime`` answers, from the first delta's
arrival in the kernel (a Session subscriber registered before the view's) to its display
message being handed to IOPub (the display publisher), median and 95th percentile
against the 50 ms goal.

``python benchmarks/render.py [--quick]`` (``--quick``: smaller answers, for a smoke run).
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

BYTES_GOAL = 20  # IOPub bytes per byte of final text
RATE_GOAL = 25  # display messages per second of streaming, plus MESSAGES_SLACK
MESSAGES_SLACK = 10
LATENCY_GOAL_MS = 50
LATENCY_TRIALS = 100

SETUP = """
%load_ext rt_notebook
import rt_notebook
from IPython.display import Markdown, display
from rt_notebook.protocol.conversation import ItemDelta
from rt_notebook.server import EmbeddedServer
servers = {}
def session_at(rate):
    name = f"rate{rate}"
    if name not in servers:
        servers[name] = EmbeddedServer(pace=1 / rate if rate else 0.0).start()
    return rt_notebook.connect(
        name, websocket_base_url=servers[name].websocket_base_url, api_key=servers[name].token
    )
def naive(text, rate):
    session = session_at(rate)
    handle = display(Markdown(""), display_id=True)
    def on_changes(sess, changes):
        for change in changes:
            if isinstance(change, ItemDelta):
                handle.update(Markdown(sess.response_text(change.response_id)))
    session.add_message(text)
    unsubscribe = session.subscribe(on_changes)
    try:
        result = session.create_response().wait(3600)
    finally:
        unsubscribe()
    handle.update(Markdown(result.text))  # the baseline's final text, exact
"""

LATENCY = """
import json, time
arrivals, shown = {}, []
def first_delta(sess, changes):
    for change in changes:
        if isinstance(change, ItemDelta) and change.response_id not in arrivals:
            arrivals[change.response_id] = time.perf_counter()
display_pub = get_ipython().display_pub
original_publish = display_pub.publish
def publish(data, *args, **kwargs):
    original_publish(data, *args, **kwargs)
    text = data.get("text/markdown", "")
    if text and not text.startswith("*waiting"):
        shown.append(time.perf_counter())
display_pub.publish = publish
session = session_at(50)
unsubscribe = session.subscribe(first_delta)
latencies = []
try:
    for trial in range(TRIALS):
        shown.clear()
        cell = f"trial {trial} of the first delta"
        get_ipython().run_cell_magic("realtime", "--session rate50 --out r", cell)
        arrival = arrivals[r.id]
        latencies.append((min(t for t in shown if t >= arrival) - arrival) * 1000)
finally:
    unsubscribe()
    display_pub.publish = original_publish
latencies.sort()
print(json.dumps(latencies))
"""


@dataclass
class Cost:
    messages: int
    size: int
    seconds: float
    exact: bool


def paragraphs(words: int, per_paragraph: int = 60) -> str:
    chunks = [
        " ".join(f"w{i}" for i in range(start, min(words, start + per_paragraph)))
        for start in range(0, words, per_paragraph)
    ]
    return "\n\n".join(chunks)


def one_paragraph(size: int) -> str:
    words, length = [], 0
    while length < size:
        words.append(f"word{len(words)}")
        length += len(words[-1]) + 1
    return " ".join(words)


def code_fence(size: int) -> str:
    lines, length = [], 0
    while length < size:
        lines.append(f"value_{len(lines)} = compute({len(lines)})")
        length += len(lines[-1]) + 1
    return "```python\n" + "\n".join(lines) + "\n```"


def cost(run: Execution, answer: str) -> Cost:
    assert run.status == "ok", run.error_text()
    messages = run.of_type("display_data", "update_display_data")
    size = sum(len(json.dumps(m["content"], ensure_ascii=False).encode()) for m in messages)
    dates = [m["header"]["date"] for m in messages]
    seconds = (max(dates) - min(dates)).total_seconds() if dates else 0.0
    final = ""
    for message in messages:  # the last Markdown written to each display, in order
        data = message["content"]["data"]
        if "text/markdown" in data:
            final = data["text/markdown"]
    return Cost(len(messages), size, seconds, final.startswith(answer))


def measure(kernel: Kernel, text: str, rate: int, baseline: bool = True) -> tuple[Cost, Cost]:
    kernel.execute(f"text = {text!r}\nsession_at({rate})")  # connected before it streams
    answer = echo_reply(text)
    paced = cost(kernel.execute(f"%%realtime --session rate{rate}\n{{text}}", timeout=3600), answer)
    if not baseline:
        return paced, paced
    naive = cost(kernel.execute(f"naive(text, {rate})", timeout=3600, any_parent=True), answer)
    return paced, naive


def naive_estimate(answer: str, framing: int = 200) -> Cost:
    """What the naive loop would send: the whole text so far, once per word."""
    data = answer.encode()
    ends = [index for index, byte in enumerate(data) if byte == ord(" ")] + [len(data)]
    size = sum(end + framing for end in ends)  # each message holds data[:end]
    return Cost(len(ends), size, 0.0, True)


def report(name: str, text: str, paced: Cost, naive: Cost) -> bool:
    answer = len(echo_reply(text).encode())
    allowed = RATE_GOAL * paced.seconds + MESSAGES_SLACK
    met = paced.size <= BYTES_GOAL * answer and paced.messages <= allowed and paced.exact
    goal("1", f"IOPub bytes / text, {name}", paced.size / answer, None, BYTES_GOAL, at_most=True)
    goal(
        "1",
        f"display messages / allowed ({allowed:.0f}), {name}",
        paced.messages / allowed,
        None,
        1,
        at_most=True,
    )
    goal("1", f"final text exact, {name}", float(paced.exact), None, 1, at_most=False)
    print(f"  {name}: answer {answer / 1000:.1f} kB, streamed over {paced.seconds:.1f} s")
    for label, c in (("naive per-delta", naive), ("%%realtime", paced)):
        print(
            f"    {label:16s} {c.messages:7d} messages {c.size / 1e6:9.3f} MB"
            f" = {c.size / answer:8.1f}x the text   final text exact: {c.exact}"
        )
    print(
        f"    goal: bytes <= {BYTES_GOAL}x ({paced.size / answer:.1f}x), messages <="
        f" {allowed:.0f} ({paced.messages}), exact: {'met' if met else 'NOT MET'};"
        f" naive/paced bytes {naive.size / paced.size:.1f}x"
    )
    return met


def latency(kernel: Kernel, trials: int) -> list[float]:
    run = kernel.execute(f"TRIALS = {trials}\n{LATENCY}", timeout=600)
    assert run.status == "ok", run.error_text()
    return json.loads(run.stream_text().strip().splitlines()[-1])


def main() -> None:
    quick = "--quick" in sys.argv
    scale = 10 if quick else 1
    only_latency = "--latency" in sys.argv
    cases = (
        []
        if only_latency
        else [
            ("many paragraphs at 20 deltas/s", paragraphs(600 // scale), 20),
            ("many paragraphs at 50 deltas/s", paragraphs(600 // scale), 50),
            ("one 17 kB paragraph at 50 deltas/s", one_paragraph(17_000 // scale), 50),
            ("many paragraphs at 1,000 deltas/s", paragraphs(3_000 // scale), 1_000),
            ("one 17 kB code fence at 1,000 deltas/s", code_fence(17_000 // scale), 1_000),
            ("burst of 100,000 deltas", paragraphs(100_000 // scale), 0),
        ]
    )
    kernel = Kernel()
    results = []
    try:
        setup = kernel.execute(SETUP)
        assert setup.status == "ok", setup.error_text()
        print("render: IOPub display messages per answer, real kernel, embedded server paced")
        for title, text, rate in cases:
            name = title
            if rate == 0 and not quick:
                # The naive loop resends the whole text per delta: O(n^2) bytes, ~30 GB at
                # 100,000 deltas, hours of kernel time. Its cost is computed, not run.
                paced, _ = measure(kernel, text, rate, baseline=False)
                naive = naive_estimate(echo_reply(text))
                name = f"{title} (naive computed, not run)"
            else:
                paced, naive = measure(kernel, text, rate)
            results.append(report(name, text, paced, naive))
        trials = 20 if quick else LATENCY_TRIALS
        values = latency(kernel, trials)
    finally:
        kernel.shutdown()
    median = statistics.median(values)
    p95 = values[min(len(values) - 1, round(0.95 * len(values)) - 1)]
    print(
        f"first delta on screen ({len(values)} answers at 50 deltas/s): median {median:.1f} ms,"
        f" p95 {p95:.1f} ms, max {max(values):.1f} ms"
    )
    first = "first delta on screen"
    goal("2", first, median, min(values), LATENCY_GOAL_MS, at_most=True, unit=" ms")
    goal("2", f"{first}, 95th percentile", p95, None, LATENCY_GOAL_MS, at_most=True, unit=" ms")
    print(f"IOPub goals met in {sum(results)} of {len(results)} cases")


if __name__ == "__main__":
    main()
