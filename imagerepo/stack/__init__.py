"""`imagerepo serve`: the production shape without Docker, in the foreground.

nginx (from the OS packages) listens on IMAGEREPO_PUBLIC_HOST:IMAGEREPO_PUBLIC_PORT and hands
complete requests to gunicorn over a Unix socket; with DATABASE_URL unset both sit on the
embedded PostgreSQL. SIGTERM or Ctrl-C stops nginx (finishing requests in flight), then
gunicorn, then the embedded database if this command started it. If nginx or gunicorn dies,
the rest is stopped too and the exit status is 1.
"""

from __future__ import annotations

import fcntl
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path

from ..config import Config, ConfigError


def say(message: str) -> None:
    print(f"[serve] {message}", file=sys.stderr, flush=True)


def find_nginx() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if not found:
        raise ConfigError("nginx is not installed: `make nginx` installs it (Debian/Ubuntu: apt-get install nginx)")
    return found


def body_limits(config: Config) -> dict[str, int]:
    """The app's own limits (request_body.py), so nginx refuses early what the app would refuse."""
    from ..images.upload import MAX_BATCH_BYTES
    from ..request_body import JSON_BODY_LIMIT, MULTIPART_SLACK

    upload = config.max_upload_bytes + MULTIPART_SLACK
    return {"json_limit": JSON_BODY_LIMIT, "upload_limit": upload, "batch_limit": max(MAX_BATCH_BYTES, upload)}


def accel_enabled(config: Config) -> bool:
    """Whether nginx sends verified one-chunk objects itself (stack/accel.py): only when
    IMAGEREPO_ACCEL_REDIRECT=1. Off by default: with nginx's buffers sized for images it saved no
    CPU per answer (bench/stack.py) and it gives up the per-read check. As root, nginx's workers
    then run as the chunk store's owner (as nobody they could not read the 0600 chunk files)."""
    return config.chunk_store == "local" and bool(config.accel_redirect)


def _worker_account(config: Config, accel: bool) -> pwd.struct_passwd:
    """As root, whom nginx's workers run as: nobody, or the chunk store's owner when they must
    read its files."""
    if accel:
        try:
            return pwd.getpwuid(config.blob_dir.stat().st_uid)
        except (OSError, KeyError):
            pass
    return pwd.getpwnam("nobody")


def render_nginx_conf(config: Config, runtime: Path, socket_path: Path) -> str:
    import jinja2

    from .accel import INTERNAL_PREFIX, SIZE_HEADER

    template = (resources.files(__package__) / "nginx.conf.j2").read_text(encoding="utf-8")
    accel = accel_enabled(config)
    user = group = None
    if os.geteuid() == 0:  # workers drop to an unprivileged user
        account = _worker_account(config, accel)
        user, group = account.pw_name, grp.getgrgid(account.pw_gid).gr_name
    host = f"[{config.public_host}]" if ":" in config.public_host else config.public_host
    return jinja2.Template(template, undefined=jinja2.StrictUndefined, keep_trailing_newline=True).render(
        runtime=runtime,
        socket=socket_path,
        host=host,
        port=config.public_port,
        user=user,
        group=group,
        accel=accel,
        accel_prefix=INTERNAL_PREFIX,
        accel_size_header=SIZE_HEADER,
        blob_dir=config.blob_dir,
        **body_limits(config),
    )


def _http_status(connect, path: str = "/healthz", timeout: float = 2.0) -> int | None:
    """The status of one GET, or None when nothing answers; `connect` makes the socket."""
    try:
        with connect() as sock:
            sock.settimeout(timeout)
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
            head = sock.recv(64)
        return int(head.split(b" ", 2)[1])
    except (OSError, ValueError, IndexError):
        return None


def _unix(path: Path):
    def connect():
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
        except OSError:
            sock.close()
            raise
        return sock

    return connect


def _tcp(host: str, port: int):
    return lambda: socket.create_connection((host, port), timeout=2)


class Stack:
    def __init__(self, config: Config, gunicorn_config: Path):
        self.config = config
        self.gunicorn_config = gunicorn_config
        self.nginx_bin = find_nginx()
        self.stopping = threading.Event()
        self.runtime: Path | None = None
        self.gunicorn: subprocess.Popen | None = None
        self.nginx: subprocess.Popen | None = None
        self.started_database = False

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stopping.set())
        try:
            if not self._start():
                return 0 if self.stopping.is_set() else 1
            say(
                f"ImageRepo on http://{self.config.public_host}:{self.config.public_port} (nginx -> gunicorn); Ctrl-C stops"
            )
            while not self.stopping.wait(0.5):
                for name, process in (("nginx", self.nginx), ("gunicorn", self.gunicorn)):
                    if process is not None and process.poll() is not None:
                        say(f"{name} exited with status {process.returncode}; stopping")
                        return 1
            say("stopping")
            return 0
        finally:
            self._stop()

    def _start(self) -> bool:
        env = dict(os.environ)
        if not self.config.database_url:
            from .. import pgembed

            url, self.started_database = pgembed.ensure_running(self.config.home, "dev")
            env["DATABASE_URL"] = url
            say(f"embedded PostgreSQL in {pgembed.data_dir(self.config.home, 'dev')}")
        _append_only(sys.stdout)
        # Private to this run; 0711 so nginx's unprivileged workers can reach the socket.
        self.runtime = Path(tempfile.mkdtemp(prefix="imagerepo-serve-"))
        self.runtime.chmod(0o711)
        socket_path = self.runtime / "gunicorn.sock"
        env["IMAGEREPO_BIND"] = f"unix:{socket_path}"
        env["IMAGEREPO_TRUSTED_PROXY_HOPS"] = "1"
        # Metrics of every worker, fresh for this run and removed with it (imagerepo/metrics.py).
        metrics_dir = self.runtime / "metrics"
        metrics_dir.mkdir(mode=0o700)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        env["IMAGEREPO_ACCEL_REDIRECT"] = "1" if accel_enabled(self.config) else "0"
        self.gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(self.gunicorn_config), "imagerepo:create_app()"],
            env=env,
            start_new_session=True,  # Ctrl-C reaches this process only; it stops the others in order
        )
        if not self._wait_until(lambda: _http_status(_unix(socket_path)) == 200, self.gunicorn, "gunicorn", 60):
            return False
        conf = self.runtime / "nginx.conf"
        conf.write_text(render_nginx_conf(self.config, self.runtime, socket_path))
        self.nginx = subprocess.Popen(
            [self.nginx_bin, "-p", f"{self.runtime}/", "-c", str(conf), "-e", "stderr"], start_new_session=True
        )
        public = _tcp(self.config.public_host, self.config.public_port)
        return self._wait_until(lambda: _http_status(public) == 200, self.nginx, "nginx", 30)

    def _wait_until(self, ready, process: subprocess.Popen, name: str, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not self.stopping.is_set():
            if process.poll() is not None:
                say(f"{name} exited with status {process.returncode} while starting")
                return False
            if ready():
                return True
            if time.monotonic() > deadline:
                say(f"{name} did not answer /healthz within {seconds:g} s")
                return False
            time.sleep(0.1)
        return False

    def _stop(self) -> None:
        # nginx first (SIGQUIT: stop accepting, finish requests in flight), then gunicorn
        # (SIGTERM: graceful), each killed if it outstays its time.
        _terminate(self.nginx, signal.SIGQUIT, 20)
        _terminate(self.gunicorn, signal.SIGTERM, 35)
        if self.started_database:
            from .. import pgembed

            pgembed.stop(self.config.home, "dev")
        if self.runtime is not None:
            shutil.rmtree(self.runtime, ignore_errors=True)


def _append_only(stream) -> None:
    """nginx opens /dev/stdout anew (its own file offset, O_APPEND); when our stdout is a plain
    file opened without O_APPEND, gunicorn's writes at the shared offset would overwrite nginx's
    access log lines. Appending on our side too keeps every line."""
    try:
        fd = stream.fileno()
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_APPEND)
    except (OSError, ValueError):
        pass  # not a real file (a test harness's capture): nothing to share


def _terminate(process: subprocess.Popen | None, signum: int, seconds: float) -> None:
    if process is None:
        return
    if process.poll() is None:
        os.killpg(process.pid, signum)
        try:
            process.wait(seconds)
            return
        except subprocess.TimeoutExpired:
            say(f"pid {process.pid} did not stop in {seconds:g} s; killing it")
    # The group as well: workers left behind by a master that died.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def gunicorn_config_path() -> Path:
    """gunicorn.conf.py of the checkout (or the current directory)."""
    from ..config import CHECKOUT_ROOT

    for candidate in ([CHECKOUT_ROOT / "gunicorn.conf.py"] if CHECKOUT_ROOT else []) + [Path("gunicorn.conf.py")]:
        if candidate.is_file():
            return candidate.resolve()
    raise ConfigError("gunicorn.conf.py not found: run from the source checkout or the directory that holds it")


def serve(config: Config) -> int:
    return Stack(config, gunicorn_config_path()).run()
