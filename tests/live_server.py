"""The real server (gunicorn, production config file) in a subprocess, for tests whose
behaviour crosses a process: streaming, memory, crashes, concurrency."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(process: subprocess.Popen, url: str, timeout: float, log_tail) -> None:
    """Until `url`/healthz answers 200; RuntimeError with `log_tail()` if the process exits first
    or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}: {log_tail()}")
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no answer from {url}/healthz within {timeout:g} s: {log_tail()}")


class LiveServer:
    def __init__(
        self,
        database_url: str,
        blob_dir: Path,
        workers: int = 1,
        threads: int = 4,
        extra_env: dict | None = None,
        log_path: Path | None = None,
        wrapper: list[str] | None = None,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "IMAGEREPO_ENV": "test",
            "IMAGEREPO_JWT_SECRET": "live-test-secret-" + "y" * 40,
            "IMAGEREPO_BLOB_DIR": str(blob_dir),
            "IMAGEREPO_BIND": f"127.0.0.1:{self.port}",
            "IMAGEREPO_WORKERS": str(workers),
            "IMAGEREPO_THREADS": str(threads),
            "IMAGEREPO_GC_INTERVAL_SECONDS": "0",
            **(extra_env or {}),
        }
        self.log_path = log_path or blob_dir.parent / f"server-{self.port}.log"
        # A command the server is started under (it must exec the server, keeping its pid).
        self.wrapper = wrapper or []
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> "LiveServer":
        with open(self.log_path, "ab") as log:  # the server keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                self.wrapper
                + [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "-c",
                    str(PROJECT_ROOT / "gunicorn.conf.py"),
                    "imagerepo:create_app()",
                ],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_until_healthy(self.process, self.url, timeout, lambda: self.log_path.read_text()[-3000:])
        except RuntimeError:
            self.stop()
            raise
        return self

    def pids(self) -> list[int]:
        """The gunicorn master and its workers."""
        import psutil

        master = psutil.Process(self.process.pid)
        return [master.pid] + [child.pid for child in master.children(recursive=True)]

    def kill(self) -> None:
        """SIGKILL the master and every worker at once, as a crash would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@contextlib.contextmanager
def live_server(database_url: str, blob_dir: Path, **kwargs):
    server = LiveServer(database_url, blob_dir, **kwargs).start()
    try:
        yield server
    finally:
        server.stop()
