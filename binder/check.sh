#!/usr/bin/env bash
# Check the Binder configuration without Docker or mybinder.org. Slow (it installs two fresh
# environments from the package index); not part of `make test`. Run from anywhere:
#
#     bash binder/check.sh            # work files under /tmp/binder-check (BINDER_CHECK_DIR)
#
# 1. repo2docker, installed in a throwaway venv, detects the build pack and renders the
#    Dockerfile (--no-build: no Docker needed). We check the build pack it chose and the steps
#    that matter: Python 3.11, one environment for JupyterLab and the kernel, and binder/
#    requirements.txt installed from the repository's root after the repository is copied in.
# 2. A fresh venv is built only from binder/ (pip install -r binder/requirements.txt from the
#    root of a copy of the repository, as repo2docker does), and every notebook in notebooks/
#    runs in it top to bottom with nbclient, with no OpenAI or Azure credentials (so against
#    the embedded offline server), failing on an error, a background traceback or a missing
#    expected output (the "rt_notebook_test" cell metadata that tests/test_notebooks.py uses).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${BINDER_CHECK_DIR:-/tmp/binder-check}"
PYTHON="${PYTHON:-python3}"

step() { printf '\n== %s\n' "$*"; }
# pip, without the warnings some machines' pip configuration prints for every package.
pip_install() {
  local pip="$1"
  shift
  "$pip" install --quiet "$@" 2> >(grep -v "^WARNING: Location 'file:" >&2)
}

REPO="$WORK/repo"
rm -rf "$WORK"
mkdir -p "$REPO"

step "Copy the working tree as a clone would have it (no .venv, nothing git ignores)"
cd "$ROOT"
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' file; do
    if [ -f "$file" ]; then cp --parents -- "$file" "$REPO/"; fi
  done
test -f "$REPO/binder/requirements.txt"
test ! -e "$REPO/.venv"

step "1. repo2docker: detect the build pack and render the Dockerfile (no Docker)"
"$PYTHON" -m venv "$WORK/r2d"
pip_install "$WORK/r2d/bin/pip" jupyter-repo2docker
"$WORK/r2d/bin/repo2docker" --version
# Which build pack repo2docker picks, asked the way it asks: the first whose detect() is true.
(cd "$REPO" && "$WORK/r2d/bin/python" - <<'PY'
from repo2docker.app import Repo2Docker

app = Repo2Docker()
for buildpack_class in app.buildpacks:
    buildpack = buildpack_class(app.base_image)
    if buildpack.detect():
        name = buildpack_class.__name__
        version = buildpack.python_version
        print(f"build pack: {name}, Python {version}")
        assert name == "PythonBuildPack", f"expected the Python build pack, not {name}"
        assert version == "3.11", f"expected Python 3.11 (binder/runtime.txt), not {version}"
        break
else:
    raise SystemExit("FAIL: no repo2docker build pack detects this repository")
PY
)
(cd "$REPO" && "$WORK/r2d/bin/repo2docker" --no-build --no-run --debug .) >"$WORK/dockerfile.txt" 2>&1
expect_in_dockerfile() {
  if ! grep -qF -- "$1" "$WORK/dockerfile.txt"; then
    echo "FAIL: the rendered Dockerfile has no: $1 (see $WORK/dockerfile.txt)" >&2
    exit 1
  fi
  echo "ok: $1"
}
expect_in_dockerfile "Building conda environment for python=3.11"
expect_in_dockerfile 'ENV KERNEL_PYTHON_PREFIX=${NB_PYTHON_PREFIX}'
expect_in_dockerfile 'COPY --chown=0:0 src/ ${REPO_DIR}/'
expect_in_dockerfile 'WORKDIR ${REPO_DIR}'
expect_in_dockerfile 'pip install --no-cache-dir -r "binder/requirements.txt"'
# The install must come after the repository is copied in: "." is the repository.
copy_line=$(grep -nF 'COPY --chown=0:0 src/ ${REPO_DIR}/' "$WORK/dockerfile.txt" | cut -d: -f1)
pip_line=$(grep -nF 'pip install --no-cache-dir -r "binder/requirements.txt"' "$WORK/dockerfile.txt" | cut -d: -f1)
if [ "$pip_line" -le "$copy_line" ]; then
  echo "FAIL: binder/requirements.txt is installed before the repository is copied" >&2
  exit 1
fi
echo "ok: requirements installed after the repository is copied"

# repo2docker copies the repository in as root (COPY --chown=0:0) and then runs pip as the
# unprivileged notebook user, so "." must build without writing into the source tree.
if [ "$(id -u)" = 0 ] && command -v runuser >/dev/null && [ -x /usr/bin/python3 ]; then
  step "1b. Build '.' as an unprivileged user from a read-only copy, as the image build does"
  cp -r "$REPO" "$WORK/readonly"
  chmod -R a-w "$WORK/readonly"
  mkdir -p "$WORK/nobody-home"
  /usr/bin/python3 -m venv "$WORK/nobody-venv"
  chown -R nobody "$WORK/nobody-venv" "$WORK/nobody-home"
  chmod a+rx "$WORK"
  (cd "$WORK/readonly" && runuser -u nobody -- env HOME="$WORK/nobody-home" \
    "$WORK/nobody-venv/bin/pip" install --no-cache-dir --quiet --no-deps . \
    2> >(grep -v "^WARNING: Location 'file:" >&2))
  "$WORK/nobody-venv/bin/python" -c "import importlib.metadata as m; print('ok: built', m.version('rt-notebook'), 'as nobody')"
  chmod -R u+w "$WORK/readonly"
fi

step "2. A fresh venv from binder/requirements.txt only"
"$PYTHON" -m venv "$WORK/venv"
pip_install "$WORK/venv/bin/pip" --upgrade pip
(cd "$REPO" && pip_install "$WORK/venv/bin/pip" -r binder/requirements.txt)
cd "$WORK"  # import the installed package, not a source tree
"$WORK/venv/bin/python" -c "import rt_notebook, ipywidgets, jupyterlab; \
print('rt_notebook', rt_notebook.__version__, 'from', rt_notebook.__file__); \
print('ipywidgets', ipywidgets.__version__, 'jupyterlab', jupyterlab.__version__)"
# The front-end halves of the widgets (ipywidgets, the chat composer, the side panel) must be
# installed in the JupyterLab that Binder runs, which is this same environment.
"$WORK/venv/bin/jupyter" labextension list >"$WORK/labextensions.txt" 2>&1
for extension in @jupyter-widgets/jupyterlab-manager anywidget @jupyter-widgets/jupyterlab-sidecar; do
  if ! grep -qF "$extension v" "$WORK/labextensions.txt"; then
    echo "FAIL: JupyterLab extension $extension is missing (see $WORK/labextensions.txt)" >&2
    exit 1
  fi
  echo "ok: JupyterLab extension $extension"
done

step "Execute every notebook in that venv, offline"
mkdir -p "$WORK/run"
env -u OPENAI_API_KEY -u AZURE_OPENAI_ENDPOINT -u AZURE_OPENAI_API_KEY \
  PATH="$WORK/venv/bin:$PATH" \
  "$WORK/venv/bin/python" - "$REPO/notebooks" "$WORK/run" <<'PY'
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

notebooks, workdir = Path(sys.argv[1]), Path(sys.argv[2])


def output_text(cell):
    pieces = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            pieces.append(output.text)
        elif output.output_type in ("display_data", "execute_result"):
            pieces += [output.data.get(m, "") for m in ("text/markdown", "text/plain")]
        elif output.output_type == "error":
            pieces.append(f"{output.ename}: {output.evalue}")
    return "\n".join(pieces)


failures = 0
paths = sorted(notebooks.glob("*.ipynb"))
assert paths, f"no notebooks in {notebooks}"
for path in paths:
    notebook = nbformat.read(path, as_version=4)
    run_dir = workdir / path.stem
    run_dir.mkdir()
    try:
        NotebookClient(
            notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(run_dir)}}
        ).execute()
    except Exception as exc:  # CellExecutionError and kernel failures
        failures += 1
        print(f"FAIL {path.name}: {type(exc).__name__}: {str(exc)[-2000:]}")
        continue
    problems = []
    checked = 0
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        text = output_text(cell)
        if "Traceback (most recent call last)" in text:
            problems.append(f"cell {index}: traceback in output")
        expect = cell.metadata.get("rt_notebook_test", {}).get("expect", [])
        for expected in [expect] if isinstance(expect, str) else expect:
            checked += 1
            if expected not in text:
                problems.append(f"cell {index}: {expected!r} missing")
    nbformat.write(notebook, run_dir / path.name)  # executed copy, for a look
    if problems:
        failures += 1
        print(f"FAIL {path.name}: " + "; ".join(problems))
    else:
        print(f"ok {path.name}: {len(notebook.cells)} cells, {checked} expected outputs found")
sys.exit(1 if failures else 0)
PY

step "Binder check passed"
