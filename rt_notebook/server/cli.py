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

from rt_notebook.server.admission import ENDPOINT, exposure_warning, is_loopback, new_token
from rt_notebook.server.chat_backend import CHAT_KEY_VARIABLE, ChatResponder
from rt_notebook.server.driver import DriverConfig, start_server
from rt_notebook.server.embedded import parse_dialect
from rt_notebook.server.errors import describe_duration
from rt_notebook.server.live import LiveResponder
from rt_notebook.server.responders import (
    RESPONDER_NAMES,
    Responder,
    ScriptError,
    echo_words_for,
    make_responder,
)

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
        "--host",
        default="127.0.0.1",
        help="address to bind (default: %(default)s); any other than loopback needs --token",
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
        choices=("ga", "beta", "auto"),
        default="ga",
        help=(
            "ga: the current interface; like OpenAI's service, beta clients are refused "
            "(default); beta: for old beta clients and Azure deployments that still use it; "
            "auto: GA, or beta for clients sending 'OpenAI-Beta: realtime=v1'"
        ),
    )
    parser.add_argument(
        "--pace",
        type=float,
        default=0.02,
        help="seconds between streamed deltas (default: %(default)s)",
    )
    parser.add_argument("--script", help="JSON script for --responder scripted")
    parser.add_argument(
        "--backend",
        choices=("offline", "chat"),
        default="offline",
        help=(
            "offline: the deterministic --responder (default); chat: answer from a model at "
            "an OpenAI-compatible Chat Completions endpoint (Ollama, vLLM, llama.cpp, LM "
            f"Studio), with the key, if it needs one, in ${CHAT_KEY_VARIABLE}"
        ),
    )
    parser.add_argument(
        "--chat-base-url",
        metavar="URL",
        help="the endpoint's base URL for --backend chat (e.g. http://127.0.0.1:11434/v1)",
    )
    parser.add_argument("--chat-model", metavar="NAME", help="the model for --backend chat")
    parser.add_argument(
        "--max-session-seconds",
        type=float,
        default=None,
        metavar="SECONDS",
        help=(
            "end each session after this long, as the real service does after 60 minutes "
            "(error session_expired, then close 1001); default: no limit"
        ),
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until Ctrl-C or SIGTERM; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.pace < 0:
        parser.error("--pace must be >= 0")
    if args.max_session_seconds is not None and not args.max_session_seconds > 0:
        parser.error("--max-session-seconds must be > 0")
    if not is_loopback(args.host):
        if not args.token:  # a random token printed to a terminal is no protection on a network
            parser.error(f"--host {args.host} serves beyond this machine: it needs --token TOKEN")
        sys.stderr.write(exposure_warning(args.host) + "\n")
    responder: Responder | LiveResponder
    if args.backend == "chat":
        if not args.chat_base_url or not args.chat_model:
            parser.error("--backend chat needs --chat-base-url URL and --chat-model NAME")
        responder = ChatResponder(args.chat_base_url, args.chat_model)
    elif args.chat_base_url or args.chat_model:
        parser.error("--chat-base-url and --chat-model need --backend chat")
    else:
        try:
            responder = make_responder(
                args.responder, args.script, echo_max_words=echo_words_for(args.pace)
            )
        except (ValueError, ScriptError) as exc:
            parser.error(str(exc))
    config = DriverConfig(
        token=args.token or new_token(),
        responder=responder,
        dialect=parse_dialect(args.dialect),
        pace=args.pace,
        max_session_seconds=args.max_session_seconds,
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
    _say(how_to_connect(config, netloc))
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()
        _say("rt_notebook offline Realtime server stopped.\n")


def how_to_connect(config: DriverConfig, netloc: str) -> str:
    """What the CLI prints once it listens: addresses, token and lines to paste."""
    dialect = config.dialect.value if config.dialect is not None else "auto"
    ws_base, http_base, token = f"ws://{netloc}/v1", f"http://{netloc}/v1", config.token
    limit = (
        f", sessions end after {describe_duration(config.max_session_seconds)}"
        if config.max_session_seconds is not None
        else ""
    )
    responder = config.responder
    answers = (
        responder.describe()
        if isinstance(responder, LiveResponder)
        else f"responder: {responder.name}"
    )
    return (
        f"rt_notebook offline Realtime server ({answers}, "
        f"dialect: {dialect}{limit})\n"
        f"  websocket_base_url: {ws_base}\n"
        f"  base_url:           {http_base}\n"
        f"  token:              {token}\n"
        f"  endpoint:           ws://{netloc}{ENDPOINT}?model=gpt-realtime-2.1 "
        "(the full WebSocket URL, not a base URL)\n"
        "In a notebook, either of:\n"
        f"  import rt_notebook; rt_notebook.connect(websocket_base_url={ws_base!r}, "
        f"api_key={token!r})\n"
        f"  %env OPENAI_API_KEY={token}\n"
        f"  %config RealtimeMagics.url = {ws_base!r}\n"
        "With the openai SDK:\n"
        f"  AsyncOpenAI(base_url={http_base!r}, websocket_base_url={ws_base!r}, "
        f"api_key={token!r}).realtime.connect(model='gpt-realtime-2.1')\n"
        "Press Ctrl-C to stop.\n"
    )


def _say(text: str) -> None:
    """Write to stdout now; a reader that went away (``| head``) is not an error."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Point stdout at nothing so the interpreter's final flush stays quiet too.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives until exit
