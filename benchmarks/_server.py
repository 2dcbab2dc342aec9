"""Benchmark helper: the embedded server in a subprocess, so it does not share our GIL."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server_process(token: str = "bench-token-0123456789") -> Iterator[tuple[str, str]]:
    """Yield (websocket_base_url, token) of a pace-0 embedded server in a subprocess."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rt_notebook.server",
            "--port",
            str(port),
            "--token",
            token,
            "--pace",
            "0",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        yield f"ws://127.0.0.1:{port}/v1", token
    finally:
        process.terminate()
        process.wait(10)
