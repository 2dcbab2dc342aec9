"""A front end's part in kernel tests: the "ready" a page sends once it shows answers."""

from __future__ import annotations

from .harness import Kernel

# What marks an answer's widget in a comm_open or saved widget state: its module, which
# says hello (the state names no class: it holds only what the page reads).
ANSWER_MODULE = "m.send({hello:1})"


def page_ready(kernel: Kernel) -> None:
    """Say "ready" as a page does once it installed the stream renderer (a comm message to
    the kernel's stream hub): from then on answers stream through their widgets."""
    made = kernel.execute(
        "from rt_notebook.widgets import stream as _stream\nprint(_stream._made_hub().comm.comm_id)"
    )
    assert made.status == "ok", made.error_text()
    comm_id = made.stream_text().strip()
    content = {"comm_id": comm_id, "data": {"method": "custom", "content": {"event": "ready"}}}
    kernel.client.shell_channel.send(kernel.client.session.msg("comm_msg", content))
    check = kernel.execute("print(_stream._hub[0].ready.wait(30))")
    assert check.stream_text().strip() == "True"
