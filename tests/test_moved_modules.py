"""Modules by their names from before the layer packages import as the module at its new
place (the same object), so code, notebooks and patch targets that name them keep working."""

from __future__ import annotations

import importlib
import subprocess
import sys
from unittest import mock

import pytest

import rt_notebook


def test_an_old_name_is_the_same_module_with_its_own_spec():
    old = importlib.import_module("rt_notebook.session")
    new = importlib.import_module("rt_notebook.client.session")
    assert old is new
    assert old.__spec__.name == "rt_notebook.client.session"
    assert old.Session is rt_notebook.Session


def test_a_moved_packages_submodules_follow_it():
    from rt_notebook.mcp_servers.remote import RemoteMCPServer

    from rt_notebook.tools.mcp_servers import remote

    assert RemoteMCPServer is remote.RemoteMCPServer
    assert importlib.import_module("rt_notebook.widgets.export") is importlib.import_module(
        "rt_notebook.render.export"
    )


def test_a_patch_through_an_old_name_patches_the_module_in_use():
    from rt_notebook.client import models

    with mock.patch("rt_notebook.models.DEFAULT_MODEL", "patched-model"):
        assert models.DEFAULT_MODEL == "patched-model"
    assert models.DEFAULT_MODEL != "patched-model"


def test_the_readme_path_to_the_notebook_tools_works_as_an_attribute():
    assert (
        rt_notebook.notebook_tools.enable
        is importlib.import_module("rt_notebook.tools.notebook_tools").enable
    )


def test_a_name_that_never_existed_is_still_not_found():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("rt_notebook.no_such_module")
    with pytest.raises(AttributeError):
        _ = rt_notebook.no_such_module


def test_a_fresh_interpreter_imports_by_the_old_name_first():
    """No new name imported before: the old one alone brings the module in."""
    code = (
        "import rt_notebook.magics as m, sys;"
        "assert m is sys.modules['rt_notebook.frontends.magics'];"
        "assert m.__spec__.name == 'rt_notebook.frontends.magics';"
        "print(m.RealtimeMagics.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "rt_notebook.frontends.magics"


def test_a_fresh_interpreter_imports_a_moved_packages_submodule_by_its_old_name():
    """The path finder must not load a second copy under the old name (whose relative
    imports would then point beyond the package)."""
    code = (
        "from rt_notebook.mcp_servers.remote import RemoteMCPServer as R;"
        "import sys;"
        "assert sys.modules['rt_notebook.mcp_servers.remote'] is "
        "sys.modules['rt_notebook.tools.mcp_servers.remote'];"
        "print(R.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "rt_notebook.tools.mcp_servers.remote"
