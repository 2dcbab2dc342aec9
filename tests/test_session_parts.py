"""The Session is a facade over parts that own their state: no mixins, no stubs, no part
reaching into another module's private members (read from the source, as a reviewer would),
and its entry points stay safe when threads call them at once."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import pytest

import rt_notebook
from tests.timing import WAIT

PACKAGE = Path(rt_notebook.__file__).parent
# The Session and the parts it is composed of.
PARTS = [
    "client/session.py",
    "client/link.py",
    "client/reading.py",
    "client/item_writes.py",
    "client/responding.py",
    "client/voice_input.py",
    "client/settings_keeper.py",
    "client/registry.py",
]
# The parts, and the modules that use the Session from outside (its handles, the SDK
# bridge): none reaches into private members or into the client core.
USERS = [*PARTS, "client/responses.py", "client/bridge.py"]


def _tree(name: str) -> ast.Module:
    return ast.parse((PACKAGE / name).read_text(encoding="utf-8"), name)


def _defined_in(tree: ast.Module) -> set[str]:
    """Every name a module defines: functions, classes, assigned names and attributes."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def _private_uses_of_others(tree: ast.Module) -> list[str]:
    """``obj._name`` where ``_name`` is not defined in this module (dunders aside), and
    private names imported from other modules."""
    mine = _defined_in(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            name = node.attr
            if name.startswith("_") and not name.startswith("__") and name not in mine:
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom):
            found += [
                f"line {node.lineno}: imports {alias.name}"
                for alias in node.names
                if alias.name.startswith("_") and not alias.name.startswith("__")
            ]
    return found


@pytest.mark.parametrize("name", USERS)
def test_no_part_uses_another_modules_private_members(name):
    assert _private_uses_of_others(_tree(name)) == []


def test_the_private_member_check_can_fail():
    tree = ast.parse("def f(session):\n    return session._driver.core\n")
    assert _private_uses_of_others(tree) == ["line 2: session._driver"]


def _reaches_the_core(tree: ast.Module) -> list[str]:
    """``x.core`` / ``x._core`` outside the driver: the driver is the core's only owner."""
    return [
        f"line {node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in ("core", "_core")
    ]


@pytest.mark.parametrize("name", USERS)
def test_no_part_reaches_into_the_client_core(name):
    assert _reaches_the_core(_tree(name)) == []


def test_the_core_check_can_fail():
    tree = ast.parse("def f(driver):\n    return driver.core.state\n")
    assert _reaches_the_core(tree) == ["line 2: driver.core"]


def _imported_modules(tree: ast.Module) -> set[str]:
    """Every module a module imports from, type-only imports included (relative names)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
    return found


@pytest.mark.parametrize("name", ["client/driver.py", "client/responses.py"])
def test_the_driver_and_the_handles_do_not_import_the_session(name):
    """They take the small interfaces they need (``DriverOwner``, ``HandleOwner``): no
    import cycle with the Session, even counting type-only imports."""
    assert ".session" not in _imported_modules(_tree(name))


@pytest.mark.parametrize("name", PARTS)
def test_no_stubs_and_no_attributes_declared_for_another_class(name):
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.Raise) and node.exc is not None:
            raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            assert ast.unparse(raised) != "NotImplementedError", f"{name}:{node.lineno}"
        if isinstance(node, ast.ClassDef):
            # A bare ``x: T`` in a class body declares state someone else sets (a mixin).
            bare = [
                ast.unparse(item.target)
                for item in node.body
                if isinstance(item, ast.AnnAssign) and item.value is None
            ]
            assert bare == [], f"{name}: {node.name} declares {bare}"


def test_the_session_is_one_class_composed_of_parts():
    from rt_notebook.client.session import Session

    assert Session.__mro__ == (Session, object)
    tree = _tree("client/session.py")
    (session,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Session"]
    # Each method is short: a delegation (the docstring aside).
    for method in session.body:
        if isinstance(method, ast.FunctionDef) and method.name != "__init__":
            body = method.body[1:] if ast.get_docstring(method) else method.body
            assert len(body) <= 5, f"Session.{method.name} does the work itself"


def test_entry_points_called_from_many_threads_at_once_keep_each_answer_with_its_question(
    session,
):
    """A widget thread and cells use the Session at the same time: every answer is its
    own question's, every message arrives, readers see a consistent mirror."""
    answers: dict[str, str] = {}
    problems: list[BaseException] = []
    start = threading.Barrier(4)

    def asker(n: int) -> None:
        try:
            start.wait(WAIT)
            for turn in range(3):
                question = f"thread{n}-turn{turn}"
                answers[question] = session.ask(question).wait(WAIT).text
        except BaseException as exc:  # reported below, with the thread's failure
            problems.append(exc)

    def widget() -> None:
        try:
            start.wait(WAIT)
            for n in range(5):
                session.append_audio(b"\x00\x01" * 240)
                session.add_message(f"note {n}")
                ids = session.item_ids()
                assert len(ids) == len(set(ids))
                assert session.settings is not None
        except BaseException as exc:
            problems.append(exc)

    threads = [threading.Thread(target=asker, args=(n,)) for n in range(3)]
    threads.append(threading.Thread(target=widget))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT * 3)
    assert problems == []
    assert len(answers) == 9
    for question, answer in answers.items():
        assert question in answer
    texts = [item.text for item in session.items if item.role == "user"]
    assert sorted(t for t in texts if t.startswith("note")) == [f"note {n}" for n in range(5)]
