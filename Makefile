# Two commands do all the set-up on a fresh machine with Python 3.11+:
#   make run    start the dev server on http://127.0.0.1:5666 (embedded PostgreSQL)
#   make test   run the test suite
#   make lint   ruff (lint and format check) and mypy
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
# The lock tool (uv) installs the locked, hashed versions in seconds; pip would take ~25 s.
UV_VERSION := 0.13.8
LOCK := $(UV) pip compile --quiet --universal --python-version 3.11 --generate-hashes --custom-compile-command "make lock"

.PHONY: run serve nginx test lint bench clean-db lock wheel

# The venv gets exactly what requirements.txt (the lock of every extra) says, then the package
# itself in editable mode (the imagerepo and imagerepo-client commands). Compiled as pip would:
# uv does not by default, and with PYTHONDONTWRITEBYTECODE set every process (each gunicorn
# worker, CLI command, spawned test child) would compile its imports from source again.
$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip sync --quiet --compile-bytecode --python $(PY) --require-hashes requirements.txt
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	touch $@

# make run ARGS="--port 8000"
run: $(VENV)/.installed
	$(PY) run_dev_server.py $(ARGS)

# nginx in front of gunicorn on http://127.0.0.1:8080 (IMAGEREPO_PUBLIC_PORT), in the foreground.
serve: $(VENV)/.installed nginx
	$(PY) -m imagerepo serve $(ARGS)

# nginx from the OS packages, installed when missing (Debian/Ubuntu; root, or say what to run).
nginx:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "nginx is missing: apt-get install nginx"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null; \
	  else echo "nginx is missing: install it (sudo apt-get install nginx)" >&2; exit 1; fi; }

test: $(VENV)/.installed nginx
	sh tests/e2e/ensure_chromium.sh  # the browser tests' Chromium (Debian package), when missing
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy imagerepo

bench: $(VENV)/.installed
	$(PY) -m bench $(BENCH_ARGS)

# Re-resolve the lock files after changing dependencies in pyproject.toml (UPGRADE=1: newest
# versions allowed). The runtime lock is constrained to the full one, so both agree.
lock: $(VENV)/.installed
	$(LOCK) $(if $(UPGRADE),--upgrade) --extra dev -o requirements.txt pyproject.toml
	$(LOCK) -c requirements.txt -o requirements-runtime.txt pyproject.toml

# The sdist and the wheel built from it: a stale build/ directory cannot leak into the wheel.
wheel: $(VENV)/.installed
	$(UV) build --quiet --out-dir dist

clean-db:
	-$(PY) -m imagerepo db stop
	rm -rf .pgdata
