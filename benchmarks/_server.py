"""Benchmark helper: the embedded server in a subprocess, so it does not share our GIL."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server_process(token: str = "bench-token-0123456789") -> Iterator[tuple[str, str]]:
    """Yield (websocket_base_url, token) of a pace-0 embedded server in a subprocess."""
    port = free_port()
    command = [sys.executable, "-m", "rt_notebook.server", "--port", str(port)]
    command += ["--token", token, "--pace", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        for line in process.stdout:  # the server prints its URLs once it listens
            if "base_url:" in line:
                break
        else:
            raise RuntimeError("the server did not start")
        yield f"ws://127.0.0.1:{port}/v1", token
    finally:
        process.terminate()
        process.wait(10)
