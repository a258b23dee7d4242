"""Per-worker cache of the state every read checks: image rows (who owns an image, whether it is
private, its key) and token/account state (a token's jti not revoked, an account not disabled),
kept true by PostgreSQL LISTEN/NOTIFY.

Why: a small GET used to pay two round trips to PostgreSQL (the token's revocation and account
check, then the image row) for answers that change rarely.

How it stays true (migration 011): triggers on `images` (UPDATE, DELETE), `users` (a change of
`is_disabled`, DELETE) and `revoked_tokens` (INSERT) call pg_notify('imagerepo_state', ...) in
the very transaction that makes the change, so the notice goes out when, and only if, it
commits. Each worker process runs one listener thread on a connection of its own, which drops
the entries named. Big statements send one `image:*` / `user:*` that drops a whole kind.

The staleness bound, `BOUND_SECONDS` (1 s): the cache answers only while its listener has
proved, within the last second, that it has every notice committed before a heartbeat it sent
(a `SELECT 1` every `HEARTBEAT_SECONDS`; PostgreSQL delivers a listening session's notices
before it reads its next query). So a change is enforced by every worker at most 1 s after its
commit (in practice a few milliseconds); when the listener's connection is lost, or its thread
starved, the cache is bypassed (every check goes to PostgreSQL) and emptied, and it is used
again only after a reconnect (LISTEN first, then an empty cache: a resynchronisation).

Read-your-writes in one worker: after a request that changes something, `sync()` waits for two
heartbeats started after the change's commit (a few milliseconds), so the same worker's next
request sees it even if it comes on the next microsecond.

Races: a reader fetches a row, a change commits and its notice drops the key, then the reader
stores its (stale) row. Every store therefore names the generation it read under
(`generation()` before the query); any invalidation moves the generation on, and a store from
an older generation is ignored.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Callable

import psycopg

log = logging.getLogger(__name__)

CHANNEL = "imagerepo_state"
BOUND_SECONDS = 1.0
HEARTBEAT_SECONDS = 0.2
MAX_ENTRIES = 50_000  # per kind; past it the oldest entries go (rows are ~1 KiB)
_RECONNECT_SECONDS = 0.5


class StateCache:
    def __init__(self, url: str, enabled: bool = True, bound: float = BOUND_SECONDS):
        self.url = url
        self.enabled = enabled
        self.bound = bound
        self._lock = threading.Condition()
        self._kinds: dict[str, dict] = {"image": {}, "user": {}, "token": {}}
        self._generation = 0
        self._valid_until = 0.0  # monotonic time until which entries may be used
        self._beats = 0  # heartbeats completed on the current connection
        self._wanted = 0  # heartbeats asked for by sync()
        self._pid: int | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False
        self._wake_r, self._wake_w = -1, -1
        self.stats = {"hits": 0, "misses": 0, "bypassed": 0, "invalidations": 0, "reconnects": 0}

    # -- reading and storing ------------------------------------------------------------------
    def _usable(self) -> bool:
        if not self.enabled or self._closed:
            return False
        self._ensure_listener()
        return time.monotonic() < self._valid_until

    def generation(self) -> int:
        return self._generation

    def get(self, kind: str, key):
        """The cached value, or None (absent, or the cache cannot be trusted right now)."""
        if not self._usable():
            self.stats["bypassed"] += 1
            return None
        value = self._kinds[kind].get(key)
        self.stats["hits" if value is not None else "misses"] += 1
        return value

    def put(self, kind: str, key, value, generation: int) -> None:
        """Store `value`, read from PostgreSQL while the generation was `generation`."""
        if value is None or not self._usable():
            return
        with self._lock:
            if generation != self._generation:
                return  # something changed since it was read: it may be stale
            entries = self._kinds[kind]
            if len(entries) >= MAX_ENTRIES:
                del entries[next(iter(entries))]
            entries[key] = value

    def cached(self, kind: str, key, load: Callable):
        """The value for `key`, from the cache or from `load()` (then stored)."""
        value = self.get(kind, key)
        if value is None:
            generation = self._generation
            value = load()
            self.put(kind, key, value, generation)
        return value

    # -- invalidation -------------------------------------------------------------------------
    def _forget(self, kind: str, key: str | None) -> None:
        with self._lock:
            self._generation += 1
            self.stats["invalidations"] += 1
            entries = self._kinds.get(kind)
            if entries is None:
                return
            if key is None:
                entries.clear()
            else:
                entries.pop(int(key) if kind in ("image", "user") else key, None)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            for entries in self._kinds.values():
                entries.clear()

    def _on_notice(self, notice: psycopg.Notify) -> None:
        kind, _, key = notice.payload.partition(":")
        try:
            self._forget(kind, None if key == "*" else key)
        except ValueError:  # not a payload of ours: be safe
            self.clear()

    # -- the listener -------------------------------------------------------------------------
    def _ensure_listener(self) -> None:
        # Threads do not survive fork(): each gunicorn worker starts its own on first use.
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._pid = os.getpid()
                    self._valid_until = 0.0
                    self._stop.clear()
                    self._wake_r, self._wake_w = os.pipe()
                    # A request never blocks on the wake-up pipe, even if the listener is away.
                    os.set_blocking(self._wake_w, False)
                    self._thread = threading.Thread(target=self._run, name="statecache-listener", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        delay = _RECONNECT_SECONDS
        while not self._stop.is_set():
            try:
                # Named with the worker's pid, so an operator (and the tests) can tell whose it is.
                name = f"imagerepo-statecache {os.getpid()}"
                with psycopg.connect(self.url, autocommit=True, application_name=name) as conn:
                    conn.add_notify_handler(self._on_notice)
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.clear()  # what was cached before LISTEN may have missed a notice
                    delay = _RECONNECT_SECONDS
                    self._listen(conn)
            except psycopg.Error as err:
                self._offline()
                # Said once per outage; retried at 0.5 s, doubling up to 8 s (a server at its
                # connection limit is not helped by a worker knocking twice a second).
                if delay == _RECONNECT_SECONDS:
                    log.warning("state cache: listener connection lost (%s); bypassing the cache", err)
                self.stats["reconnects"] += 1
                self._stop.wait(delay)
                delay = min(delay * 2, 8.0)
        self._offline()

    def _listen(self, conn: psycopg.Connection) -> None:
        previous_start: float | None = None
        while not self._stop.is_set():
            start = time.monotonic()
            conn.execute("SELECT 1")  # the heartbeat; notices ahead of its answer are handled first
            with self._lock:
                self._beats += 1
                # Every notice committed before the previous heartbeat started has now been
                # handled (it was sent before the backend read this heartbeat), so entries are
                # good until that start plus the bound.
                if previous_start is not None:
                    self._valid_until = previous_start + self.bound
                self._lock.notify_all()
                more = self._beats < self._wanted
            previous_start = start
            if more:
                continue
            ready, _, _ = select.select([conn.fileno(), self._wake_r], [], [], HEARTBEAT_SECONDS)
            if self._wake_r in ready:
                os.read(self._wake_r, 4096)

    def _offline(self) -> None:
        with self._lock:
            self._valid_until = 0.0
            self._generation += 1
            for entries in self._kinds.values():
                entries.clear()
            self._lock.notify_all()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:  # full: the listener has wake-ups enough waiting
            pass

    def sync(self, timeout: float = BOUND_SECONDS) -> None:
        """Return once every change committed before the call has reached this worker's cache
        (two heartbeats started after it); on timeout, empty the cache instead."""
        if not self.enabled or self._pid != os.getpid():
            return
        with self._lock:
            target = self._beats + 2
            self._wanted = max(self._wanted, target)
            self._wake()
            done = self._lock.wait_for(lambda: self._beats >= target or self._valid_until == 0.0, timeout)
        if not done:
            self._offline()

    def close(self) -> None:
        self._closed = True
        self._stop.set()
        if self._thread is not None and self._pid == os.getpid():
            self._wake()
            self._thread.join(5)
            os.close(self._wake_r)
            os.close(self._wake_w)
        self._thread = None
        self._pid = None
