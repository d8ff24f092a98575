# Tandem: `make run` starts the whole stack on embedded stores; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test test-embedded test-restart lint format bench chaos browser stop clean help

help:
	@echo "make run    - build everything, start web + worker + beat on embedded stores, demo data"
	@echo "make test   - build what is needed and run the full test suite"
	@echo "make lint   - ruff (lint + format check) and mypy"
	@echo "make bench  - run every benchmark in bench/ and write bench/results.{json,md}"
	@echo "make chaos  - the long fault-injection tests"
	@echo "make stop   - stop embedded stores left running by manage.py commands"

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -c constraints.txt
	@touch $@

venv: $(STAMP)

# Browser tests drive Debian's chromium; install it when missing and we are allowed to.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -q chromium >/dev/null || echo "warning: could not install chromium"; \
	  else echo "note: install Debian's chromium for the browser tests"; fi; }

run: $(STAMP)
	$(PY) -m config.launcher

test: $(STAMP) browser
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# The embedded-store path alone (what CI runs with store URLs unset).
test-embedded: $(STAMP)
	env -u DATABASE_URL -u REDIS_URL -u CLICKHOUSE_URL -u CELERY_BROKER_URL \
	  $(PY) -m pytest -q -p no:cacheprovider -m embedded $(PYTEST_ARGS)

# The analytics suite on a fresh embedded ClickHouse, then again after a restart with its data kept.
test-restart: $(STAMP)
	$(PY) -m analytics.tests.restart_suite

chaos: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m chaos --run-chaos $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	$(PY) -m bench

stop: $(STAMP)
	$(PY) -m config.embedded stop

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
