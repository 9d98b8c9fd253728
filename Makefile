# featureops: the two quickstart commands are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
# DVC stage commands call `python`: put the project's venv first on PATH.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup run serve test lint format bench lock clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	@# Debian packages the engine and browser tests run: chromium (Playwright drives it) and redis-server.
	@command -v chromium >/dev/null && command -v redis-server >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium redis-server >/dev/null; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q uv==$(UV_VERSION)
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $@

run: setup  ## the whole pipeline on the demo data
	$(BIN)/dvc repro

# Ctrl-C or SIGTERM (to make, or to the whole process group) stops the server gracefully and
# `make serve` ends quietly: the trap forwards SIGTERM to the server, waits, and exits 0, so
# make has no failed recipe to report. A server that fails by itself still fails the target.
serve: setup  ## register + promote the trained candidate if none is in production, then serve
	$(BIN)/featureops model list | grep -q '^\*' || $(BIN)/featureops model register --promote
	@trap 'kill -TERM $$server 2>/dev/null; wait $$server 2>/dev/null; exit 0' INT TERM; \
		$(BIN)/featureops serve & server=$$!; wait $$server

test: setup  ## the test suite (real DVC, GE, Feast, DuckDB, SQLite on tiny data)
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup  ## benchmarks; writes bench/results.md
	$(BIN)/python -m bench

lock:  ## re-resolve requirements.lock from pyproject.toml
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV)
