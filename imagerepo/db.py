"""PostgreSQL access: one pool per process, one transaction helper, the schema runner.

Use `db.transaction()` for every unit of work:

    with db.transaction() as conn:
        conn.execute("UPDATE ...", params)

It commits when the block ends and rolls back when it raises. A single read-only statement
may use `db.read()` instead: the same pooled connection without BEGIN/COMMIT, which saves two
round trips on the hot read paths (token checks, image lookups).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Callable
from importlib import resources
from importlib.resources.abc import Traversable

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from .config import Config

log = logging.getLogger(__name__)

# Package data, so an installed wheel carries its migrations (never read through a path
# relative to the checkout).
MIGRATIONS = resources.files(__package__) / "migrations"
_MIGRATION_NAME = re.compile(r"^\d{3}_[a-z0-9_]+\.sql$")
# Any constant would do: it only has to be the same in every process applying the schema.
_SCHEMA_LOCK_KEY = 0x1A6E_4E90


def resolve_url(config: Config) -> str:
    """DATABASE_URL when set, else the embedded dev server (started if needed)."""
    if config.database_url:
        return config.database_url
    from . import pgembed

    url, _ = pgembed.ensure_running(config.home, "dev")
    return url


class Database:
    def __init__(self, url: str, min_size: int = 1, max_size: int = 10):
        self.url = url
        self._min_size = min_size
        self._max_size = max_size
        self._pool: ConnectionPool | None = None
        self._pool_pid: int | None = None
        self._lock = threading.Lock()
        # What else holds a connection of this database's and must go with it (the state
        # cache's listener): closing the database closes them first.
        self._closers: list[Callable[[], None]] = []

    @property
    def pool(self) -> ConnectionPool:
        # A pool must not cross fork(): gunicorn workers each open their own on first use.
        if self._pool is None or self._pool_pid != os.getpid():
            with self._lock:
                if self._pool is None or self._pool_pid != os.getpid():
                    self._pool = ConnectionPool(
                        self.url,
                        min_size=self._min_size,
                        max_size=self._max_size,
                        # Transactions are explicit (conn.transaction() in `transaction`), so a
                        # lone read pays no BEGIN/COMMIT round trips.
                        kwargs={"row_factory": dict_row, "autocommit": True},
                        open=True,
                        name="imagerepo",
                    )
                    self._pool_pid = os.getpid()
        return self._pool

    @contextlib.contextmanager
    def transaction(self):
        with self.pool.connection() as conn, conn.transaction():
            yield conn

    @contextlib.contextmanager
    def read(self):
        """A connection for one read-only statement (each statement commits on its own)."""
        with self.pool.connection() as conn:
            yield conn

    def on_close(self, closer: Callable[[], None]) -> None:
        self._closers.append(closer)

    def close(self) -> None:
        for closer in self._closers:
            closer()
        if self._pool is not None and self._pool_pid == os.getpid():
            self._pool.close()
        self._pool = None


def migration_files() -> list[Traversable]:
    """The numbered migrations, in order."""
    return sorted((p for p in MIGRATIONS.iterdir() if _MIGRATION_NAME.match(p.name)), key=lambda p: p.name)


def _log_migration_warning(diag: psycopg.errors.Diagnostic) -> None:
    if diag.severity_nonlocalized == "WARNING":
        log.warning("schema: %s", diag.message_primary)


def apply_schema(url: str) -> list[str]:
    """Apply schema files not applied yet, in order; returns the names applied."""
    applied_now = []
    with psycopg.connect(url, autocommit=True) as conn:
        # A migration reports what it found but could not fix (RAISE WARNING) to the log;
        # plain notices ("already exists, skipping") are noise.
        conn.add_notice_handler(_log_migration_warning)
        # Several gunicorn workers may start at once: one applies, the others wait.
        conn.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK_KEY,))
        try:
            conn.execute((MIGRATIONS / "000_schema_migrations.sql").read_text(encoding="utf-8"))
            done = {r[0] for r in conn.execute("SELECT filename FROM schema_migrations")}
            for path in migration_files():
                if path.name in done or path.name.startswith("000_"):
                    continue
                with conn.transaction():
                    conn.execute(path.read_text(encoding="utf-8"))
                    conn.execute("INSERT INTO schema_migrations (filename) VALUES (%s)", (path.name,))
                applied_now.append(path.name)
                log.info("applied schema %s", path.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK_KEY,))
    return applied_now


def drop_everything(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((MIGRATIONS / "reset.sql").read_text(encoding="utf-8"))
