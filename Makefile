# slimlab: `make demo` / `make test` on a fresh Debian 12 machine (as root).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV     := .venv
SLIMLAB  := $(VENV)/bin/slimlab
PYTHON   := $(VENV)/bin/python
SPEC     ?= slimlab/specs/default.toml
DATA     ?= data
REPORT   ?= reports/demo.html

# Go is often preinstalled outside apt, in /usr/local/go/bin.
ifneq ($(wildcard /usr/local/go/bin/go),)
export PATH := $(PATH):/usr/local/go/bin
endif

.PHONY: help setup demo test test-fast bench lab clean distclean

help:
	@echo "make setup      install system packages, UPX, docker.io and .venv (idempotent)"
	@echo "make demo       setup, run the default sweep, write $(REPORT)"
	@echo "make test       setup, run the test suite"
	@echo "make test-fast  run only the pure-logic tests (marker 'unit'): seconds, no tools run"
	@echo "make bench      run benchmarks/sweep_throughput.py"
	@echo "make lab        open JupyterLab on notebooks/ (LAB_ARGS=\"--port 8890 --no-browser\" passes options)"
	@echo "make clean      remove caches and the demo report"
	@echo "make distclean  clean, and remove .venv"

setup:
	@bash scripts/setup.sh

# The sweep prints its run directory as the last line of stdout. The default spec has
# images: a Docker engine that answers is used; otherwise one is started for the demo
# and stopped after it, however it ends (an engine that was running is left running).
demo: setup
	@mkdir -p .cache $(dir $(REPORT))
	@started=0; \
	if ! $(SLIMLAB) engine status >/dev/null 2>&1; then \
		$(SLIMLAB) engine start || echo "demo: no Docker engine: image rows will say why" >&2; \
		started=1; \
	fi; \
	trap 'if [ $$started = 1 ]; then $(SLIMLAB) engine stop >/dev/null 2>&1 || true; fi' EXIT; \
	echo "+ $(SLIMLAB) sweep $(SPEC) --data $(DATA)"; \
	$(SLIMLAB) sweep $(SPEC) --data $(DATA) | tee .cache/demo-sweep.out
	@run_dir="$$(tail -n 1 .cache/demo-sweep.out)"; \
	if [ ! -d "$$run_dir" ]; then \
		echo "demo: sweep did not print a run directory (last line: '$$run_dir')" >&2; exit 1; \
	fi; \
	echo "+ $(SLIMLAB) report $$run_dir --out $(REPORT)"; \
	$(SLIMLAB) report "$$run_dir" --out $(REPORT); \
	echo "demo: results in $$run_dir"; \
	echo "demo: report written to $(abspath $(REPORT))"

test: setup
	$(PYTHON) -m pytest -q tests

# No setup: the unit tier needs only .venv, and it must stay quick to run after each change.
test-fast:
	$(PYTHON) -m pytest -q -m unit tests

bench: setup
	$(PYTHON) benchmarks/sweep_throughput.py

# The server runs on .venv's Python, whose kernel the notebooks get (slimlab.notebook.lab).
lab: setup
	$(SLIMLAB) lab notebooks $(LAB_ARGS)

clean:
	rm -rf .cache .pytest_cache build *.egg-info $(REPORT)
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
