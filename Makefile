# Two commands do all the set-up on a fresh machine with Python 3.11+:
#   make run    start the dev server on http://127.0.0.1:5666 (embedded PostgreSQL)
#   make test   run the test suite
#   make lint   ruff (lint and format check) and mypy
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: run test lint bench clean-db

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

run: $(VENV)/.installed
	$(PY) run_dev_server.py

test: $(VENV)/.installed
	sh tests/e2e/ensure_chromium.sh  # the browser tests' Chromium (Debian package), when missing
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy imagerepo

bench: $(VENV)/.installed
	$(PY) -m bench $(BENCH_ARGS)

clean-db:
	-$(PY) -m imagerepo db stop
	rm -rf .pgdata
