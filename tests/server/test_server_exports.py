"""The server package's public surface and module conventions."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import rt_notebook.protocol
import rt_notebook.server
from tests.timing import PROCESS_WAIT

MODULES = sorted(
    f"rt_notebook.server.{info.name}"
    for info in pkgutil.iter_modules(rt_notebook.server.__path__)
    if info.name != "__main__"  # running it starts the CLI
)
LAYERS = ("Sans-I/O", ":mod:`asyncio`", "Background-thread", "Command-line", "Embedded offline")


def test_public_api() -> None:
    """The package's surface, pinned: what it exports, and that each export is a public
    name of the module that defines it."""
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
    # A star import gives exactly these names (each must exist: a stale one fails it).
    namespace: dict[str, object] = {}
    exec("from rt_notebook.server import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(rt_notebook.server.__all__)
    modules = [importlib.import_module(name) for name in MODULES]
    for name in rt_notebook.server.__all__:
        value = getattr(rt_notebook.server, name)
        # The very object a server module declares public (type aliases have no
        # ``__module__`` of their own, so the modules are searched).
        homes = [m.__name__ for m in modules if name in m.__all__ and getattr(m, name) is value]
        assert homes, f"{name} is not a public name of any rt_notebook.server module"


@pytest.mark.parametrize("name", MODULES)
def test_every_module_says_its_layer_and_exports_what_exists(name: str) -> None:
    module = importlib.import_module(name)
    first_line = (module.__doc__ or "").splitlines()[0]
    assert first_line.startswith(LAYERS), first_line
    for exported in getattr(module, "__all__", ()):
        assert hasattr(module, exported), exported
    assert hasattr(module, "__all__")


PROTOCOL_MODULES = sorted(
    f"rt_notebook.protocol.{info.name}"
    for info in pkgutil.iter_modules(rt_notebook.protocol.__path__)
)
# What a sans-I/O module must not import: sockets, threads, event loops, network clients
# (a module or any of its submodules; ``urllib.parse`` is parsing, not I/O).
IO_MODULES = (
    "asyncio",
    "concurrent",
    "http.client",
    "http.server",
    "httpx",
    "mcp",
    "select",
    "selectors",
    "socket",
    "ssl",
    "subprocess",
    "threading",
    "urllib.request",
    "websockets",
)


def io_imports(source: str) -> set[str]:
    """The modules ``source`` imports (anywhere, even in a function) that do I/O."""
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module)
            imported |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {
        name
        for name in imported
        if any(name == io or name.startswith(io + ".") for io in IO_MODULES)
    }


def sans_io_modules() -> list[str]:
    found = []
    for name in [*MODULES, *PROTOCOL_MODULES]:
        module = importlib.import_module(name)
        if (module.__doc__ or "").startswith("Sans-I/O"):
            found.append(name)
    return found


def test_the_sans_io_check_covers_the_client_protocol_and_the_server_core() -> None:
    found = set(sans_io_modules())
    assert {"rt_notebook.protocol.conversation", "rt_notebook.protocol.client"} <= found
    assert {"rt_notebook.server.state", "rt_notebook.server.streaming"} <= found
    # Remote MCP: the state decides, the driver's MCP client (not sans-I/O) connects.
    assert {"rt_notebook.server.remote_mcp", "rt_notebook.protocol.mcp"} <= found
    assert "rt_notebook.server.mcp_client" not in found


@pytest.mark.parametrize("name", sans_io_modules())
def test_sans_io_modules_import_no_io(name: str) -> None:
    """The cores (the server's and the client's, ``protocol/``) never import sockets,
    threads, asyncio, websockets or the SDK, even inside a function."""
    module = importlib.import_module(name)
    source = Path(module.__file__ or "").read_text(encoding="utf-8")
    assert io_imports(source) == set()


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
