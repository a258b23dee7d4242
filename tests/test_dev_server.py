"""run_dev_server.py, the original ImageRepo's entry point: serving, SIGTERM, --reinstall-schema."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import requests

from blob_helpers import add_owner, add_reference, chunk_files, make_blobs, pseudo_random
from live_server import free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(config):
    return {
        **os.environ,
        "DATABASE_URL": config.database_url,
        "IMAGEREPO_BLOB_DIR": str(config.blob_dir),
        "IMAGEREPO_JWT_SECRET": "dev-server-test-" + "z" * 40,
        "IMAGEREPO_GC_INTERVAL_SECONDS": "0",
    }


def test_serves_on_the_given_port_and_stops_on_sigterm(config):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "run_dev_server.py", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=_env(config),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "dev server never became healthy"
            assert server.poll() is None, server.stdout.read().decode()
            time.sleep(0.2)
        created = requests.post(
            f"http://127.0.0.1:{port}/register",
            json={"name": "dev", "email": "dev@example.com", "password": "long enough"},
        )
        assert created.status_code == 201
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            assert server.wait(15) == 0
        finally:
            server.stdout.close()


def test_reinstall_schema_empties_database_and_chunk_store(config):
    blobs = make_blobs(config)
    try:
        add_reference(blobs, add_owner(config.database_url), pseudo_random(3 * 4096, seed=7))
    finally:
        blobs.db.close()
    assert chunk_files(blobs)
    done = subprocess.run(
        [sys.executable, "run_dev_server.py", "--reinstall-schema"],
        cwd=PROJECT_ROOT,
        env=_env(config),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Dropping every table" in done.stdout and "Schema reinstalled" in done.stdout
    with psycopg.connect(config.database_url) as conn:
        for table in ("users", "images", "objects", "object_chunks", "chunks"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
    assert [p for p in config.blob_dir.rglob("*") if p.is_file()] == []


def test_the_request_log_keeps_access_keys_out(config):
    """The access key travels in ?accesskey= for compatibility; like gunicorn's access log, the
    dev server logs the path without the query string."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "run_dev_server.py", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=_env(config),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "dev server never became healthy"
            time.sleep(0.2)
        requests.get(f"http://127.0.0.1:{port}/images/1?accesskey=let-me-in-7f3a", timeout=10)
        requests.get(f"http://127.0.0.1:{port}/images/1/content?download=1&accesskey=let-me-in-9b1c", timeout=10)
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=15)[0].decode()
    assert "GET /images/1 HTTP/1.1" in output and "GET /images/1/content HTTP/1.1" in output, output[-2000:]
    assert "let-me-in" not in output
