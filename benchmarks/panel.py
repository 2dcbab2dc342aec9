"""Chat panel: a turn costs the same at message 1,000 as at message 100 (issue 22).

A :class:`~rt_notebook.ChatPanel` in this process (no browser: its comm messages are
counted where ipywidgets publishes them, content, metadata and buffers) on a Session that
talks to the embedded server in a subprocess (``--pace 0``), so this process's CPU time is
the kernel's alone. Two Sessions, one with 100 messages, one with 1,000 (added in bulk);
measured turns (a message sent from the panel, its answer streamed into the panel until
the final text is shown) alternate between them, so a busy machine slows both alike.

Printed: the kernel's CPU time and the comm bytes per turn at each size and their ratios
(goal: at most 1.2x), the panel's widget models at each size (goal: the same number,
not one per message), and what a notebook saved after the 1,000-message session holds for
the panel, open (its widget state) and closed (the static transcript that replaces it),
against the conversation's text (goal: at most 2x).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _goals import goal
from _server import server_process

SHORT, LONG = 100, 1000  # messages in each conversation when measuring starts
ROUNDS = 15  # measured turns on each
GOAL = 1.2

_counted = [0]  # comm bytes published so far (all widgets)


def count_comm_bytes() -> None:
    """Count every comm message ipywidgets publishes: content, metadata and buffers."""
    import ipywidgets

    probe = ipywidgets.Button()
    kind = type(probe.comm)  # the kernel's Comm, or DummyComm outside a kernel
    probe.close()
    real = kind.publish_msg

    def counting(self: Any, msg_type: str, data: Any = None, metadata: Any = None,
                 buffers: Any = None, **keys: Any) -> None:  # fmt: skip
        _counted[0] += len(json.dumps(data or {}, ensure_ascii=False).encode())
        _counted[0] += len(json.dumps(metadata or {}).encode())
        _counted[0] += sum(len(bytes(buffer)) for buffer in buffers or [])
        real(self, msg_type, data, metadata, buffers, **keys)

    kind.publish_msg = counting  # type: ignore[method-assign]


def panel_models(before: set[str]) -> int:
    from ipywidgets.widgets.widget import _instances

    return len(set(_instances) - before)


def shown(panel: Any, handle: Any) -> bool:
    """Whether the panel shows the turn's answer, final, and nothing waits."""
    result = handle.wait(30)
    answers = [item.id for item in result.items]
    return (
        not panel._waiting
        and not panel._outgoing
        and all(panel._bubbles.get(i) is not None and panel._bubbles[i].final for i in answers)
    )


def main() -> None:
    from ipywidgets.widgets.widget import _instances

    import rt_notebook
    from rt_notebook.frontends.chat import ChatPanel

    count_comm_bytes()
    samples: dict[int, list[tuple[float, int]]] = {SHORT: [], LONG: []}
    models: dict[int, int] = {}
    with server_process() as (url, token, _pid):
        panels = {}
        for count in (SHORT, LONG):
            session = rt_notebook.connect(
                f"panel-{count}", websocket_base_url=url, api_key=token, modalities=["text"]
            )
            for n in range(count):
                role = "assistant" if n % 2 else "user"
                session.add_message(f"Turn {n // 2} of a long talk about nothing.", role=role)
            before = set(_instances)
            panels[count] = ChatPanel(session)
            models[count] = panel_models(before)

        def turn(count: int, n: int) -> tuple[float, int]:
            panel = panels[count]
            sent, cpu = _counted[0], time.process_time()
            handle = panel.send(f"Question {n}?").result(30)
            while not shown(panel, handle):
                time.sleep(0.002)
            return time.process_time() - cpu, _counted[0] - sent

        for count in (SHORT, LONG):  # warm-up: first-use costs out of the figures
            turn(count, -1)
        for n in range(ROUNDS):
            order = [SHORT, LONG] if n % 2 else [LONG, SHORT]
            for count in order:
                samples[count].append(turn(count, n))
        long_panel = panels[LONG]
        models_after = panel_models(set())  # every model now (both panels and the rest)
        texts = sum(
            len(item.text or item.arguments or item.output or "") for item in long_panel.items
        )
        open_state = sum(
            len(json.dumps(widget.get_state(), default=str).encode())
            for widget in list(_instances.values())
            if widget in long_panel._own_widgets
        )
        closed = long_panel.static_bundle()
        closed_bytes = sum(len(value.encode()) for value in closed.values())
        final_items = {count: panel.session.item_count for count, panel in panels.items()}
        for panel in panels.values():
            panel.close()
            panel.session.close()
    print(
        f"panel turns: at {SHORT} messages (baseline) vs at {LONG} ({ROUNDS} interleaved "
        f"turns each, ending at {final_items[SHORT]} and {final_items[LONG]} items; medians, "
        "min in brackets)"
    )
    figures = {}
    for label, column, scale, unit in (("kernel CPU", 0, 1e3, "ms"), ("comm bytes", 1, 1, "B")):
        early = [sample[column] for sample in samples[SHORT]]
        late = [sample[column] for sample in samples[LONG]]
        median_ratio = (
            statistics.median(late) / statistics.median(early) if any(early) else float("nan")
        )
        min_ratio = min(late) / min(early) if min(early) else float("nan")
        figures[label] = (median_ratio, min_ratio)
        print(
            f"  {label:11s} per turn  {SHORT}: {statistics.median(early) * scale:8.1f} {unit}"
            f" ({min(early) * scale:8.1f})   {LONG}: {statistics.median(late) * scale:8.1f} {unit}"
            f" ({min(late) * scale:8.1f})   ratio {median_ratio:.2f} ({min_ratio:.2f})"
        )
    print(
        f"  widget models per panel: {models[SHORT]} at {SHORT} messages, {models[LONG]} at "
        f"{LONG} ({models_after} models in the process after the turns)"
    )
    print(
        f"  saved with the {LONG}-message panel: open {open_state} B of widget state, closed "
        f"{closed_bytes} B of Markdown; the conversation's text is {texts} B"
    )
    goal("22 panel", f"panel turn CPU, {LONG} messages / {SHORT}", *figures["kernel CPU"],
         GOAL, at_most=True, unit="x")  # fmt: skip
    goal("22 panel", f"panel turn comm bytes, {LONG} messages / {SHORT}",
         *figures["comm bytes"], GOAL, at_most=True, unit="x")  # fmt: skip
    goal("22 panel", f"widget models per panel, {LONG} messages / {SHORT}",
         models[LONG] / models[SHORT], None, 1.0, at_most=True, unit="x")  # fmt: skip
    goal("22 panel", f"saved panel / conversation text, {LONG} messages",
         max(open_state, closed_bytes) / texts, None, 2.0, at_most=True, unit="x")  # fmt: skip


if __name__ == "__main__":
    main()
