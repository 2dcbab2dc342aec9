"""The public surface: every name in each module's ``__all__`` exists, and the lazy
top-level names resolve (importing ``rt_notebook`` alone stays cheap)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import rt_notebook

MODULES = [
    "rt_notebook",
    "rt_notebook.client.driver",
    "rt_notebook.client.item_writes",
    "rt_notebook.client.reading",
    "rt_notebook.client.registry",
    "rt_notebook.frontends.anchors",
    "rt_notebook.client.bridge",
    "rt_notebook.frontends.chat",
    "rt_notebook.render.code_blocks",
    "rt_notebook.errors",
    "rt_notebook.frontends.last_error",
    "rt_notebook.frontends.magic_args",
    "rt_notebook.frontends.magics",
    "rt_notebook.tools.mcp_servers",
    "rt_notebook.tools.mcp_servers.connection",
    "rt_notebook.tools.mcp_servers.naming",
    "rt_notebook.tools.mcp_servers.servers",
    "rt_notebook.tools.notebook_tools",
    "rt_notebook.protocol.checks",
    "rt_notebook.protocol.client",
    "rt_notebook.protocol.conversation",
    "rt_notebook.protocol.lifecycle",
    "rt_notebook.protocol.events",
    "rt_notebook.protocol.payloads",
    "rt_notebook.protocol.restore",
    "rt_notebook.protocol.translate",
    "rt_notebook.protocol.turns",
    "rt_notebook.redaction",
    "rt_notebook.render.blocks",
    "rt_notebook.render.bounded",
    "rt_notebook.render.cell",
    "rt_notebook.render.copy_slot",
    "rt_notebook.render.markdown",
    "rt_notebook.render.pacing",
    "rt_notebook.render.stream_edits",
    "rt_notebook.render.tables",
    "rt_notebook.render.view_loop",
    "rt_notebook.client.responses",
    "rt_notebook.server",
    "rt_notebook.client.session",
    "rt_notebook.tools",
    "rt_notebook.tools.registry",
    "rt_notebook.tools.runner",
    "rt_notebook.tools.schema",
    "rt_notebook.frontends.transcript",
    "rt_notebook.client.transport",
    "rt_notebook.widgets.copy_code",
    "rt_notebook.widgets.events",
    "rt_notebook.widgets.stream",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name):
    module = importlib.import_module(name)
    assert module.__all__, f"{name} declares no public names"
    missing = [member for member in module.__all__ if not hasattr(module, member)]
    assert missing == []


def test_top_level_lazy_names_resolve():
    assert rt_notebook.Session.__name__ == "Session"
    assert callable(rt_notebook.connect)
    assert rt_notebook.ChatPanel.__module__ == "rt_notebook.frontends.chat"
    with pytest.raises(AttributeError):
        rt_notebook.not_a_member  # noqa: B018


def test_importing_the_package_loads_no_front_end_or_network_code():
    code = (
        "import sys, rt_notebook; heavy = ['IPython', 'ipywidgets', 'openai', 'websockets'];"
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
