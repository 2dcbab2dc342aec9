"""notebooks/local_model.ipynb with a local model set: the stand-in Chat Completions server
of tests/chat_standin.py counts as one. (Its run with nothing set is test_notebooks.py's.)"""

from __future__ import annotations

from collections.abc import Iterator

import nbformat
import pytest
from nbclient import NotebookClient

from tests.chat_standin import MODEL, ChatStandIn
from tests.test_notebooks import (
    CELL_TIMEOUT,
    NOTEBOOK_DIR,
    execute,
    kernel_env,
    output_text,
    read_tutorial,
    tracebacks,
)
from tests.timing import within

NOTEBOOK = NOTEBOOK_DIR / "local_model.ipynb"


@pytest.fixture(scope="module")
def standin() -> Iterator[ChatStandIn]:
    with ChatStandIn() as server:
        yield server


@pytest.mark.kernel
@pytest.mark.timeout(within(300))
def test_local_model_tutorial_talks_to_the_local_model(standin: ChatStandIn, tmp_path) -> None:
    env = kernel_env()
    env["RT_NOTEBOOK_CHAT_BASE_URL"] = standin.base_url
    env["RT_NOTEBOOK_CHAT_MODEL"] = MODEL
    notebook = execute(NOTEBOOK, tmp_path, env)
    assert not tracebacks(notebook), "\n".join(tracebacks(notebook))
    text = "\n".join(output_text(cell) for cell in notebook.cells if cell.cell_type == "code")
    assert "A local model is configured" in text
    assert f"local model {MODEL} via {standin.base_url}" in text  # status and footers
    assert "offline server" not in text
    answers = [
        output_text(cell)
        for cell in notebook.cells
        if cell.cell_type == "code" and cell.source.startswith("%%realtime")
    ]
    assert answers
    for answer in answers:  # each footer names the local model
        assert f"local model {MODEL} via {standin.base_url}" in answer
    assert "You said: In one sentence: what is a Jupyter notebook?" in text
    assert "Echo:" not in text
    assert "drizzle" in text  # the tool ran in the kernel, and the model read its output
    bodies = [request["body"] for request in standin.requests]
    assert any(
        message == {"role": "system", "content": "Answer like a pirate."}
        for body in bodies
        for message in body["messages"]
    )
    assert any(body["messages"][-1]["role"] == "tool" for body in bodies)
    # the second turn carried the first one: a conversation, not single questions
    assert bodies[1]["messages"][:2] == [
        {"role": "user", "content": "In one sentence: what is a Jupyter notebook?"},
        {"role": "assistant", "content": "You said: In one sentence: what is a Jupyter notebook?"},
    ]


@pytest.mark.kernel
@pytest.mark.timeout(within(300))
def test_local_model_tutorial_with_config_and_a_key(standin: ChatStandIn, tmp_path) -> None:
    """``%config RealtimeMagics.chat_*`` instead of the environment; the key never shows."""
    key = "sk-local-notebook-key-0123456789abcdef"
    standin.requests.clear()
    notebook = read_tutorial(NOTEBOOK)
    config = nbformat.v4.new_code_cell(
        f'%load_ext rt_notebook\n%config RealtimeMagics.chat_base_url = "{standin.base_url}"\n'
        f'%config RealtimeMagics.chat_model = "{MODEL}"'
    )
    notebook.cells.insert(0, config)
    env = kernel_env()
    env["RT_NOTEBOOK_CHAT_API_KEY"] = key
    NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute(env=env)
    assert not tracebacks(notebook), "\n".join(tracebacks(notebook))
    text = "\n".join(output_text(cell) for cell in notebook.cells if cell.cell_type == "code")
    assert f"local model {MODEL} via {standin.base_url}" in text
    assert "You said: In one sentence" in text
    assert "drizzle" in text
    assert key not in nbformat.writes(notebook)  # outputs, metadata, widget state
    assert {request["headers"]["authorization"] for request in standin.requests} == {
        f"Bearer {key}"
    }
