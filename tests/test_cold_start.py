"""Cold start: importing the package has no side effects; ``%load_ext`` imports only the
magics and leaves the heavy work (SDK, views, offline server) to a background thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.timing import PROCESS_WAIT

HEAVY = ("openai", "pydantic", "markdown_it", "websockets", "rt_notebook.render.cell")


def run(code: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_"))}
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=PROCESS_WAIT,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_starts_nothing_and_loads_nothing_heavy():
    found = run(
        "import json, sys, threading\nimport rt_notebook\n"
        "print(json.dumps({'threads': threading.active_count(),"
        f" 'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))"
    )
    assert found == {"threads": 1, "heavy": []}


def test_the_magics_import_nothing_heavy():
    found = run(
        "import json, sys\nimport rt_notebook.frontends.magics\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    assert found == []


def test_load_ext_warms_the_sdk_and_the_offline_server_in_the_background():
    found = run(
        "import json, sys, threading\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "shell.run_line_magic('load_ext', 'rt_notebook')\n"
        "warm = [t for t in threading.enumerate() if t.name == 'rt_notebook-warmup']\n"
        "daemon = all(t.daemon for t in warm)\n"
        "for t in warm: t.join(60)\n"
        "from rt_notebook.client import transport\n"
        "print(json.dumps({'warm': len(warm), 'daemon': daemon,"
        " 'servers': len(transport._embedded),"
        f" 'loaded': [m for m in {HEAVY!r} if m in sys.modules]}}))"
    )
    # Everything heavy a first answer needs, but the Markdown parser: only an answer with
    # something to make inert (a tag, an ampersand, an image) needs that, and loads it.
    loaded = [m for m in HEAVY if m != "markdown_it"]
    assert found == {"warm": 1, "daemon": True, "servers": 1, "loaded": loaded}


def test_load_ext_with_a_key_starts_no_offline_server():
    code = (
        "import json, os, threading\n"
        "os.environ['OPENAI_API_KEY'] = 'sk-test-not-a-real-key'\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "InteractiveShell.instance().run_line_magic('load_ext', 'rt_notebook')\n"
        "for t in threading.enumerate():\n"
        "    if t.name == 'rt_notebook-warmup': t.join(60)\n"
        "from rt_notebook.client import transport\n"
        "print(json.dumps({'servers': len(transport._embedded)}))"
    )
    assert run(code) == {"servers": 0}


FIRST_CELL = (
    "import contextlib, io, json, ssl, sys, threading\n"
    "from IPython.core.interactiveshell import InteractiveShell\n"
    "shell = InteractiveShell.instance()\n"
    "shell.run_line_magic('load_ext', 'rt_notebook')\n"
    "{before}\n"
    "from rt_notebook.client import registry as _registry\n"
    "sessions = sorted(_registry._sessions)\n"
    "status = str(shell.run_line_magic('realtime', 'status').data)\n"
    "contexts = []\n"
    "real = ssl.create_default_context\n"
    "def counting(*args, **kwargs):\n"
    "    contexts.append(1)\n"
    "    return real(*args, **kwargs)\n"
    "ssl.create_default_context = counting\n"
    "modules = set(sys.modules)\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    shell.run_cell_magic('realtime', '--out r', 'hello')\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    shell.run_cell_magic('realtime', '--session other --out r2', 'hello')\n"
    "print(json.dumps({'sessions': sessions, 'status': status, 'ssl': len(contexts),"
    " 'imported': sorted(set(sys.modules) - modules),"
    " 'answers': [shell.user_ns['r'].text, shell.user_ns['r2'].text]}))"
)
WAIT = "for t in threading.enumerate():\n    if t.name == 'rt_notebook-warmup': t.join(60)"


def test_after_the_warm_up_a_first_cell_imports_nothing_and_builds_no_ssl_context():
    found = run(FIRST_CELL.replace("{before}", WAIT))
    # The warm-up made no Session (nothing user-visible before the first cell) ...
    assert found["sessions"] == []
    assert found["status"].startswith("No Session yet")
    # ... and left the first cells nothing to import; their Sessions share one HTTP
    # client, so neither loads a CA bundle (the connections are ws://).
    assert found["imported"] == []
    assert found["ssl"] == 0
    assert all("hello" in answer for answer in found["answers"]), found["answers"]


def test_a_first_cell_run_while_the_warm_up_is_still_importing_works():
    # Both threads then import the same modules (an import-lock cycle broke this once).
    found = run(FIRST_CELL.replace("{before}", "pass"))
    assert all("hello" in answer for answer in found["answers"]), found["answers"]


COLLECTOR = (
    "import gc, json, threading\n"
    "{before}\n"
    "seen = []\n"
    "def watch(phase, info):\n"
    "    if phase == 'start' and any(t.name == 'rt_notebook-warmup' and t.is_alive()"
    " for t in threading.enumerate()):\n"
    "        seen.append(info['generation'])\n"
    "gc.callbacks.append(watch)\n"
    "from IPython.core.interactiveshell import InteractiveShell\n"
    "InteractiveShell.instance().run_line_magic('load_ext', 'rt_notebook')\n"
    "for t in threading.enumerate():\n"
    "    if t.name == 'rt_notebook-warmup': t.join(60)\n"
    "import rt_notebook.server\n"
    "cycle = []\n"
    "cycle.append(cycle)\n"
    "del cycle\n"
    "print(json.dumps({{'enabled': gc.isenabled(), 'frozen': gc.get_freeze_count(),"
    " 'during': seen, 'collected': gc.collect()}}))"
)


def test_the_warm_up_pauses_the_collector_for_its_imports_and_keeps_nothing_from_it():
    found = run(COLLECTOR.format(before="pass"))
    # No collection scanned the imports' objects while they loaded (the rehearsal after
    # them may collect: its thread is alive then, hence "at most" young ones) ...
    assert 2 not in found["during"], found
    # ... and afterwards the collector is on and every object is collectable again: none
    # is left frozen, and garbage made after the warm-up is found by a collection.
    assert found["enabled"] is True
    assert found["frozen"] == 0
    assert found["collected"] >= 1


def test_the_warm_up_leaves_a_collector_the_user_turned_off_off():
    found = run(COLLECTOR.format(before="gc.disable()"))
    assert found["enabled"] is False
    assert found["frozen"] == 0


def test_the_warm_up_leaves_objects_someone_froze_frozen():
    # gc.unfreeze() releases every frozen object, not only the warm-up's: a process that
    # froze its own (before forking workers) keeps them frozen.
    found = run(COLLECTOR.format(before="gc.freeze()\nfrozen = gc.get_freeze_count()"))
    assert found["enabled"] is True
    assert found["frozen"] > 0
    assert 2 not in found["during"], found


def test_an_offline_sdk_client_sends_no_http_request_and_says_so():
    # Realtime connections are WebSocket connections; the plain endpoints' shared HTTP
    # client has no connection pool, and a request through it is refused, not attempted.
    found = run(
        "import asyncio, json\n"
        "from rt_notebook.client.transport import shared_http_client\n"
        "client = shared_http_client(secure=False)\n"
        "async def ask():\n"
        "    try:\n"
        "        await client.get('http://127.0.0.1:9/v1/models')\n"
        "    except RuntimeError as error:\n"
        "        return str(error)\n"
        "print(json.dumps({'refused': asyncio.run(ask()),"
        " 'same': shared_http_client(secure=False) is client}))"
    )
    assert found["refused"].startswith("rt_notebook sends no HTTP request to a plain endpoint")
    assert "127.0.0.1:9/v1/models" in found["refused"]
    assert found["same"] is True
