# The two set-up commands of the README: `make lab` (the main job) and `make test`.
# Both create the virtual environment in .venv on first use, so a fresh machine needs
# only Python 3.10+ and make.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: lab test lint bench server clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## JupyterLab on the quickstart notebook (embedded offline server unless OPENAI_API_KEY is set).
lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/quickstart.ipynb $(if $(filter 0,$(shell id -u)),--allow-root,)

## Lint, type-check and run the whole test suite.
test: $(STAMP) lint
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check rt_notebook tests benchmarks
	$(VENV)/bin/ruff format --check rt_notebook tests benchmarks
	$(VENV)/bin/mypy

bench: $(STAMP)
	for b in benchmarks/[!_]*.py; do $(PY) $$b || exit 1; done

server: $(STAMP)
	$(VENV)/bin/rt-notebook-server

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
