"""A real IPython kernel for tests: execute code, collect every IOPub message."""

from __future__ import annotations

import json
import os
import queue
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.manager import KernelManager

from tests.timing import SCALE, within

# Every limit here is in seconds on an idle machine, stretched by RT_TEST_TIME_SCALE
# (tests/timing.py): limits are failure detectors, never expected durations.
UNIT = SCALE  # the multiplier's former name here, kept for branches that import it


@dataclass
class Execution:
    """What one execute request produced on IOPub and the shell channel."""

    reply: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)
    msg_id: str = ""  # the execute request's id: the parent of what this code displayed

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["msg_type"] in types]

    @property
    def status(self) -> str:
        return self.reply["content"]["status"]

    def final_markdown(self) -> str:
        """The text/markdown of the last display or display update."""
        for message in reversed(self.of_type("display_data", "update_display_data")):
            data = message["content"]["data"]
            if "text/markdown" in data:
                return data["text/markdown"]
        raise AssertionError("no markdown output")

    def stream_text(self, name: str = "stdout") -> str:
        """What the code printed to ``name`` (stdout or stderr)."""
        streams = self.of_type("stream")
        return "".join(m["content"]["text"] for m in streams if m["content"]["name"] == name)

    def error_text(self) -> str:
        """``ename: evalue`` of each error (a ``UsageError`` is only in the reply)."""
        contents = [m["content"] for m in self.of_type("error")]
        if not contents and self.reply.get("content", {}).get("status") == "error":
            contents = [self.reply["content"]]
        return "\n".join(f"{c['ename']}: {c['evalue']}" for c in contents)

    def shown_error(self) -> str:
        """The error as the notebook shows it: traceback lines, or a UsageError's stderr."""
        lines = [line for m in self.of_type("error") for line in m["content"]["traceback"]]
        return "".join(lines) + self.stream_text("stderr")


class Kernel:
    """An IPython kernel in a subprocess, with no OpenAI credentials in its environment."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_"))}
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(env=env)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=within(60))

    def execute(
        self, code: str, timeout: float = 60, on_message=None, any_parent: bool = False
    ) -> Execution:
        """Run ``code``; collect its IOPub messages until idle (``any_parent``: all of them,
        including those a background thread sent with another parent header)."""
        timeout = within(timeout)
        msg_id = self.client.execute(code)
        execution = Execution(reply={}, msg_id=msg_id)
        while True:
            try:
                message = self.client.get_iopub_msg(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"kernel silent for {timeout} s running {code!r}") from None
            ours = message["parent_header"].get("msg_id") == msg_id
            if not ours and not any_parent:
                continue
            execution.messages.append(message)
            if on_message is not None:
                on_message(message)
            if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                break
        execution.reply = self._reply_to(msg_id, timeout)
        return execution

    def _reply_to(self, msg_id: str, timeout: float) -> dict[str, Any]:
        """The shell reply whose parent is ``msg_id``: a leftover reply to an earlier
        request (``wait_for_ready``'s kernel_info on a busy machine) is skipped, not taken
        for this one's."""
        while True:
            try:
                reply = self.client.get_shell_msg(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no shell reply to {msg_id} in {timeout} s") from None
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply

    def wait_for_message(self, matches, timeout: float = 60) -> dict[str, Any]:
        """Read IOPub (any parent) until a message ``matches``; return it. For output a
        background thread publishes after the cells that started it went idle."""
        timeout = within(timeout)
        while True:
            try:
                message = self.client.get_iopub_msg(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no matching IOPub message in {timeout} s") from None
            if matches(message):
                return message

    def interrupt(self) -> None:
        self.manager.interrupt_kernel()

    def shutdown(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


# Kernel-side helpers a test's set-up code appends (it defines ``session``, and imports
# ``json``, ``os`` and ``tempfile``): ``start()`` records what the default Session sends,
# ``sent()`` returns those client events. ``run_recorded`` uses them from the test.
RECORDER = """
RECORDING = os.path.join(tempfile.mkdtemp(), "sent.jsonl")

def start():
    open(RECORDING, "w").close()
    session.record(RECORDING)

def sent():
    '''What the default Session sent since start(), as client events.'''
    session.stop_recording()
    with open(RECORDING) as lines:
        records = [json.loads(line) for line in lines]
    return [r["data"] for r in records if r["direction"] == "sent"]
"""


def run_recorded(kernel: Kernel, code: str) -> tuple[Execution, list[Any]]:
    """Run ``code`` between start() and sent(); return the run and the client events."""
    assert kernel.execute("start()").status == "ok"
    run = kernel.execute(code)
    out = kernel.execute("print(json.dumps(sent()))")
    assert out.status == "ok", out.error_text()
    events: list[Any] = json.loads(out.stream_text())
    return run, events
