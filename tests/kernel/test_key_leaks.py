"""No API key in a saved notebook that pokes at a Session (a real kernel, run by nbclient).

The kernel gets a fake key through ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` pointing at
a relay on 127.0.0.1 in front of an embedded server that accepts exactly that key; the
relay answers a message containing ``ECHO-KEY`` with an ``error`` event that echoes the
bearer token it received, as some servers do. The notebook shows the status, the repr,
``vars(session)``, that error and ``session.errors``, ``%realtime events``, a verbose
traceback, and DEBUG logging of ``websockets`` and ``openai`` on stdout; under
``%xmode Verbose`` it makes typos and type errors in ``connect()`` and ``Session()``, runs
a tool whose error echoes the key while ``%realtime record`` records, and exports the chat
panel's transcript (JSON, dict, Markdown, cells, a notebook file); it is saved, and the
file, the recording and the exported notebook are searched for the key.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.timing import PROCESS_WAIT, within

pytestmark = pytest.mark.timeout(within(300))

KEY = "sk-proj-LEAKCHECK0123456789abcdefghijklmnop"

CELLS = {
    "setup": (
        "%load_ext rt_notebook\n"
        "import logging, os, sys\n"
        "import rt_notebook\n"
        "logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, force=True)\n"
        "for name in ('websockets', 'openai', 'httpx', 'httpcore', 'rt_notebook'):\n"
        "    logging.getLogger(name).setLevel(logging.DEBUG)\n"
        "s = rt_notebook.connect()\n"
        "print(s.endpoint.offline)"
    ),
    "answer": "%%realtime\nSay hello",
    "status": "%realtime status",
    "repr": "print(repr(s), repr(s.endpoint), s.endpoint.describe())\ns",
    "vars": (
        "explicit = rt_notebook.connect('explicit', api_key=os.environ['OPENAI_API_KEY'])\n"
        "vars(s), vars(explicit)"
    ),
    "options": "explicit.options",
    "echoed_error": (
        "try:\n"
        "    s.add_message('ECHO-KEY please')\n"
        "except Exception as error:\n"
        "    print(type(error).__name__, error, repr(error), getattr(error, 'error', None))"
    ),
    "errors": "s.errors",
    "events": "%realtime events 50",
    "traceback": "%xmode Verbose\ns.add_message('ECHO-KEY again')",
    "connect_traceback": (
        "%xmode Verbose\n"
        "rt_notebook.connect('broken', base_url='http://127.0.0.1:9/v1',"
        " websocket_base_url='ws://127.0.0.1:9/v1', timeout=5)"
    ),
    "log_records": "print(len(logging.getLogger('websockets.client').filters))",
    # Typos and wrong types under %xmode Verbose (which prints every frame's variables).
    "connect_typo": (
        "%xmode Verbose\nrt_notebook.connect('typo', api_key=os.getenv('OPENAI_API_KEY'), tmeout=5)"
    ),
    "connect_wrong_type": (
        "%xmode Verbose\n"
        "rt_notebook.connect('wrong', api_key=os.getenv('OPENAI_API_KEY'), modalities=5)"
    ),
    "session_typo": (
        "%xmode Verbose\n"
        "rt_notebook.Session(api_key=os.getenv('OPENAI_API_KEY'), modalitis=['text'])"
    ),
    "session_wrong_type": (
        "%xmode Verbose\nrt_notebook.Session(api_key=os.getenv('OPENAI_API_KEY'), modalities=5)"
    ),
    # The user's own frame: a variable holding the key, os.environ (shown whole).
    "own_variable": (
        "key = os.environ['OPENAI_API_KEY']\n"
        "%xmode Verbose\n"
        "rt_notebook.connect('own', api_key=key, tmeout=5)"
    ),
    "environ": (
        "%xmode Verbose\nrt_notebook.connect('env', api_key=os.environ['OPENAI_API_KEY'], tmeout=5)"
    ),
    "record": "%realtime record recording.jsonl",
    "tool_echo": (
        "def leak_secret() -> str:\n"
        '    """Leak the secret."""\n'
        "    raise RuntimeError('the key is ' + os.getenv('OPENAI_API_KEY'))\n"
        "s.register_tool(leak_secret)\n"
        "r = s.ask('call leak_secret').wait(60)\n"
        "assert s.tools.round_for(r.id).wait(60)\n"
        "follow_up = s.ask('echo the tool result').wait(60)\n"
        "print([item.type for item in s.items][-5:])"
    ),
    "record_stop": "%realtime record --stop",
    "export": (
        "from rt_notebook.frontends.chat import ChatPanel\n"
        "panel = ChatPanel(s)\n"
        "print(panel.to_json())\n"
        "print(panel.to_dict())\n"
        "print(panel.to_markdown())\n"
        "print(panel.to_cells())\n"
        "import nbformat; nbformat.write(panel.to_notebook(), 'exported.ipynb')"
    ),
    # Asked for: a raw recording keeps the frames (the key an error echoed), with a warning.
    "raw_record": (
        "%realtime record raw.jsonl --raw\n"
        "try:\n"
        "    s.add_message('ECHO-KEY raw')\n"
        "except Exception as error:\n"
        "    print(type(error).__name__)\n"
    ),
    "raw_record_stop": "%realtime record --stop",
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, nbformat.NotebookNode]:
    from nbclient import NotebookClient

    from rt_notebook.server import EmbeddedServer

    folder = tmp_path_factory.mktemp("keyleak")
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source, id=name) for name, source in CELLS.items()]
    )
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    with EmbeddedServer(pace=0.0, token=KEY) as server, pytest.MonkeyPatch.context() as env:
        relay = _KeyEchoRelay(server.websocket_base_url).start()
        for name in list(os.environ):
            if name.startswith(("OPENAI_", "AZURE_OPENAI")):
                env.delenv(name)
        env.setenv("OPENAI_API_KEY", KEY)
        env.setenv("OPENAI_BASE_URL", relay.base_url)
        client = NotebookClient(
            notebook,
            timeout=PROCESS_WAIT,
            kernel_name="python3",
            allow_errors=True,
            resources={"metadata": {"path": str(folder)}},
        )
        client.execute()
    path = folder / "poked.ipynb"
    nbformat.write(notebook, str(path))
    return path, notebook


class _KeyEchoRelay:
    """A websockets relay that answers ``ECHO-KEY`` with an error echoing the bearer token."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rsplit("/v1", 1)[0]
        self.port = 0
        self._ready = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> _KeyEchoRelay:
        threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True).start()
        assert self._ready.wait(30), "the relay did not start"
        return self

    async def _main(self) -> None:
        from websockets.asyncio.server import serve

        async with serve(self._relay, "127.0.0.1", 0) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await asyncio.Future()

    async def _relay(self, client: Any) -> None:
        from websockets.asyncio.client import connect

        bearer = client.request.headers.get("Authorization", "")
        headers = {"Authorization": bearer}
        async with connect(self.upstream + client.request.path, additional_headers=headers) as up:

            async def down() -> None:
                async for message in up:
                    await client.send(message)

            async def forward() -> None:
                async for message in client:
                    event = json.loads(message)
                    if "ECHO-KEY" not in message:
                        await up.send(message)
                        continue
                    error = {
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                        "message": f"Incorrect API key provided: {bearer.split()[-1]}.",
                        "param": f"headers.authorization={bearer}",
                        "event_id": event.get("event_id"),
                    }
                    await client.send(
                        json.dumps({"type": "error", "event_id": "evt_1", "error": error})
                    )

            tasks = [asyncio.create_task(down()), asyncio.create_task(forward())]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()


def _cell_text(notebook: nbformat.NotebookNode, name: str) -> str:
    cell = next(c for c in notebook.cells if c.get("id") == name)
    return nbformat.writes(nbformat.v4.new_notebook(cells=[cell]))


def test_the_notebook_really_talked_to_the_server(saved):
    _, notebook = saved
    assert "False" in _cell_text(notebook, "setup")  # not the offline server: the key's
    assert "Echo: Say hello" in _cell_text(notebook, "answer")
    assert "Authorization" in _cell_text(notebook, "setup")  # DEBUG logging is on
    assert '"1' in _cell_text(notebook, "log_records")  # the filter is installed
    assert "invalid_api_key" in _cell_text(notebook, "echoed_error")  # the server's error
    for verbose in ("traceback", "connect_traceback"):  # the whole traceback, with locals
        assert "Traceback (most recent call last)" in _cell_text(notebook, verbose)


def test_the_typos_failed_where_the_user_made_them(saved):
    _, notebook = saved
    assert "unexpected keyword argument 'tmeout'" in _cell_text(notebook, "connect_typo")
    connect_frame = _cell_text(notebook, "connect_wrong_type")
    assert "not iterable" in connect_frame
    assert "Secret(" in connect_frame  # connect's and the Session's frames show the wrapper
    assert "unexpected keyword argument 'modalitis'" in _cell_text(notebook, "session_typo")
    session_frame = _cell_text(notebook, "session_wrong_type")
    assert "not iterable" in session_frame
    assert "api_key=Secret(" in session_frame  # the verbose frame shows the wrapper


def test_a_users_own_frame_fails_at_the_call(saved):
    _, notebook = saved
    for name in ("own_variable", "environ"):
        assert "unexpected keyword argument 'tmeout'" in _cell_text(notebook, name)


def test_the_tool_echoed_the_key_into_the_conversation(saved):
    _, notebook = saved
    assert "function_call_output" in _cell_text(notebook, "tool_echo")
    exported = _cell_text(notebook, "export")
    assert "the key is ***" in exported  # the tool's error, scrubbed in every export
    assert exported.count("function_call_output") >= 2  # to_json and to_dict


@pytest.mark.parametrize("name", ["recording.jsonl", "exported.ipynb"])
def test_the_files_the_notebook_wrote_hold_no_key(saved, name):
    path, _ = saved
    text = (path.parent / name).read_text(encoding="utf-8")
    assert "leak_secret" in text  # the file holds the tool round
    assert text.count(KEY) == 0


def test_a_raw_recording_keeps_the_key_and_says_so(saved):
    path, notebook = saved
    assert (path.parent / "raw.jsonl").read_text(encoding="utf-8").count(KEY) >= 1
    shown = _cell_text(notebook, "raw_record")
    assert "recording raw frames" in shown
    assert "ServerError" in shown


@pytest.mark.parametrize("name", list(CELLS))
def test_no_cell_output_holds_the_key(saved, name):
    _, notebook = saved
    assert _cell_text(notebook, name).count(KEY) == 0


def test_the_saved_file_holds_no_key(saved):
    path, _ = saved
    assert path.read_text(encoding="utf-8").count(KEY) == 0
