"""The top-level surface, pinned (as websockets' test_exports does): what users hold and what
README names is importable from ``rt_notebook``, and nothing else leaks in unannounced."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import rt_notebook
import rt_notebook.server

README = Path(__file__).resolve().parents[1] / "README.md"

# What a user holds or builds: the Session and its options, what it returns, the errors.
PUBLIC = {
    "ChatPanel",
    "ConfigurationError",
    "ItemSnapshot",  # Session.items, ResponseResult.items
    "RealtimeConnectionError",
    "RealtimeError",
    "ResponseHandle",
    "ResponseResult",
    "ServerError",
    "Session",
    "SessionStatus",  # Session.status
    "Timing",  # Session(timing=Timing(...))
    "Tool",
    "__version__",
    "connect",
    "load_ipython_extension",
    "tool",
}


def test_the_top_level_surface_is_what_users_hold():
    assert set(rt_notebook.__all__) == PUBLIC
    assert len(rt_notebook.__all__) == len(set(rt_notebook.__all__))


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_each_public_name_imports_from_the_top(name):
    """``from rt_notebook import X`` works for each, and gives the object its home module
    defines (the lazy names included)."""
    namespace: dict[str, object] = {}
    exec(f"from rt_notebook import {name}", namespace)
    value = namespace[name]
    home = getattr(value, "__module__", None)
    if home is not None and home != "rt_notebook":
        assert home.startswith("rt_notebook."), home
        assert getattr(importlib.import_module(home), name) is value


def test_a_star_import_gives_exactly_the_public_names():
    namespace: dict[str, object] = {}
    exec("from rt_notebook import *", namespace)
    assert set(namespace) - {"__builtins__"} == PUBLIC


def readme_names():
    """Every class-like name README puts in backticks that the package defines."""
    names = set(re.findall(r"`([A-Z][A-Za-z]*[a-z][A-Za-z]*)`", README.read_text()))
    defined = set()
    for module in (
        "rt_notebook.client.responses",
        "rt_notebook.protocol.turns",
        "rt_notebook.client.session",
    ):
        defined |= set(getattr(importlib.import_module(module), "__all__", ()))
    defined |= set(rt_notebook.__all__) | set(rt_notebook.server.__all__)
    return sorted(names & defined)


def test_readme_names_something_this_test_checks():
    assert {"Timing", "Session", "ResponseResult"} <= set(readme_names())


@pytest.mark.parametrize("name", readme_names())
def test_every_class_readme_names_is_importable_from_the_package(name):
    """From ``rt_notebook`` (or, for the offline server, ``rt_notebook.server``)."""
    package = rt_notebook.server if name in rt_notebook.server.__all__ else rt_notebook
    assert name in package.__all__
    assert getattr(package, name) is not None
