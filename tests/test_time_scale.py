"""Every ceiling in the tests follows ``RT_TEST_TIME_SCALE`` (see ``tests/timing.py``): a
busy machine stretches them all with one number, so a ceiling written as a bare number is
a test that fails only under load."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def unscaled_timeout_marks(source: str) -> list[int]:
    """Lines of ``pytest.mark.timeout(N)`` whose ceiling is not ``within(...)``."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "timeout"
            and isinstance(node.func.value, ast.Attribute)
            and node.func.value.attr == "mark"
        ):
            ceiling = node.args[0] if node.args else None
            scaled = (
                isinstance(ceiling, ast.Call)
                and isinstance(ceiling.func, ast.Name)
                and ceiling.func.id == "within"
            )
            if not scaled:
                lines.append(node.lineno)
    return lines


def test_the_check_finds_an_unscaled_ceiling():
    source = "import pytest\n@pytest.mark.timeout(300)\ndef test(): ...\n"
    assert unscaled_timeout_marks(source) == [2]
    assert unscaled_timeout_marks(source.replace("(300)", "(within(300))")) == []


def test_every_timeout_mark_follows_the_time_scale():
    found = {
        str(path.relative_to(TESTS)): lines
        for path in sorted(TESTS.rglob("*.py"))
        if (lines := unscaled_timeout_marks(path.read_text(encoding="utf-8")))
    }
    assert found == {}, "write pytest.mark.timeout(within(N)) (tests/timing.py)"
