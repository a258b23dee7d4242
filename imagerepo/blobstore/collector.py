"""Freeing what nothing references, in short transactions, without ever racing an upload.

Three passes (README, "Storage design"): zero-count objects past the grace period are locked
(SKIP LOCKED) and their manifests decrement their chunks; zero-count chunks past the grace
period are locked, their files unlinked while the rows are locked, and the rows deleted; files
with no row (orphans) are claimed with a zero row first, which waits for any upload inserting
that row, and staging areas no live upload holds are removed. The caller says what is in use
(`object_references_sql`), so nothing still named by a referrer is freed even if its count
drifted to zero.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .cache import ChunkCache
from .interface import ChunkStore
from .stats import Counters

if TYPE_CHECKING:
    from ..db import Database

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int | None], None]  # (phase, done, total or None)

_BATCH = 500
# How often a server process walks the whole chunk store for orphan and staging files.
FILE_SWEEP_INTERVAL_SECONDS = 3600
# The first walk comes this soon after a process starts (or after the collection interval, if
# shorter): workers restarted more often than hourly would otherwise never walk. The advisory
# lock keeps it to one process at a time; the others skip their walk.
FIRST_SWEEP_DELAY_SECONDS = 60
_SWEEP_LOCK_KEY = 0x1A6E_5E3F


@dataclasses.dataclass
class GcReport:
    objects_freed: int = 0
    chunks_freed: int = 0
    bytes_freed: int = 0
    orphan_files_removed: int = 0
    staging_files_removed: int = 0


class Collector:
    def __init__(
        self,
        db: Database,
        store: ChunkStore,
        cache: ChunkCache,
        counters: Counters,
        grace_seconds: int,
        object_references_sql: str | None,
    ):
        self.db = db
        self.store = store
        self.cache = cache
        self.counters = counters
        self.grace_seconds = grace_seconds
        # SELECT yielding one row (object_digest) per reference; None means "no referrers table".
        self.object_references_sql = object_references_sql
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        # Other owners' clean-ups run with each collection (the app adds expired share links').
        self.extra_sweeps: list[Callable[[], object]] = []

    def collect_garbage(
        self, grace_seconds: int | None = None, progress: Progress | None = None, sweep_files: bool = True
    ) -> GcReport:
        """Free what nothing references. `sweep_files` also walks the whole chunk store for
        orphan and staging files, which costs a directory scan: the server does it rarely."""
        grace = self.grace_seconds if grace_seconds is None else grace_seconds
        report = GcReport()
        self._free_objects(grace, report, progress)
        self._free_chunks(grace, report, progress)
        if sweep_files:
            self._sweep_files(grace, report, progress)
        for sweep in self.extra_sweeps:
            sweep()
        self.counters.inc("gc_runs")
        self.counters.inc("gc_chunks_freed", report.chunks_freed)
        return report

    def _sweep_files(self, grace: int, report: GcReport, progress: Progress | None) -> None:
        # One process at a time walks the store: every worker runs a collector, and N
        # concurrent walks of a big store would only multiply the disk work.
        with self.db.transaction() as lock_conn:
            if not lock_conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (_SWEEP_LOCK_KEY,)).fetchone()["ok"]:
                return
            try:
                self._sweep_orphans(grace, report, progress)
                # In-flight uploads hold their staging area's lock, so even grace 0 cannot hurt them.
                report.staging_files_removed = self.store.sweep_staging(grace)
            finally:
                lock_conn.execute("SELECT pg_advisory_unlock(%s)", (_SWEEP_LOCK_KEY,))

    def _free_objects(self, grace: int, report: GcReport, progress: Progress | None) -> None:
        while True:
            with self.db.transaction() as conn:
                # A count that drifted to 0 while something still refers to the object must not
                # free it (fsck reports the drift, --repair fixes it).
                still_referenced = (
                    f" AND NOT EXISTS (SELECT 1 FROM ({self.object_references_sql}) r"
                    "   WHERE r.object_digest = o.digest)"
                    if self.object_references_sql
                    else ""
                )
                doomed = [
                    r["digest"]
                    for r in conn.execute(
                        "SELECT digest FROM objects o WHERE refcount = 0"
                        " AND coalesce(released_at, created_at) <= now() - make_interval(secs => %s)"
                        + still_referenced
                        + " ORDER BY digest LIMIT %s FOR UPDATE SKIP LOCKED",
                        (grace, _BATCH),
                    )
                ]
                if not doomed:
                    return
                counts = conn.execute(
                    "SELECT chunk_digest AS digest, count(*)::int AS n FROM object_chunks"
                    " WHERE object_digest = ANY(%s) GROUP BY chunk_digest ORDER BY chunk_digest",
                    (doomed,),
                ).fetchall()
                digests = [r["digest"] for r in counts]
                # Lock in digest order, the same order uploads use, so neither can deadlock.
                conn.execute("SELECT 1 FROM chunks WHERE digest = ANY(%s) ORDER BY digest FOR UPDATE", (digests,))
                conn.execute(
                    "UPDATE chunks c SET refcount = c.refcount - m.n,"
                    " released_at = CASE WHEN c.refcount = m.n THEN now() ELSE c.released_at END"
                    " FROM unnest(%s::bytea[], %s::int[]) AS m(digest, n) WHERE c.digest = m.digest",
                    (digests, [r["n"] for r in counts]),
                )
                conn.execute("DELETE FROM objects WHERE digest = ANY(%s)", (doomed,))
            report.objects_freed += len(doomed)
            if progress:
                progress("objects", report.objects_freed, None)

    def _free_chunks(self, grace: int, report: GcReport, progress: Progress | None) -> None:
        while True:
            with self.db.transaction() as conn:
                # The NOT EXISTS guards against a count that drifted to 0 while a manifest still
                # names the chunk: unlinking it would lose data (fsck reports the drift).
                doomed = conn.execute(
                    "SELECT digest, size FROM chunks c WHERE refcount = 0"
                    " AND coalesce(released_at, created_at) <= now() - make_interval(secs => %s)"
                    " AND NOT EXISTS (SELECT 1 FROM object_chunks oc WHERE oc.chunk_digest = c.digest)"
                    " ORDER BY digest LIMIT %s FOR UPDATE SKIP LOCKED",
                    (grace, _BATCH),
                ).fetchall()
                if not doomed:
                    return
                # Unlink while the rows are locked: an upload of the same bytes waits on the
                # lock, then finds no row and no file, and writes both anew.
                for row in doomed:
                    self.store.delete(bytes(row["digest"]).hex())
                    # Nothing references it any more; drop it only to give the memory back.
                    self.cache.forget(bytes(row["digest"]).hex())
                conn.execute("DELETE FROM chunks WHERE digest = ANY(%s)", ([r["digest"] for r in doomed],))
            report.chunks_freed += len(doomed)
            report.bytes_freed += sum(r["size"] for r in doomed)
            if progress:
                progress("chunks", report.chunks_freed, None)

    def _sweep_orphans(self, grace: int, report: GcReport, progress: Progress | None) -> None:
        cutoff = time.time() - grace
        candidates = [f for f in self.store.iterate() if f.mtime <= cutoff]
        for start in range(0, len(candidates), _BATCH):
            batch = candidates[start : start + _BATCH]
            with self.db.transaction() as conn:
                known = {
                    bytes(r["digest"]).hex()
                    for r in conn.execute(
                        "SELECT digest FROM chunks WHERE digest = ANY(%s)", ([bytes.fromhex(f.digest) for f in batch],)
                    )
                }
                orphans = [f for f in batch if f.digest not in known]
                if not orphans:
                    continue
                # Claim each orphan with a zero row. An upload inserting the same row right now
                # makes this wait and then skip it (conflict), so its file is never unlinked.
                claimed = conn.execute(
                    "INSERT INTO chunks (digest, size, refcount, released_at)"
                    " SELECT d, greatest(s, 1), 0, now() FROM unnest(%s::bytea[], %s::int[]) AS t(d, s) ORDER BY d"
                    " ON CONFLICT (digest) DO NOTHING RETURNING digest",
                    ([bytes.fromhex(f.digest) for f in orphans], [f.size for f in orphans]),
                ).fetchall()
                # Count only what was unlinked: a file listed a moment ago may be gone now.
                removed = sum(self.store.delete(bytes(row["digest"]).hex()) for row in claimed)
                conn.execute("DELETE FROM chunks WHERE digest = ANY(%s)", ([r["digest"] for r in claimed],))
            report.orphan_files_removed += removed
            if progress:
                progress("orphans", start + len(batch), len(candidates))

    def start_background(self, interval_seconds: int) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()

        def loop() -> None:
            last_sweep: float | None = None
            wait = min(interval_seconds, FIRST_SWEEP_DELAY_SECONDS)
            while not self._stop.wait(wait):
                wait = interval_seconds
                try:
                    sweep = last_sweep is None or time.monotonic() - last_sweep >= FILE_SWEEP_INTERVAL_SECONDS
                    report = self.collect_garbage(sweep_files=sweep)
                    if sweep:
                        last_sweep = time.monotonic()
                    if report.chunks_freed or report.objects_freed or report.orphan_files_removed:
                        log.info("collector: %s", report)
                except Exception:  # the collector must outlive a database hiccup
                    log.exception("background garbage collection failed")

        self._thread = threading.Thread(target=loop, name="imagerepo-collector", daemon=True)
        self._thread.start()

    def stop_background(self, timeout: float = 30) -> None:
        """Stop the collector and wait for a run in progress to finish (it may hold locks)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
