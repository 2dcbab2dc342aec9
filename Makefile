# The two set-up commands of the README: `make lab` (the main job) and `make test`.
# Both create the virtual environment in .venv on first use, so a fresh machine needs
# only Python 3.10+ (with venv) and make. Each installs only what it needs: `make lab` the
# package with its `lab` extra (JupyterLab, sidecar); `make test` adds the test and dev
# tools. A stamp per extra records what is installed, so neither reinstalls until
# pyproject.toml changes.

VENV ?= .venv
PY := $(VENV)/bin/python
CREATED := $(VENV)/.created
LAB := $(VENV)/.installed-lab
DEV := $(VENV)/.installed-dev
PYTEST_ARGS ?=

.PHONY: lab test lint bench server clean

$(CREATED):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	touch $@

# .installed-lab, .installed-dev: the package (editable) with that extra.
$(VENV)/.installed-%: pyproject.toml | $(CREATED)
	$(PY) -m pip install --quiet -e '.[$*]'
	touch $@

## JupyterLab on the quickstart notebook (embedded offline server unless OPENAI_API_KEY is set).
## JupyterLab's own URL opens the quickstart (its default_url), in the browser it starts or,
## on a machine without one, as the one http://127.0.0.1 URL it prints (with its token).
## LAB_ARGS adds options (e.g. LAB_ARGS="--port=8899 --no-browser"); NOTEBOOKS is its root.
## By default that is .lab/, your own copies of the tutorials (made once, then kept with your
## outputs and edits; delete one to get it fresh): running them leaves notebooks/ as published.
NOTEBOOKS ?= .lab
LAB_ARGS ?=
lab: $(LAB)
	@if [ "$(NOTEBOOKS)" = ".lab" ]; then mkdir -p .lab; \
	  for f in notebooks/*.ipynb; do [ -e ".lab/$${f#notebooks/}" ] || cp "$$f" .lab/; done; fi
	@echo "make lab: JupyterLab on $(NOTEBOOKS)/quickstart.ipynb; the URL it prints opens it (Ctrl-C stops it)"
	@$(VENV)/bin/jupyter lab --ServerApp.root_dir=$(NOTEBOOKS) --ServerApp.ip=127.0.0.1 \
	  --LabApp.default_url=/lab/tree/quickstart.ipynb $(LAB_ARGS) \
	  $(if $(filter 0,$(shell id -u)),--allow-root,)

## Lint, type-check and run the whole test suite. pytest's exit code 5 (it collected no
## tests) is a failure too, said plainly: a test run that tests nothing must not pass.
test: $(DEV) lint
	@$(PY) -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; \
	exit $$status

lint: $(DEV)
	$(VENV)/bin/ruff check rt_notebook tests benchmarks
	$(VENV)/bin/ruff format --check rt_notebook tests benchmarks
	$(VENV)/bin/mypy

## Every benchmark, then a table of every goal figure they printed (met / NOT met).
## voice_latency.py is left out: it drives JupyterLab in Chromium (1.5 min on a busy machine);
## run it by hand with $(PY) benchmarks/voice_latency.py.
BENCH_GOALS := $(VENV)/bench-goals.jsonl
bench: $(DEV)
	@rm -f $(BENCH_GOALS)
	for b in $(filter-out benchmarks/voice_latency.py,$(wildcard benchmarks/[!_]*.py)); do \
	  RT_BENCH_GOALS=$(BENCH_GOALS) $(PY) $$b || exit 1; done
	@$(PY) benchmarks/_goals.py $(BENCH_GOALS)

server: $(LAB)
	$(VENV)/bin/rt-notebook-server

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
