"""The tutorial notebooks, executed top to bottom in a real kernel against the embedded server.

Each notebook in ``notebooks/`` runs with nbclient in a fresh ``python3`` kernel whose
environment holds no OpenAI or Azure credentials, so rt_notebook starts its embedded offline
server (the deterministic echo responder). A run fails on any cell error (nbclient raises), on
a traceback printed by a background thread, and on any expected output that is missing.

Expected outputs live in the notebook itself, in a code cell's metadata::

    "metadata": {"rt_notebook_test": {"expect": ["Echo: Hello", "completed"]}}

(a string or a list of strings). Each string must occur in the text of that cell's outputs
after the run: stream text, ``text/plain`` and ``text/markdown`` of displays, display updates
and results, and error names and values. They describe offline runs only: the same notebooks
run unchanged against the real service, where the answers differ.

Each notebook also runs twice in one kernel ("Run All" clicked again): re-run cells replace
their own turns, so nothing fails and no conversation is left inconsistent.

A second run of each notebook stands in for the real service: ``OPENAI_API_KEY`` is set and
``OPENAI_BASE_URL`` points the openai SDK at a local server whose answers repeat nothing, so
the cells guarded by a key run, and a cell that relied on echoes would fail.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from tests.timing import within

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"


def tutorials() -> list[Path]:
    """The tutorials: the notebooks git tracks in ``notebooks/``, not whatever running them
    left in the folder (exports, a copy saved from JupyterLab). Outside a git checkout (an
    sdist), every notebook in the folder."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--", "notebooks/*.ipynb"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    return sorted(ROOT / name for name in listed)


NOTEBOOKS = tutorials()


def tracked_text(path: Path, root: Path = ROOT) -> str:
    """The tutorial as git tracks it (the index) in the checkout at ``root``: running it in
    JupyterLab, which saves outputs into the working copy, changes nothing here. Outside
    git, the file."""
    relative = path.relative_to(root).as_posix()
    try:
        return subprocess.run(
            ["git", "show", f":{relative}"], cwd=root, capture_output=True, check=True
        ).stdout.decode("utf-8")
    except (OSError, subprocess.CalledProcessError):
        return path.read_text(encoding="utf-8")


def read_tutorial(path: Path) -> Any:
    return nbformat.reads(tracked_text(path), as_version=4)


MARK = "rt_notebook_test"
CELL_TIMEOUT = int(within(60))  # seconds per cell; the offline server answers in well under one
# Every tutorial must check at least this many outputs, so a silently broken cell shows.
MIN_EXPECTATIONS = 3


def expectations(cell: Any) -> list[str]:
    """The substrings a cell's outputs must contain (from its ``rt_notebook_test`` metadata)."""
    expect = cell.get("metadata", {}).get(MARK, {}).get("expect", [])
    return [expect] if isinstance(expect, str) else list(expect)


def output_text(cell: Any) -> str:
    """Everything a reader sees in a code cell's outputs, as one string."""
    pieces: list[str] = []
    for output in cell.get("outputs", []):
        kind = output.get("output_type")
        if kind == "stream":
            pieces.append(output.get("text", ""))
        elif kind in ("display_data", "execute_result", "update_display_data"):
            data = output.get("data", {})
            for mime in ("text/markdown", "text/plain"):
                value = data.get(mime, "")
                pieces.append(value if isinstance(value, str) else "".join(value))
        elif kind == "error":
            pieces.append(f"{output.get('ename')}: {output.get('evalue')}")
    return "\n".join(pieces)


def missing_expectations(notebook: Any) -> list[str]:
    """One line per expected substring that no output of its cell contains."""
    missing = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        text = output_text(cell)
        for expected in expectations(cell):
            if expected not in text:
                source = cell.source.splitlines()[0] if cell.source else ""
                missing.append(
                    f"cell {index} ({source!r}): expected {expected!r} in outputs {text[:400]!r}"
                )
    return missing


def kernel_env() -> dict[str, str]:
    """This process's environment without credentials: the kernel must run offline."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_OPENAI"))}


def execute(path: Path, workdir: Path, env: dict[str, str] | None = None) -> Any:
    """Run the tutorial at ``path`` (as git tracks it) in a fresh kernel started in
    ``workdir``; return it."""
    notebook = read_tutorial(path)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute(env=kernel_env() if env is None else env)
    return notebook


# Run in the kernel after the tutorial: every function_call_output of every Session answers
# a function call that stands before it (none orphaned), with only its round's other calls
# and outputs in between (where a re-run cell put it, not at the end).
CONSISTENCY_CHECK = """
from rt_notebook.client import registry as _registry
problems = []
for session in list(_registry._sessions.values()):
    items = session.items
    for index, item in enumerate(items):
        if item.type != "function_call_output":
            continue
        calls = [j for j in range(index) if items[j].type == "function_call"
                 and items[j].call_id == item.call_id]
        if not calls:
            problems.append(f"{session.name}: output {item.id} answers no call before it")
        elif any(items[j].type == "message" for j in range(calls[-1] + 1, index)):
            problems.append(f"{session.name}: output {item.id} stands apart from its call")
print("conversation problems:", problems)
"""


def execute_twice(path: Path, workdir: Path) -> Any:
    """Run the tutorial at ``path`` top to bottom twice in one kernel, as "Run All" clicked
    twice does, then :data:`CONSISTENCY_CHECK`; return it as the second run left it, the
    check's cell last. A cell error raises."""
    notebook = read_tutorial(path)
    notebook.cells.append(nbformat.v4.new_code_cell(CONSISTENCY_CHECK))
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    )
    with client.setup_kernel(env=kernel_env()):
        for _ in range(2):
            for index, cell in enumerate(notebook.cells[:-1]):
                client.execute_cell(cell, index)
        client.execute_cell(notebook.cells[-1], len(notebook.cells) - 1)
    return notebook


def tracebacks(notebook: Any) -> list[str]:
    """Tracebacks printed: errors in background threads do not fail a cell, but show (in a
    stream; an answer may quote one, as ``%realtime fix`` sends a traceback)."""
    return [
        f"cell {index}: {printed[-600:]}"
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        for printed in [_printed(cell)]
        if "Traceback (most recent call last)" in printed
    ]


def _printed(cell: Any) -> str:
    return "".join(
        o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream"
    )


def _ids(path: Path) -> str:
    return path.stem


# Static checks: no kernel -------------------------------------------------------------


def test_the_tutorials_are_there():
    names = {path.name for path in NOTEBOOKS}
    assert {
        "quickstart.ipynb",
        "function_calling.ipynb",
        "conversation_control.ipynb",
        "configuration.ipynb",
    } <= names


def test_tutorials_are_what_git_tracks(tmp_path):
    """A notebook the tutorials leave behind is not taken for a tutorial."""
    assert {path.parent for path in NOTEBOOKS} == {NOTEBOOK_DIR}
    stray = NOTEBOOK_DIR / "exports" / "chat.ipynb"
    assert stray not in NOTEBOOKS
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(stray)], cwd=ROOT, check=False
    ).returncode
    assert ignored == 0, "notebooks/exports/ is not ignored by git"


def test_a_tutorial_saved_with_outputs_is_not_what_the_tests_read(tmp_path):
    """JupyterLab autosaves outputs into the working copy: the checks read git's copy.
    (In a checkout of its own: no test writes into this one's notebooks/.)"""
    original = NOTEBOOKS[0].read_bytes()
    path = tmp_path / "notebooks" / NOTEBOOKS[0].name
    path.parent.mkdir()
    path.write_bytes(original)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "notebooks"], cwd=tmp_path, check=True)
    notebook = nbformat.reads(original.decode("utf-8"), as_version=4)
    code = next(cell for cell in notebook.cells if cell.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="ran\n")]
    code.execution_count = 1
    nbformat.write(notebook, str(path))
    tracked = nbformat.reads(tracked_text(path, tmp_path), as_version=4)
    assert all(c.outputs == [] for c in tracked.cells if c.cell_type == "code")
    assert tracked_text(path, tmp_path) == original.decode("utf-8")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_notebook_is_saved_clean(path):
    """Saved without outputs (the repo stays small), with no credentials in it, and with the
    metadata JupyterLab writes (so opening it does not mark it modified)."""
    notebook = read_tutorial(path)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {index} of {path.name} has saved outputs"
            assert cell.execution_count is None, f"cell {index} of {path.name} was executed"
    text = tracked_text(path)
    assert not re.search(r"sk-[A-Za-z0-9_-]{16,}", text), "an API key is written in the notebook"
    assert notebook.metadata["kernelspec"] == {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    assert notebook.metadata["language_info"]["codemirror_mode"] == {
        "name": "ipython",
        "version": 3,
    }
    assert notebook.nbformat_minor == 5


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_notebook_checks_its_outputs(path):
    notebook = read_tutorial(path)
    count = sum(len(expectations(cell)) for cell in notebook.cells)
    assert count >= MIN_EXPECTATIONS, f"{path.name} checks only {count} outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_readme_links_the_notebook(path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"notebooks/{path.name}" in readme


def test_the_quickstart_points_to_every_other_tutorial():
    quickstart = read_tutorial(NOTEBOOK_DIR / "quickstart.ipynb")
    (next_list,) = [c.source for c in quickstart.cells if c.source.startswith("## Next")]
    others = [path.name for path in NOTEBOOKS if path.name != "quickstart.ipynb"]
    assert others
    assert [name for name in others if f"]({name})" not in next_list] == []


def test_readme_opens_the_quickstart_on_binder():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    badge = re.search(r"\[!\[Binder\]\(https://mybinder.org/badge_logo.svg\)\]\(([^)]+)\)", readme)
    assert badge, "no Binder badge in the README"
    assert re.fullmatch(
        r"https://mybinder.org/v2/gh/[^/]+/[^/]+/HEAD\?urlpath=lab/tree/notebooks/quickstart.ipynb",
        badge.group(1),
    )


def test_binder_installs_this_package():
    """repo2docker runs pip from the repository root: ".[lab]" is rt_notebook itself with
    JupyterLab and sidecar (its `lab` extra)."""
    lines = (ROOT / "binder" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert ".[lab]" in [line.strip() for line in lines]
    assert (ROOT / "binder" / "runtime.txt").read_text(encoding="utf-8").strip() == "python-3.11"


def test_missing_expectation_is_reported():
    """The checker itself: a missing substring is reported, a present one is not."""
    cell = nbformat.v4.new_code_cell("print('hello')")
    cell.metadata[MARK] = {"expect": ["hello", "goodbye"]}
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    markdown = nbformat.v4.new_code_cell("%%realtime\nhi")
    markdown.metadata[MARK] = {"expect": "Echo: hi"}
    markdown.outputs = [
        nbformat.v4.new_output(
            "display_data", data={"text/markdown": "Echo: hi\n\n*footer*", "text/plain": "x"}
        )
    ]
    notebook = nbformat.v4.new_notebook(cells=[cell, markdown])
    missing = missing_expectations(notebook)
    assert len(missing) == 1
    assert "'goodbye'" in missing[0]


def test_the_kernel_gets_no_credentials(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-notebooks")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "not-for-notebooks")
    monkeypatch.setenv("RT_NOTEBOOK_EXAMPLE", "kept")
    env = kernel_env()
    assert "OPENAI_API_KEY" not in env
    assert "AZURE_OPENAI_API_KEY" not in env
    assert env["RT_NOTEBOOK_EXAMPLE"] == "kept"


# Executed in a real kernel ------------------------------------------------------------


@pytest.mark.kernel
@pytest.mark.timeout(within(300))
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_notebook_runs_offline(path, tmp_path):
    notebook = execute(path, tmp_path)
    assert not missing_expectations(notebook), "\n".join(missing_expectations(notebook))
    assert not tracebacks(notebook), "\n".join(tracebacks(notebook))
    offline = [
        cell
        for cell in notebook.cells
        if cell.cell_type == "code" and "offline server" in output_text(cell)
    ]
    assert offline, "no answer says it came from the offline server"


@pytest.mark.kernel
@pytest.mark.timeout(within(600))
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_notebook_runs_twice_in_one_kernel(path, tmp_path):
    """Run All again without restarting the kernel: no cell fails, every re-run
    ``%%realtime`` cell replaces its own turn (tool rounds included) and says what it said
    the first time, and no conversation holds an output whose call is gone. (Python cells
    that read the conversation see what the first run left in it, so only the cells'
    own answers are checked against the first run's expectations.)"""
    notebook = execute_twice(path, tmp_path)
    assert output_text(notebook.cells[-1]).strip() == "conversation problems: []"
    answers = nbformat.v4.new_notebook(
        cells=[cell for cell in notebook.cells if cell.source.startswith("%%realtime")]
    )
    assert not missing_expectations(answers), "\n".join(missing_expectations(answers))
    assert not tracebacks(notebook), "\n".join(tracebacks(notebook))


# A stand-in for the real service: what a key changes -------------------------------------

# Answers unlike the echo, as a model's would be; function calls still follow the offline rule.
MODEL_LIKE_SCRIPT = {
    "rules": [{"match": "returned:", "reply": "The tool result is in: thank you."}],
    "fallback": "A model-like answer that repeats nothing.",
}


@pytest.fixture(scope="module")
def model_like_server(tmp_path_factory):
    from rt_notebook.server import EmbeddedServer

    script = tmp_path_factory.mktemp("script") / "script.json"
    script.write_text(json.dumps(MODEL_LIKE_SCRIPT), encoding="utf-8")
    with EmbeddedServer(responder="scripted", script=script, pace=0.0) as server:
        yield server


@pytest.mark.kernel
@pytest.mark.timeout(within(300))
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_notebook_runs_unchanged_with_a_key(path, tmp_path, model_like_server):
    """With OPENAI_API_KEY set, the cells that need a key run, and nothing relies on echoes.

    The openai SDK sends the kernel's "real service" traffic to OPENAI_BASE_URL: here a local
    server whose answers repeat nothing. The expected outputs describe offline runs, so they
    are not checked; errors and tracebacks are.
    """
    env = kernel_env()
    env["OPENAI_API_KEY"] = model_like_server.token
    env["OPENAI_BASE_URL"] = model_like_server.base_url
    notebook = execute(path, tmp_path, env)
    assert not tracebacks(notebook), "\n".join(tracebacks(notebook))
    outputs = [output_text(cell) for cell in notebook.cells if cell.cell_type == "code"]
    assert any(MODEL_LIKE_SCRIPT["fallback"] in text for text in outputs)
    assert not any("skipping the real service" in text for text in outputs)
