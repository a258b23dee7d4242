"""`imagerepo serve` (make serve): nginx in front of gunicorn, tested as a whole over HTTP.

Needs nginx (`make test` installs it with `make nginx` when missing)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import requests

from http_helpers import bmp_bytes, signup
from imagerepo.config import Config
from imagerepo.stack import find_nginx, render_nginx_conf
from live_server import free_port, wait_until_healthy

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
UPLOAD_LIMIT = 2 * MiB


class Stack:
    """`python -m imagerepo serve` in a subprocess, on its own port."""

    def __init__(self, env: dict, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "IMAGEREPO_PUBLIC_PORT": str(self.port)}
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> Stack:
        find_nginx()  # a clear failure when nginx is missing: run `make nginx`
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "imagerepo", "serve"],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until_healthy(self.process, self.url, timeout, self.log)
        except RuntimeError:
            self.stop()
            raise
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def stop(self, signum=signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                raise
        return self.process.returncode


def _stack_env(database_url: str | None, blob_dir: Path, **extra) -> dict:
    env = {
        "IMAGEREPO_ENV": "test",
        "IMAGEREPO_JWT_SECRET": "stack-test-secret-" + "s" * 40,
        "IMAGEREPO_BLOB_DIR": str(blob_dir),
        "IMAGEREPO_WORKERS": "1",
        "IMAGEREPO_THREADS": "4",
        "IMAGEREPO_GC_INTERVAL_SECONDS": "0",
        "IMAGEREPO_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
        **extra,
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


@pytest.fixture(scope="module")
def stack(database_url, tmp_path_factory):
    work = tmp_path_factory.mktemp("stack")
    running = Stack(_stack_env(database_url, work / "blobs"), work / "serve.log").start()
    yield running
    assert running.stop() == 0, running.log()


def _connection(stack: Stack, source: str = "127.0.0.1") -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10, source_address=(source, 0))


def test_healthz_answers_through_nginx(stack):
    response = requests.get(stack.url + "/healthz", timeout=5)
    assert response.status_code == 200 and response.json()["status"] == "ok"
    assert response.headers["Server"] == "nginx"  # and no version


def _stalled_clients(stack: Stack, token: str, count: int) -> list[socket.socket]:
    """Half send an unfinished request head, half a complete head and part of a 1 MB body."""
    sockets = []
    for n in range(count):
        sock = socket.create_connection(("127.0.0.1", stack.port), timeout=5)
        if n % 2:
            sock.sendall(b"POST /images/raw?name=slow.bmp HTTP/1.1\r\nHost: imagerepo\r\nContent-Le")
        else:
            sock.sendall(
                b"POST /images/raw?name=slow.bmp HTTP/1.1\r\nHost: imagerepo\r\n"
                + f"Authorization: Bearer {token}\r\nContent-Length: 1000000\r\n\r\n".encode()
                + b"BM"
                + b"\0" * 4000
            )
        sockets.append(sock)
    return sockets


def test_64_stalled_clients_do_not_stop_anyone_else(stack):
    headers = signup(stack.url, "stalled")
    sockets = _stalled_clients(stack, headers["Authorization"].split()[1], 64)
    try:
        time.sleep(0.5)  # let nginx take every one of them in
        started = time.monotonic()
        health = requests.get(stack.url + "/healthz", timeout=2)
        listing = requests.get(stack.url + "/images?mine=1", headers=headers, timeout=2)
        elapsed = time.monotonic() - started
        assert health.status_code == 200 and listing.status_code == 200, (health.text, listing.text)
        assert elapsed < 2, elapsed
        # They were held open, not turned away: each is still connected and has had no answer.
        for sock in sockets:
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)
    finally:
        for sock in sockets:
            sock.close()


def test_the_real_client_address_reaches_the_app(stack):
    headers = signup(stack.url, "addresses")
    image = bmp_bytes(4, 4, seed=1)
    for source in ("127.0.0.2", "127.0.0.3"):
        conn = _connection(stack, source)
        # A client-supplied X-Forwarded-For is replaced by nginx, never believed.
        conn.request(
            "POST",
            f"/images/raw?name=from-{source}.bmp",
            body=image,
            headers={**headers, "X-Forwarded-For": "203.0.113.66"},
        )
        response = conn.getresponse()
        assert response.status == 201, response.read()
        conn.close()
    records = requests.get(stack.url + "/audit?method=POST&path=/images/raw", headers=headers, timeout=10).json()
    assert sorted(r["client"] for r in records["records"]) == ["127.0.0.2", "127.0.0.3"]


def test_body_limits_per_route(stack):
    headers = signup(stack.url, "limits")
    # JSON routes take small bodies only; nginx answers in the API's error shape.
    big_json = json.dumps({"name": "x" * (100 * 1024), "email": "x@example.com", "password": "p" * 8})
    refused = requests.post(
        stack.url + "/register", data=big_json, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert refused.status_code == 413 and refused.json()["error"]["code"] == "too_large"
    # The same size is fine where images go, up to the upload limit.
    image = bmp_bytes(512, 512, seed=2)  # ~768 KiB
    stored = requests.post(stack.url + "/images/raw?name=ok.bmp", data=image, headers=headers, timeout=30)
    assert stored.status_code == 201, stored.text
    multipart = requests.post(stack.url + "/images", files={"file": ("ok.bmp", image)}, headers=headers, timeout=30)
    assert multipart.status_code == 201, multipart.text
    too_big = requests.post(
        stack.url + "/images/raw?name=big.bmp",
        data=b"BM" + b"\0" * (UPLOAD_LIMIT + 2 * MiB),
        headers=headers,
        timeout=30,
    )
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "too_large"


def test_nginx_limits_follow_the_configuration(tmp_path):
    from imagerepo.images.upload import MAX_BATCH_BYTES
    from imagerepo.request_body import JSON_BODY_LIMIT

    conf = render_nginx_conf(Config(max_upload_bytes=5 * MiB, public_port=9999), tmp_path, tmp_path / "app.sock")
    blocks = {
        route: conf.split(f"location = {route} {{", 1)[1].split("}", 1)[0]
        for route in ("/images", "/images/raw", "/images/batch")
    }
    assert f"client_max_body_size {6 * MiB};" in blocks["/images"]
    assert f"client_max_body_size {6 * MiB};" in blocks["/images/raw"]
    assert f"client_max_body_size {MAX_BATCH_BYTES};" in blocks["/images/batch"]
    assert f"client_max_body_size {JSON_BODY_LIMIT};" in conf.split("server {", 1)[0]
    assert "listen 127.0.0.1:9999;" in conf and f"server unix:{tmp_path / 'app.sock'};" in conf


def test_serve_on_the_embedded_database_stops_everything_on_sigterm():
    """DATABASE_URL unset, a fresh instance directory: what `make serve` does on a fresh clone."""
    # Not pytest's tmp_path: the embedded server runs as an unprivileged user when we are root,
    # and every pytest start resets /tmp/pytest-of-<user> to mode 0700.
    home = Path(tempfile.mkdtemp(prefix="imagerepo-serve-home-"))
    home.chmod(0o711)
    env = _stack_env(None, home / "blobs", IMAGEREPO_HOME=str(home))
    stack = Stack(env, home / "serve.log")
    stack.env.pop("DATABASE_URL", None)
    try:
        stack.start(timeout=120)
        signup(stack.url, "fresh")
        children = stack.descendants()
        names = {p.name() for p in children}
        assert "nginx" in names and any("python" in n or "gunicorn" in n for n in names), names
        assert (home / ".pgdata" / "dev" / "postmaster.pid").exists()
        assert stack.stop(signal.SIGTERM) == 0, stack.log()
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, alive
        assert not (home / ".pgdata" / "dev" / "postmaster.pid").exists()
        with pytest.raises(requests.ConnectionError):
            requests.get(stack.url + "/healthz", timeout=2)
    finally:
        if stack.process and stack.process.poll() is None:
            stack.process.kill()
        subprocess.run(
            [sys.executable, "-m", "imagerepo", "db", "stop"], env=stack.env, capture_output=True, check=False
        )
        shutil.rmtree(home, ignore_errors=True)


def test_ctrl_c_stops_it_and_a_dead_nginx_takes_the_rest_down(database_url, tmp_path):
    first = Stack(_stack_env(database_url, tmp_path / "blobs"), tmp_path / "first.log").start()
    children = first.descendants()
    assert first.stop(signal.SIGINT) == 0, first.log()
    assert not psutil.wait_procs(children, timeout=10)[1]

    second = Stack(_stack_env(database_url, tmp_path / "blobs"), tmp_path / "second.log").start()
    children = second.descendants()
    nginx_master = next(p for p in children if p.name() == "nginx" and p.ppid() == second.process.pid)
    nginx_master.kill()
    assert second.process.wait(60) == 1, second.log()
    assert not psutil.wait_procs(children, timeout=10)[1]
    assert "nginx exited" in second.log()
