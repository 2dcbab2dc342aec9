"""%realtime resume in real kernels: a notebook saved from one kernel's IOPub messages (as
a front end saves it), its conversation rebuilt in a fresh kernel without asking the model,
against the embedded server through the real SDK."""

from __future__ import annotations

import json
import uuid

import pytest

from .harness import Execution, Kernel
from .test_tools_kernel import collect

pytestmark = pytest.mark.kernel

SETUP = """
import json, os, tempfile
%load_ext rt_notebook
import rt_notebook
from rt_notebook.server import EmbeddedServer
from rt_notebook.protocol.conversation import Conversation
server = EmbeddedServer(pace=0.0).start()
%config RealtimeMagics.url = server.websocket_base_url
os.environ['OPENAI_API_KEY'] = server.token
%realtime connect
from rt_notebook.client.registry import get_session
session = get_session("default")

@session.tool
def get_weather(city: str) -> str:
    '''Get the current weather for a city.'''
    return f"It is foggy in {city}."

@session.tool
def read_token(name: str) -> str:
    '''Read a token from the environment.'''
    return "the token is " + os.environ["OPENAI_API_KEY"]

def rows():
    '''The conversation as (type, role, text or output), in order.'''
    return [[i.type, i.role, i.output if i.type == "function_call_output" else i.text]
            for i in session.items]

def server_rows(path):
    '''What the server itself echoed on the last connection of a recording, in order.'''
    received = [json.loads(line)["data"] for line in open(path)]
    starts = [n for n, e in enumerate(received) if e.get("type") == "session.created"]
    mirror = Conversation()
    for event in received[starts[-1]:]:
        mirror.apply(event)
    return [[i.type, i.role, i.output if i.type == "function_call_output" else i.text]
            for i in mirror.items]
"""


def make_kernel() -> Kernel:
    kernel = Kernel()
    setup = kernel.execute(SETUP)
    assert setup.status == "ok", setup.error_text()
    return kernel


def value(kernel: Kernel, expression: str):
    run = kernel.execute(f"print(json.dumps({expression}))")
    assert run.status == "ok", run.error_text()
    return json.loads(run.stream_text())


def run_cell(kernel: Kernel, source: str, cell_id: str) -> Execution:
    client = kernel.client
    content = {
        "code": source,
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }
    message = client.session.msg("execute_request", content, metadata={"cellId": cell_id})
    client.shell_channel.send(message)
    return collect(kernel, message["header"]["msg_id"])


def saved_cell(source: str, cell_id: str, run: Execution) -> dict:
    """The cell as a front end saves it: display updates applied by display id, with
    their metadata; errors as error outputs."""
    outputs: list[dict] = []
    by_id: dict[str, int] = {}
    for message in run.of_type("display_data", "update_display_data", "error", "stream"):
        content, kind = message["content"], message["msg_type"]
        if kind == "error":
            outputs.append({"output_type": "error", **content})
            continue
        if kind == "stream":
            stream = {"output_type": "stream", "name": content["name"], "text": content["text"]}
            outputs.append(stream)
            continue
        output = {
            "output_type": "display_data",
            "data": content["data"],
            "metadata": content.get("metadata", {}),
        }
        display_id = content.get("transient", {}).get("display_id")
        if kind == "update_display_data":
            outputs[by_id[display_id]] = output
            continue
        if display_id is not None:
            by_id[display_id] = len(outputs)
        outputs.append(output)
    return {
        "id": cell_id,
        "cell_type": "code",
        "metadata": {},
        "source": source,
        "outputs": outputs,
        "execution_count": None,
    }


def notebook(cells: list[dict]) -> dict:
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A notebook with a tool round, an audio answer, a re-run cell, errored cells, an
    image whose file then goes, and a tool whose output holds the key; and the rows the
    conversation held when it was saved."""
    folder = tmp_path_factory.mktemp("resume")
    kernel = make_kernel()
    try:
        picture = folder / "dot.png"
        kept = folder / "kept.png"
        made = kernel.execute(
            "from PIL import Image\n"
            f"Image.new('RGB', (64, 32), 'blue').save({str(picture)!r})\n"
            f"Image.new('RGB', (40, 30), 'red').save({str(kept)!r})"
        )
        assert made.status == "ok", made.error_text()
        cells = []

        def cell(source: str, cell_id: str | None = None) -> Execution:
            cell_id = cell_id or uuid.uuid4().hex[:8]
            run = run_cell(kernel, source, cell_id)
            new = saved_cell(source, cell_id, run)
            ids = [c["id"] for c in cells]
            if cell_id in ids:  # a re-run: the cell keeps its place, with its new outputs
                cells[ids.index(cell_id)] = new
            else:
                cells.append(new)
            return run

        assert cell("%%realtime --no-response --role system\nThe user is Ada.").status == "ok"
        assert cell("%%realtime\nWhat is the weather in London?").status == "ok"
        spoken = cell("%%realtime --modalities audio\nsay hello")
        assert spoken.status == "ok", spoken.error_text()
        assert cell("%%realtime\nfirst version", "rerun").status == "ok"
        assert cell("x = 1 / 0").status == "error"
        assert cell("%realtime fix").status == "ok"  # a line magic's answer: resumed too
        assert cell("%%realtime --image no_such_picture\nlook").status == "error"
        assert cell(f"%%realtime --image {picture}\nwhat is this?").status == "ok"
        assert cell('%%realtime\ncall read_token {"name": "key"}').status == "ok"
        assert cell("%%realtime\nsecond version", "rerun").status == "ok"
        assert cell(f"%%realtime --image {kept}\nand this one?").status == "ok"
        kept_hash = value(kernel, "session.items[-2].images[0].sha256")
        rows = value(kernel, "rows()")
        token = value(kernel, "server.token")
    finally:
        kernel.shutdown()
    path = folder / "analysis.ipynb"
    path.write_text(json.dumps(notebook(cells)))
    picture.unlink()  # the image file is gone by the time the notebook reopens
    return path, rows, token, kept_hash


@pytest.fixture
def fresh():
    kernel = make_kernel()
    yield kernel
    kernel.shutdown()


def test_the_saved_metadata_holds_the_turns_and_never_the_key(saved):
    path, _, token, _ = saved
    text = path.read_text()
    assert token not in text
    turns = [
        output["metadata"]["rt_notebook"]["turn"]
        for cell in json.loads(text)["cells"]
        for output in cell["outputs"]
        if "turn" in output.get("metadata", {}).get("rt_notebook", {})
    ]
    kinds = [item["type"] for turn in turns for item in turn["items"]]
    assert kinds.count("function_call") == 2
    assert kinds.count("function_call_output") == 2
    items = [item for turn in turns for item in turn["items"]]
    outputs = [i["output"] for i in items if i["type"] == "function_call_output"]
    assert "the token is ***" in outputs
    # Images as their label, hash and source: the bytes are not stored again.
    images = [i["images"] for t in turns for i in t["items"] if i.get("images")]
    assert len(images) == 2
    assert images[0][0]["label"] == "image 64\u00d732 PNG, 1 KB"
    assert images[0][0]["source"].endswith("dot.png")
    assert "base64" not in json.dumps(turns)


def test_resume_rebuilds_the_conversation_in_a_fresh_kernel(saved, fresh, tmp_path):
    path, rows, token, kept_hash = saved
    # The key a tool returned was never saved: it comes back as ***.
    rows = [[kind, role, (text or "").replace(token, "***")] for kind, role, text in rows]
    record = tmp_path / "server.jsonl"
    assert fresh.execute(f"session.record({str(record)!r})").status == "ok"
    run = fresh.execute(f"%realtime resume {path}")
    assert run.status == "ok", run.error_text()
    report = run.final_markdown() if run.of_type("display_data") else ""
    report = report or run.of_type("execute_result")[0]["content"]["data"]["text/markdown"]
    restored = len(rows)
    assert f"Resumed {restored} items from analysis.ipynb" in report
    # The plain cell that failed is no %%realtime cell; the refused one sent nothing.
    assert "; 1 skipped:\n- skipped cell 7: it was refused before anything was sent" in report
    assert "UsageError: --image no_such_picture" in report
    assert "ZeroDivisionError" not in report
    assert "cell 8: image 64\u00d732 PNG, 1 KB not restored (--image " in report
    assert "dot.png: no such file" in report
    resumed = value(fresh, "rows()")
    # Everything as it was, but the image that could not be read is named instead.
    assert len(resumed) == len(rows)
    for before, after in zip(rows, resumed, strict=True):
        if before[2] == "what is this?":
            assert after[2].startswith("what is this?\n[image 64\u00d732 PNG")
            assert "not restored" in after[2]
        else:
            assert after == before
    # An image whose file is still there is sent again, the same bytes.
    assert value(fresh, "session.items[-2].images[0].sha256") == kept_hash
    # The audio answer came back as its transcript; the re-run cell only once, its last.
    texts = [r[2] for r in resumed]
    assert "the token is ***" in texts
    assert resumed[0] == ["message", "system", "The user is Ada."]  # --no-response: its source
    assert any("ZeroDivisionError" in text and "x = 1 / 0" in text for text in texts)
    assert "Echo: say hello" in texts
    assert "second version" in texts
    assert "first version" not in texts
    # The server holds them, in order: what it echoed on the new connection.
    fresh.execute("session.stop_recording()")
    assert value(fresh, f"server_rows({str(record)!r})") == resumed
    # The next answer is an answer in that conversation, after the old items.
    nxt = fresh.execute("%%realtime\nand now?")
    assert nxt.status == "ok", nxt.error_text()
    assert value(fresh, "rows()")[: len(resumed)] == resumed


def test_a_resumed_cell_run_again_replaces_its_turn(saved, fresh):
    path, rows, _, _ = saved
    assert fresh.execute(f"%realtime resume {path}").status == "ok"
    again = run_cell(fresh, "%%realtime\nthird version", "rerun")
    assert again.status == "ok", again.error_text()
    texts = [r[2] for r in value(fresh, "rows()")]
    assert "second version" not in texts
    assert texts.index("third version") == [r[2] for r in rows].index("second version")
    assert len(texts) == len(rows)


def test_a_session_with_items_needs_replace_or_append(saved, fresh):
    path, rows, _, _ = saved
    assert fresh.execute("%%realtime\nhello there").status == "ok"
    refused = fresh.execute(f"%realtime resume {path}")
    assert "already holds 2 items" in refused.shown_error() + refused.error_text()
    assert "nothing was restored" in refused.shown_error() + refused.error_text()
    assert value(fresh, "len(session.items)") == 2
    appended = fresh.execute(f"%realtime resume {path} --append")
    assert appended.status == "ok", appended.error_text()
    texts = [r[2] for r in value(fresh, "rows()")]
    assert texts[:2] == ["hello there", "Echo: hello there"]
    assert len(texts) == 2 + len(rows)
    # The same notebook again: its items get new ids rather than clash.
    twice = fresh.execute(f"%realtime resume {path} --append")
    assert twice.status == "ok", twice.error_text()
    assert value(fresh, "len(session.items)") == 2 + 2 * len(rows)
    assert value(fresh, "len({i.id for i in session.items})") == 2 + 2 * len(rows)
    replaced = fresh.execute(f"%realtime resume {path} --replace")
    assert replaced.status == "ok", replaced.error_text()
    assert value(fresh, "len(session.items)") == len(rows)


def test_resume_without_a_path_needs_the_notebook_from_the_front_end(saved, fresh):
    path, rows, _, _ = saved
    run = fresh.execute("%realtime resume")
    assert "did not say which notebook this is" in run.shown_error() + run.error_text()
    # JupyterLab's kernel gets JPY_SESSION_NAME; ipykernel puts it in __session__.
    assert fresh.execute(f"__session__ = {str(path)!r}").status == "ok"
    run = fresh.execute("%realtime resume")
    assert run.status == "ok", run.error_text()
    assert value(fresh, "len(session.items)") == len(rows)
