"""Render benchmark: IOPub messages and bytes per streamed answer, paced vs naive.

Through a real kernel and the embedded server (pace 0), the same answer of N words is
rendered twice: by ``%%realtime`` (paced display-handle updates) and by a naive subscriber
that updates a display handle on every delta. Prints messages, bytes and the ratios.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.kernel.harness import Kernel

WORDS = 3_000

SETUP = f"""
%load_ext rt_notebook
import rt_notebook
from IPython.display import Markdown, display
from rt_notebook.protocol.conversation import ItemDelta
from rt_notebook.server import EmbeddedServer
server = EmbeddedServer(pace=0.0)
server.start()
session = rt_notebook.connect(websocket_base_url=server.websocket_base_url, api_key=server.token)
text = " ".join(f"w{{i}}" for i in range({WORDS}))
"""

NAIVE = """
handle = display(Markdown(""), display_id=True)
def naive(sess, changes):
    for change in changes:
        if isinstance(change, ItemDelta):
            handle.update(Markdown(sess.response_text(change.response_id)))
session.add_message(text)
unsubscribe = session.subscribe(naive)
session.create_response().wait(120)
unsubscribe()
"""


def measure(kernel: Kernel, code: str) -> tuple[int, int, bool]:
    run = kernel.execute(code, timeout=300, any_parent=True)
    updates = run.of_type("display_data", "update_display_data")
    size = sum(len(json.dumps(m["content"])) for m in updates)
    complete = f"w{WORDS - 1}" in json.dumps(updates[-1]["content"]) if updates else False
    return len(updates), size, complete


def main() -> None:
    kernel = Kernel()
    try:
        kernel.execute(SETUP)
        paced = measure(kernel, "%%realtime\n{text}")
        naive = measure(kernel, NAIVE)
    finally:
        kernel.shutdown()
    print(f"render: one answer of {WORDS} words (~{WORDS} deltas) through a real kernel")
    for name, (messages, size, complete) in {
        "naive per-delta": naive,
        "%%realtime paced": paced,
    }.items():
        print(
            f"  {name:18s} {messages:6d} IOPub display messages {size / 1e6:8.2f} MB"
            f"  final text complete: {complete}"
        )
    print(
        f"  ratio naive/paced: messages {naive[0] / paced[0]:.1f}x,"
        f" bytes {naive[1] / paced[1]:.1f}x"
    )


if __name__ == "__main__":
    main()
