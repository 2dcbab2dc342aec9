"""The server package's public surface and module conventions."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import rt_notebook.server
from tests.timing import PROCESS_WAIT

MODULES = sorted(
    f"rt_notebook.server.{info.name}"
    for info in pkgutil.iter_modules(rt_notebook.server.__path__)
    if info.name != "__main__"  # running it starts the CLI
)
LAYERS = ("Sans-I/O", ":mod:`asyncio`", "Background-thread", "Command-line", "Embedded offline")


def test_public_api() -> None:
    assert sorted(rt_notebook.server.__all__) == [
        "ChatResponder",
        "ConnectionState",
        "DriverConfig",
        "EchoResponder",
        "EmbeddedServer",
        "PlannedCall",
        "PlannedMessage",
        "PlannedOutput",
        "Responder",
        "ResponseRequest",
        "ScriptError",
        "ScriptedResponder",
        "load_script",
        "make_responder",
        "start_server",
    ]
    for name in rt_notebook.server.__all__:
        assert getattr(rt_notebook.server, name) is not None


@pytest.mark.parametrize("name", MODULES)
def test_every_module_says_its_layer_and_exports_what_exists(name: str) -> None:
    module = importlib.import_module(name)
    first_line = (module.__doc__ or "").splitlines()[0]
    assert first_line.startswith(LAYERS), first_line
    for exported in getattr(module, "__all__", ()):
        assert hasattr(module, exported), exported
    assert hasattr(module, "__all__")


def test_sans_io_modules_import_no_io() -> None:
    """The core never imports sockets, threads, asyncio or websockets."""
    forbidden = ("asyncio", "socket", "threading", "websockets")
    for name in MODULES:
        module = importlib.import_module(name)
        if not (module.__doc__ or "").startswith("Sans-I/O"):
            continue
        source = Path(module.__file__ or "").read_text(encoding="utf-8")
        for word in forbidden:
            assert f"import {word}" not in source, (name, word)
            assert f"from {word}" not in source, (name, word)


def test_starting_the_server_does_not_import_the_sdk_models() -> None:
    """The SDK's models take most of a second to import; they load on the first event."""
    code = (
        "import sys\n"
        "from rt_notebook.server import EmbeddedServer\n"
        "server = EmbeddedServer().start()\n"
        "print('openai' in sys.modules, 'pydantic' in sys.modules)\n"
        "from rt_notebook.server.validation import preload_models\n"
        "preload_models()\n"
        "print('openai.types.realtime' in sys.modules)\n"
        "server.stop()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=PROCESS_WAIT,
        check=True,
    )
    assert done.stdout.split() == ["False", "False", "True"]
