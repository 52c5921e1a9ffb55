# creditgate — `make run` serves the API on SQLite with demo data; `make test` runs the suite.
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test tools lint typecheck check migrate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/creditgate migrate
	$(BIN)/creditgate demo
	$(BIN)/creditgate serve --host $(HOST) --port $(PORT)

test: tools $(VENV)/.installed-dev
	$(BIN)/python -m pytest

# promtool (Debian's `prometheus` package) for tests/test_deploy.py, which skips its promtool
# checks, saying so, without it. Installed only when missing and running as root (as CI does);
# this target never fails.
tools:
	@command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "promtool missing: installing Debian package prometheus"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 \
	      || { apt-get update -qq >/dev/null 2>&1 \
	           && apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1; } \
	      || echo "could not install promtool: tests/test_deploy.py will skip its promtool checks"; \
	  else \
	    echo "promtool missing (install Debian package prometheus as root): tests/test_deploy.py will skip its promtool checks"; \
	  fi; \
	}; true

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check app tests migrations
	$(BIN)/mypy app

check: lint test

clean:
	rm -rf $(VENV) creditgate.db creditgate.db-* .pytest_cache .mypy_cache .ruff_cache

# Benchmark (bench/run.py): seeds database creditgate_bench on the local PostgreSQL, serves the
# app (2 workers, PostgreSQL, Redis db 14) and the floor (bench/floor.py), drives them with wrk,
# prints ratios and writes bench/RESULTS.md. Takes 8-9 minutes. Knobs: see bench/run.py.
.PHONY: bench
bench: $(VENV)/.installed-dev
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get install -y -qq wrk >/dev/null 2>&1 \
	      || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq wrk >/dev/null; }; \
	  else echo "wrk is missing: apt-get install wrk (as root)" >&2; exit 1; fi; }
	$(BIN)/python bench/run.py
