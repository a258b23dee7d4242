"""The processes under test: a PostgreSQL database of the run's own, the real service under
gunicorn with the production config file, the framework-ceiling app under the same settings,
a sampler of their memory, and (optionally) py-spy recording them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil
import requests

from imagerepo.config import instance_home

PROJECT_ROOT = Path(__file__).resolve().parent.parent

GUNICORN_CONF = PROJECT_ROOT / "gunicorn.conf.py"
JWT_SECRET = "bench-secret-" + "z" * 40


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def database():
    """A database of this run's own: on DATABASE_URL's server when set (created and dropped
    here, as the tests do), else on the embedded server `bench` (stopped at the end if this
    run started it). Yields its URL."""
    import psycopg
    from psycopg import conninfo, sql

    name = f"imagerepo_bench_{uuid.uuid4().hex[:10]}"
    server_url = os.environ.get("DATABASE_URL")
    started_here = False
    if server_url:
        admin = conninfo.make_conninfo(server_url)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = conninfo.make_conninfo(server_url, dbname=name)
    else:
        from imagerepo import pgembed

        log("starting the embedded PostgreSQL (first run: initdb takes a few seconds)")
        url, started_here = pgembed.ensure_running(instance_home(), "bench", database=name)
        admin = conninfo.make_conninfo(url, dbname="postgres")
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if started_here:
            from imagerepo import pgembed

            pgembed.stop(instance_home(), "bench")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """`app` under gunicorn with the production config file; the env picks workers/threads."""

    def __init__(self, app: str, env: dict, log_path: Path, health_path: str = "/healthz"):
        self.app = app
        self.port = _free_port()
        self.host = "127.0.0.1"
        self.url = f"http://{self.host}:{self.port}"
        self.env = {**os.environ, **env, "IMAGEREPO_BIND": f"{self.host}:{self.port}"}
        self.log_path = log_path
        self.health_path = health_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "Gunicorn":
        log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), self.app],
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log_file.close()
        deadline = time.monotonic() + timeout
        workers = int(self.env.get("IMAGEREPO_WORKERS", "1"))
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.app} exited with {self.process.returncode}:\n" + self.log_path.read_text()[-3000:]
                )
            try:
                # Healthy, and every worker booted (a worker still importing would skew RSS).
                if (
                    requests.get(self.url + self.health_path, timeout=2).status_code == 200
                    and len(self.pids()) >= workers + 1
                ):
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.app} did not become healthy:\n" + self.log_path.read_text()[-3000:])

    def pids(self) -> list[int]:
        master = psutil.Process(self.process.pid)
        return [master.pid] + [child.pid for child in master.children(recursive=True)]

    def rss(self) -> int:
        total = 0
        for pid in self.pids():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += psutil.Process(pid).memory_info().rss
        return total

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class RssSampler:
    """Peak of the summed RSS of a server's processes (master + workers), sampled every
    `interval` seconds while the block runs. Summing double-counts pages shared after fork,
    so read `growth` (peak minus the sum just before), not the absolute figure."""

    def __init__(self, server: Gunicorn, interval: float = 0.02):
        self.server = server
        self.interval = interval
        self.before = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self.server.rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssSampler":
        self.before = self.peak = self.server.rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(psutil.Error):
            self.peak = max(self.peak, self.server.rss())

    @property
    def growth(self) -> int:
        return self.peak - self.before


class Profiler:
    """py-spy recording a server's processes for one phase, as collapsed stacks (one file per
    phase). Off unless --profile is given; py-spy is a developer tool, not a dependency."""

    def __init__(self, directory: Path | None):
        self.directory = directory
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def phase(self, name: str, server: Gunicorn):
        if self.directory is None:
            yield
            return
        out = self.directory / f"{name}.txt"
        spy = subprocess.Popen(
            [
                _py_spy(),
                "record",
                "--pid",
                str(server.process.pid),
                "--subprocesses",
                "--rate",
                "250",
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # py-spy attaches before the load starts
        try:
            yield
        finally:
            spy.send_signal(signal.SIGINT)
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
            log(f"profile of {name}: {out}")


def _py_spy() -> str:
    candidate = Path(sys.executable).with_name("py-spy")
    return str(candidate) if candidate.exists() else "py-spy"
