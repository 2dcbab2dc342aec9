"""Cold start: importing the package has no side effects; ``%load_ext`` imports only the
magics and leaves the heavy work (SDK, views, offline server) to a background thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = ("openai", "pydantic", "markdown_it", "websockets", "rt_notebook.render.cell")


def run(code: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_"))}
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
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
        "import json, sys\nimport rt_notebook.magics\n"
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
        "from rt_notebook import transport\n"
        "print(json.dumps({'warm': len(warm), 'daemon': daemon,"
        " 'servers': len(transport._embedded),"
        f" 'loaded': [m for m in {HEAVY!r} if m in sys.modules]}}))"
    )
    assert found == {"warm": 1, "daemon": True, "servers": 1, "loaded": list(HEAVY)}


def test_load_ext_with_a_key_starts_no_offline_server():
    code = (
        "import json, os, threading\n"
        "os.environ['OPENAI_API_KEY'] = 'sk-test-not-a-real-key'\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "InteractiveShell.instance().run_line_magic('load_ext', 'rt_notebook')\n"
        "for t in threading.enumerate():\n"
        "    if t.name == 'rt_notebook-warmup': t.join(60)\n"
        "from rt_notebook import transport\n"
        "print(json.dumps({'servers': len(transport._embedded)}))"
    )
    assert run(code) == {"servers": 0}
