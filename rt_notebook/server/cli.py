"""Command-line front end of the embedded server: ``rt-notebook-server``.

Parses the options, starts the :mod:`~rt_notebook.server.driver` on the main thread's event
loop, prints how to connect (this is the one place in the package that writes to stdout),
and shuts down cleanly on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Sequence

from rt_notebook.server.admission import ENDPOINT, new_token
from rt_notebook.server.driver import DriverConfig, start_server
from rt_notebook.server.embedded import parse_dialect
from rt_notebook.server.responders import RESPONDER_NAMES, ScriptError, make_responder

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rt-notebook-server",
        description=(
            "Offline Realtime-protocol server on loopback with deterministic responders "
            "(no model, no network). Point the openai SDK at it with the printed base URL "
            "and token."
        ),
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    parser.add_argument("--token", help="bearer token clients must send (default: random)")
    parser.add_argument(
        "--responder",
        choices=RESPONDER_NAMES,
        default="echo",
        help="what the server answers (default: %(default)s)",
    )
    parser.add_argument(
        "--dialect",
        choices=("auto", "ga", "beta"),
        default="auto",
        help="auto: GA, or beta for clients sending 'OpenAI-Beta: realtime=v1' (default)",
    )
    parser.add_argument(
        "--pace",
        type=float,
        default=0.02,
        help="seconds between streamed deltas (default: %(default)s)",
    )
    parser.add_argument("--script", help="JSON script for --responder scripted")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until Ctrl-C or SIGTERM; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.pace < 0:
        parser.error("--pace must be >= 0")
    try:
        responder = make_responder(args.responder, args.script)
    except (ValueError, ScriptError) as exc:
        parser.error(str(exc))
    config = DriverConfig(
        token=args.token or new_token(),
        responder=responder,
        dialect=parse_dialect(args.dialect),
        pace=args.pace,
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C where signal handlers are unavailable
        asyncio.run(_serve_until_signalled(config, args.host, args.port))
    return 0


async def _serve_until_signalled(config: DriverConfig, host: str, port: int) -> None:
    server = await start_server(config, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows
            loop.add_signal_handler(signum, stop.set)
    bound_port = next(iter(server.sockets)).getsockname()[1]
    netloc = f"[{host}]:{bound_port}" if ":" in host else f"{host}:{bound_port}"
    dialect = config.dialect.value if config.dialect is not None else "auto"
    _say(
        f"rt_notebook offline Realtime server (responder: {config.responder.name}, "
        f"dialect: {dialect})\n"
        f"  url:       ws://{netloc}{ENDPOINT}?model=gpt-realtime\n"
        f"  base_url:  http://{netloc}/v1\n"
        f"  token:     {config.token}\n"
        f"  example:   AsyncOpenAI(base_url='http://{netloc}/v1', api_key=TOKEN)"
        ".realtime.connect(model='gpt-realtime')\n"
        "Press Ctrl-C to stop.\n"
    )
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()
        _say("rt_notebook offline Realtime server stopped.\n")


def _say(text: str) -> None:
    """Write to stdout now; a reader that went away (``| head``) is not an error."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Point stdout at nothing so the interpreter's final flush stays quiet too.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives until exit
