"""The blob manager: content-addressed, chunked, reference-counted storage of byte streams.

Two levels of sharing. An *object* is one whole content (SHA-256 of all its bytes, its size,
the chunk size it was cut with, and how many referrers use it); identical uploads share one
object and do no chunk work. A *chunk* is a fixed-size slice named by its own SHA-256, stored
once in the chunk store and counted by the manifest entries that name it, so objects that
overlap share chunks.

The invariant: every chunk row with refcount > 0 has its file, with the right bytes.

How it is held (see README, "Storage design"):
  * commit (upload): upsert the object row; if it is new, upsert the chunk rows (sorted, so
    concurrent uploads lock in one order) which holds their row locks until commit, then move
    each staged chunk file into place if the final file is missing; commit.
  * release (delete): decrement the object's refcount. No file is touched.
  * collect_garbage: zero-count objects past the grace period are locked (SKIP LOCKED), their
    manifests decrement chunk counts and go; zero-count chunks past the grace period are
    locked, unlinked and deleted; files with no row are claimed with a zero row (which waits
    for any upload that is inserting that row) before they are unlinked. Staged files are
    swept only when no live upload holds their staging area's flock (see chunkstore).

Lock order, the same everywhere so nothing can deadlock: the object row first (uploads upsert
it, the collector takes zero-count ones with SKIP LOCKED, so it never waits for an object),
then chunk rows in ascending digest order (upload upserts, the collector's FOR UPDATE and its
orphan claims all sort by digest).

Nothing here knows about HTTP or images: referrers of objects are described by a SQL query
(`object_references_sql`) so `check()` can count them.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import io
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

from cachetools import LRUCache

from .cache import ChunkCache
from .chunkstore import ChunkMissing, LocalChunkStore, StagingArea

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int | None], None]  # (phase, done, total or None)

_HEAD_BYTES = 64 * 1024
_BATCH = 500
MANIFEST_CACHE_ENTRIES = 20_000
# How often a server process walks the whole chunk store for orphan and staging files.
FILE_SWEEP_INTERVAL_SECONDS = 3600
_SWEEP_LOCK_KEY = 0x1A6E_5E3F


_io_executor: ThreadPoolExecutor | None = None
_io_executor_pid: int | None = None
_io_executor_lock = threading.Lock()


def _io_pool() -> ThreadPoolExecutor:
    """Threads for blocking file work (fsyncs at publish). Per process: threads do not
    survive fork, and gunicorn forks its workers."""
    global _io_executor, _io_executor_pid
    if _io_executor is None or _io_executor_pid != os.getpid():
        with _io_executor_lock:
            if _io_executor is None or _io_executor_pid != os.getpid():
                _io_executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="imagerepo-io")
                _io_executor_pid = os.getpid()
    return _io_executor


@dataclasses.dataclass(frozen=True)
class Manifest:
    size: int
    chunk_size: int
    chunks: tuple[str, ...]  # chunk digests (hex), in order


class BlobError(Exception):
    pass


class UploadTooLarge(BlobError):
    pass


class EmptyUpload(BlobError):
    pass


class ChunkCorrupt(BlobError):
    """A chunk's bytes on disk do not match its digest (or the file is missing)."""


class ChunkLost(ChunkCorrupt):
    """A chunk's file is missing."""


@dataclasses.dataclass(frozen=True)
class StoredObject:
    digest: str  # SHA-256 hex of the whole content
    size: int
    chunk_size: int
    created: bool  # False when identical bytes were already stored


@dataclasses.dataclass(frozen=True)
class StagedChunk:
    digest: str
    size: int
    path: Path


class StagedObject:
    """A fully received upload sitting in the staging area, not yet committed."""

    def __init__(
        self,
        store: LocalChunkStore,
        digest: str,
        size: int,
        chunk_size: int,
        chunks: list[StagedChunk],
        head: bytes,
        area: StagingArea | None,
    ):
        self.store = store
        self._area = area
        self.digest = digest
        self.size = size
        self.chunk_size = chunk_size
        self.chunks = chunks  # in order; a repeated chunk appears again with the same path
        self.head = head  # the first bytes, for type sniffing without touching disk

    def reader(self) -> io.BufferedReader:
        """A seekable file over the staged bytes (e.g. for an image parser)."""
        return io.BufferedReader(_StagedReader(self), buffer_size=64 * 1024)

    def discard(self) -> None:
        """Remove what is still staged (files already moved into place are gone) and release
        the staging area's lock. Safe to call more than once."""
        if self._area is not None:
            self._area.remove()


class _StagedReader(io.RawIOBase):
    def __init__(self, staged: StagedObject):
        self._staged = staged
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._staged.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        if self._pos >= self._staged.size:
            return 0
        index, offset = divmod(self._pos, self._staged.chunk_size)
        chunk = self._staged.chunks[index]
        with open(chunk.path, "rb") as handle:
            handle.seek(offset)
            data = handle.read(min(len(buffer), chunk.size - offset))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


class Stager:
    """A write-only sink that cuts what it is given into chunks, hashing on the way and
    staging each distinct chunk to a temp file. Memory stays at about one chunk.

    It has `write` and `seek` so it can be werkzeug's multipart stream factory target."""

    def __init__(self, store: LocalChunkStore, chunk_size: int, max_bytes: int | None):
        self._store = store
        self._chunk_size = chunk_size
        self._max_bytes = max_bytes
        self._buffer = bytearray()
        self._whole = hashlib.sha256()
        self._size = 0
        self._head = bytearray()
        self._chunks: list[StagedChunk] = []
        self._by_digest: dict[str, StagedChunk] = {}
        self._area: StagingArea | None = None

    def write(self, data: bytes) -> int:
        self._size += len(data)
        if self._max_bytes is not None and self._size > self._max_bytes:
            self.abort()
            raise UploadTooLarge(f"more than {self._max_bytes} bytes")
        self._whole.update(data)
        if len(self._head) < _HEAD_BYTES:
            self._head += data[: _HEAD_BYTES - len(self._head)]
        self._buffer += data
        if len(self._buffer) >= self._chunk_size:
            view = memoryview(self._buffer)
            cut = 0
            while len(self._buffer) - cut >= self._chunk_size:
                self._stage(view[cut : cut + self._chunk_size])
                cut += self._chunk_size
            view.release()
            del self._buffer[:cut]
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._size  # werkzeug rewinds a finished part; there is nothing to rewind

    def _stage(self, data) -> None:
        digest = hashlib.sha256(data).hexdigest()
        known = self._by_digest.get(digest)
        if known is None:
            if self._area is None:
                self._area = self._store.new_staging_area()
            handle, path = self._area.new_file()
            with handle:
                handle.write(data)
            known = self._by_digest[digest] = StagedChunk(digest, len(data), path)
        self._chunks.append(known)

    def stage_stream(self, stream, piece: int = 1024 * 1024) -> "Stager":
        while True:
            data = stream.read(piece)
            if not data:
                return self
            self.write(data)

    def finish(self) -> StagedObject:
        if self._size == 0:
            raise EmptyUpload("no bytes")
        if self._buffer:
            self._stage(memoryview(self._buffer))
            self._buffer = bytearray()
        return StagedObject(
            self._store,
            self._whole.hexdigest(),
            self._size,
            self._chunk_size,
            self._chunks,
            bytes(self._head),
            self._area,
        )

    def abort(self) -> None:
        """Throw away everything staged so far (a failed or refused upload)."""
        if self._area is not None:
            self._area.remove()
        self._by_digest.clear()
        self._chunks.clear()

    @property
    def size(self) -> int:
        return self._size


@dataclasses.dataclass
class GcReport:
    objects_freed: int = 0
    chunks_freed: int = 0
    bytes_freed: int = 0
    orphan_files_removed: int = 0
    staging_files_removed: int = 0


@dataclasses.dataclass
class CheckReport:
    chunks_checked: int = 0
    objects_checked: int = 0
    missing_chunks: list[str] = dataclasses.field(default_factory=list)
    wrong_size_chunks: list[str] = dataclasses.field(default_factory=list)
    corrupt_chunks: list[str] = dataclasses.field(default_factory=list)
    chunk_refcount_mismatches: list[tuple[str, int, int]] = dataclasses.field(default_factory=list)
    object_refcount_mismatches: list[tuple[str, int, int]] = dataclasses.field(default_factory=list)
    broken_manifests: list[str] = dataclasses.field(default_factory=list)
    orphan_files: list[str] = dataclasses.field(default_factory=list)
    unreferenced_chunks: int = 0
    unreferenced_objects: int = 0
    repaired: int = 0

    @property
    def problems(self) -> int:
        return (
            len(self.missing_chunks)
            + len(self.wrong_size_chunks)
            + len(self.corrupt_chunks)
            + len(self.chunk_refcount_mismatches)
            + len(self.object_refcount_mismatches)
            + len(self.broken_manifests)
        )

    @property
    def clean(self) -> bool:
        return self.problems == 0


def _hex(digest: bytes) -> str:
    return bytes(digest).hex()


class BlobStore:
    def __init__(
        self,
        db,
        store: LocalChunkStore,
        cache: ChunkCache,
        chunk_size: int,
        max_upload_bytes: int | None = None,
        gc_grace_seconds: int = 600,
        object_references_sql: str | None = None,
    ):
        self.db = db
        self.store = store
        self.cache = cache
        self.chunk_size = chunk_size
        self.max_upload_bytes = max_upload_bytes
        self.gc_grace_seconds = gc_grace_seconds
        # SELECT yielding one row (object_digest) per reference; None means "no referrers table".
        self.object_references_sql = object_references_sql
        self.counters = collections.Counter()
        self._manifests: LRUCache = LRUCache(maxsize=MANIFEST_CACHE_ENTRIES)
        self._manifest_lock = threading.Lock()
        self._collector: threading.Thread | None = None
        self._stop = threading.Event()

    @classmethod
    def for_config(cls, config, db, object_references_sql: str | None = None) -> "BlobStore":
        return cls(
            db,
            LocalChunkStore(config.blob_dir, fsync=config.fsync),
            ChunkCache(config.cache_bytes, config.cache_max_object_bytes),
            config.chunk_size,
            config.max_upload_bytes,
            config.gc_grace_seconds,
            object_references_sql,
        )

    # -- writing ---------------------------------------------------------------------------
    def stager(self) -> Stager:
        return Stager(self.store, self.chunk_size, self.max_upload_bytes)

    def put(self, stream, conn=None) -> StoredObject:
        """Store everything `stream` yields and take one reference to it."""
        stager = self.stager()
        try:
            staged = stager.stage_stream(stream).finish()
        except BaseException:
            stager.abort()
            raise
        try:
            if conn is not None:
                return self.commit(conn, staged)
            with self.db.transaction() as own:
                return self.commit(own, staged)
        finally:
            staged.discard()

    def commit(self, conn, staged: StagedObject) -> StoredObject:
        """Take one reference to the staged content inside the caller's transaction.

        The caller must call `staged.discard()` afterwards (commit or not): staged files that
        were moved into place are gone already, the rest are leftovers."""
        digest = bytes.fromhex(staged.digest)
        row = conn.execute(
            "INSERT INTO objects (digest, size, chunk_size, refcount) VALUES (%s, %s, %s, 1)"
            " ON CONFLICT (digest) DO UPDATE SET refcount = objects.refcount + 1, released_at = NULL"
            " RETURNING (xmax = 0) AS inserted, chunk_size",
            (digest, staged.size, staged.chunk_size),
        ).fetchone()
        if not row["inserted"]:
            self.counters["uploads_deduplicated"] += 1
            if row["chunk_size"] == staged.chunk_size:
                self._heal(staged)
            return StoredObject(staged.digest, staged.size, row["chunk_size"], created=False)

        references = collections.Counter(c.digest for c in staged.chunks)
        distinct = sorted({c.digest: c for c in staged.chunks}.values(), key=lambda c: c.digest)
        conn.execute(
            "INSERT INTO chunks (digest, size, refcount)"
            " SELECT d, s, n FROM unnest(%s::bytea[], %s::int[], %s::int[]) AS t(d, s, n) ORDER BY d"
            " ON CONFLICT (digest) DO UPDATE"
            " SET refcount = chunks.refcount + EXCLUDED.refcount, released_at = NULL",
            (
                [bytes.fromhex(c.digest) for c in distinct],
                [c.size for c in distinct],
                [references[c.digest] for c in distinct],
            ),
        )
        with conn.cursor().copy("COPY object_chunks (object_digest, idx, chunk_digest) FROM STDIN") as copy:
            for index, chunk in enumerate(staged.chunks):
                copy.write_row((digest, index, bytes.fromhex(chunk.digest)))
        # Row locks on every chunk are held now: the collector cannot free any of them until
        # we commit, so publishing a missing file here cannot be undone behind our back.
        # In parallel: each publish is an fsync of the file and of its fan-out directory, and
        # fsyncs on different files overlap well (the serial loop spent most of an upload here).
        written = _io_pool().map(lambda chunk: self.store.put(chunk.digest, chunk.path), distinct)
        self.counters["chunks_written"] += sum(written)
        self.counters["objects_created"] += 1
        return StoredObject(staged.digest, staged.size, staged.chunk_size, created=True)

    def _heal(self, staged: StagedObject) -> None:
        """Put back any chunk file of an existing object that has gone missing from disk (fsck
        reports those), from the identical bytes just received. Safe without chunk row locks:
        the object's reference, held under its row lock, keeps every one of its chunks counted,
        so the collector cannot be freeing them."""
        for chunk in {c.digest: c for c in staged.chunks}.values():
            if not self.store.exists(chunk.digest):
                log.warning("chunk %s was missing from the store; rewritten from an identical upload", chunk.digest)
                self.store.put(chunk.digest, chunk.path)
                self.counters["chunks_healed"] += 1

    def release(self, conn, digest: str) -> None:
        """Drop one reference. Storage is reclaimed later by `collect_garbage`."""
        conn.execute(
            "UPDATE objects SET refcount = refcount - 1,"
            " released_at = CASE WHEN refcount = 1 THEN now() ELSE released_at END"
            " WHERE digest = %s",
            (bytes.fromhex(digest),),
        )

    # -- reading ---------------------------------------------------------------------------
    def read_chunk(self, digest: str, object_size: int | None = None) -> bytes:
        """Verified bytes of one chunk: from the cache, else from the store and checked.
        `object_size`, of the object being read, lets the cache keep big objects out."""
        data = self.cache.get(digest, object_size)
        return data if data is not None else self._load_chunk(digest, object_size)

    def _load_chunk(self, digest: str, object_size: int | None = None) -> bytes:
        try:
            data = self.store.get(digest)
        except ChunkMissing:
            log.error("chunk %s is referenced but missing from the store", digest)
            raise ChunkLost(f"chunk {digest} is missing") from None
        if hashlib.sha256(data).hexdigest() != digest:
            log.error("chunk %s failed verification: its bytes do not match its digest", digest)
            self.counters["chunks_corrupt"] += 1
            raise ChunkCorrupt(f"chunk {digest} is corrupt")
        self.cache.put(digest, data, object_size)
        return data

    def manifest(self, digest: str, chunk_size: int | None = None) -> tuple[Manifest, bool]:
        """The object's size, chunk size and chunk digests; and whether it came from the cache.

        Manifests are content-addressed and never change while the object exists, so each
        worker keeps recent ones: a small image's GET then needs no manifest query at all. The
        same content stored again after being freed has the same manifest unless it was cut
        with another chunk size, so a caller that knows the object's chunk size passes it."""
        with self._manifest_lock:
            cached = self._manifests.get(digest)
        if cached is not None and (chunk_size is None or cached.chunk_size == chunk_size):
            return cached, True
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT o.size, o.chunk_size, array_agg(oc.chunk_digest ORDER BY oc.idx) AS chunks"
                " FROM objects o JOIN object_chunks oc ON oc.object_digest = o.digest"
                " WHERE o.digest = %s GROUP BY o.digest, o.size, o.chunk_size",
                (bytes.fromhex(digest),),
            ).fetchone()
        if row is None:
            raise KeyError(digest)
        found = Manifest(row["size"], row["chunk_size"], tuple(_hex(c) for c in row["chunks"]))
        with self._manifest_lock:
            self._manifests[digest] = found
        return found, False

    def forget_manifest(self, digest: str) -> None:
        with self._manifest_lock:
            self._manifests.pop(digest, None)

    def open(
        self, digest: str, start: int = 0, end: int | None = None, chunk_size: int | None = None
    ) -> Iterator[bytes]:
        """Bytes start..end (inclusive) of an object, chunk by chunk, reading only the chunks
        the range touches. The first chunk is read before returning, so a missing or corrupt
        first chunk raises here (before a response has started). `chunk_size`, when the caller
        has it from the objects row, keeps a cached manifest from an earlier life of the same
        content from being used."""
        for attempt in range(2):
            found, from_cache = self.manifest(digest, chunk_size)
            last = found.size - 1 if end is None else min(end, found.size - 1)
            first_index, last_index = start // found.chunk_size, last // found.chunk_size
            plan = [(index * found.chunk_size, found.chunks[index]) for index in range(first_index, last_index + 1)]
            try:
                first = self.read_chunk(plan[0][1], found.size)
            except ChunkLost:
                # A cached manifest can outlive its object (freed, then stored again with
                # another chunk size, so other chunks); ask the database once before giving up.
                if from_cache and attempt == 0:
                    self.forget_manifest(digest)
                    continue
                raise
            return self._iterate(digest, plan, first, start, last, found.size)
        raise AssertionError("unreachable")

    def _iterate(self, digest: str, plan, first: bytes, start: int, end: int, size: int) -> Iterator[bytes]:
        # Reading the next chunk on another thread while this one is sent was tried and
        # measured slower on 2 cores (the client shares them): see README, "Performance".
        for position, (chunk_start, chunk_digest) in enumerate(plan):
            try:
                data = first if position == 0 else self.read_chunk(chunk_digest, size)
            except ChunkLost:
                self.forget_manifest(digest)  # so the next request asks the database again
                raise
            low = max(start - chunk_start, 0)
            high = min(end + 1 - chunk_start, len(data))
            yield data if (low == 0 and high == len(data)) else data[low:high]

    def read_all(self, digest: str) -> bytes:
        return b"".join(self.open(digest))

    # -- collecting ------------------------------------------------------------------------
    def collect_garbage(
        self, grace_seconds: int | None = None, progress: Progress | None = None, sweep_files: bool = True
    ) -> GcReport:
        """Free what nothing references. `sweep_files` also walks the whole chunk store for
        orphan and staging files, which costs a directory scan: the server does it rarely."""
        grace = self.gc_grace_seconds if grace_seconds is None else grace_seconds
        report = GcReport()
        self._free_objects(grace, report, progress)
        self._free_chunks(grace, report, progress)
        if sweep_files:
            self._sweep_files(grace, report, progress)
        self.counters["gc_runs"] += 1
        self.counters["gc_chunks_freed"] += report.chunks_freed
        return report

    def _sweep_files(self, grace: int, report: GcReport, progress) -> None:
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

    def _free_objects(self, grace: int, report: GcReport, progress) -> None:
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

    def _free_chunks(self, grace: int, report: GcReport, progress) -> None:
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
                    self.store.delete(_hex(row["digest"]))
                    # Nothing references it any more; drop it only to give the memory back.
                    self.cache.forget(_hex(row["digest"]))
                conn.execute("DELETE FROM chunks WHERE digest = ANY(%s)", ([r["digest"] for r in doomed],))
            report.chunks_freed += len(doomed)
            report.bytes_freed += sum(r["size"] for r in doomed)
            if progress:
                progress("chunks", report.chunks_freed, None)

    def _sweep_orphans(self, grace: int, report: GcReport, progress) -> None:
        cutoff = time.time() - grace
        candidates = [f for f in self.store.iterate() if f.mtime <= cutoff]
        for start in range(0, len(candidates), _BATCH):
            batch = candidates[start : start + _BATCH]
            with self.db.transaction() as conn:
                known = {
                    _hex(r["digest"])
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
                for row in claimed:
                    self.store.delete(_hex(row["digest"]))
                conn.execute("DELETE FROM chunks WHERE digest = ANY(%s)", ([r["digest"] for r in claimed],))
            report.orphan_files_removed += len(claimed)
            if progress:
                progress("orphans", start + len(batch), len(candidates))

    def start_background_collector(self, interval_seconds: int) -> None:
        if self._collector is not None and self._collector.is_alive():
            return
        self._stop.clear()

        def loop():
            last_sweep = time.monotonic()
            while not self._stop.wait(interval_seconds):
                try:
                    sweep = time.monotonic() - last_sweep >= FILE_SWEEP_INTERVAL_SECONDS
                    report = self.collect_garbage(sweep_files=sweep)
                    if sweep:
                        last_sweep = time.monotonic()
                    if report.chunks_freed or report.objects_freed or report.orphan_files_removed:
                        log.info("collector: %s", report)
                except Exception:  # the collector must outlive a database hiccup
                    log.exception("background garbage collection failed")

        self._collector = threading.Thread(target=loop, name="imagerepo-collector", daemon=True)
        self._collector.start()

    def stop_background_collector(self, timeout: float = 30) -> None:
        """Stop the collector and wait for a run in progress to finish (it may hold locks)."""
        self._stop.set()
        if self._collector is not None:
            self._collector.join(timeout)
            self._collector = None

    # -- checking --------------------------------------------------------------------------
    def check(
        self, verify_content: bool = False, repair: bool = False, progress: Progress | None = None
    ) -> CheckReport:
        report = CheckReport()
        with self.db.transaction() as conn:
            # One snapshot for every count, so concurrent uploads cannot make them disagree.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            total = conn.execute("SELECT count(*) AS n FROM chunks WHERE refcount > 0").fetchone()["n"]
            with conn.cursor(name="fsck_chunks") as cursor:
                cursor.itersize = 2000
                cursor.execute("SELECT digest, size FROM chunks WHERE refcount > 0 ORDER BY digest")
                for row in cursor:
                    self._check_chunk(_hex(row["digest"]), row["size"], verify_content, report)
                    report.chunks_checked += 1
                    if progress and (report.chunks_checked % 1000 == 0 or report.chunks_checked == total):
                        progress("chunks", report.chunks_checked, total)
            report.chunk_refcount_mismatches = [
                (_hex(r["digest"]), r["refcount"], r["expected"])
                for r in conn.execute(
                    "SELECT coalesce(c.digest, m.chunk_digest) AS digest, coalesce(c.refcount, -1) AS refcount,"
                    " coalesce(m.n, 0)::int AS expected FROM chunks c"
                    " FULL JOIN (SELECT chunk_digest, count(*) AS n FROM object_chunks GROUP BY 1) m"
                    " ON m.chunk_digest = c.digest WHERE c.refcount IS DISTINCT FROM coalesce(m.n, 0)"
                )
            ]
            if self.object_references_sql:
                report.object_refcount_mismatches = [
                    (_hex(r["digest"]), r["refcount"], r["expected"])
                    for r in conn.execute(
                        "SELECT coalesce(o.digest, m.object_digest) AS digest, coalesce(o.refcount, -1) AS refcount,"
                        " coalesce(m.n, 0)::int AS expected FROM objects o"
                        f" FULL JOIN (SELECT object_digest, count(*) AS n FROM ({self.object_references_sql}) r"
                        " GROUP BY 1) m ON m.object_digest = o.digest"
                        " WHERE o.refcount IS DISTINCT FROM coalesce(m.n, 0)"
                    )
                ]
            report.broken_manifests = [
                _hex(r["digest"])
                for r in conn.execute(
                    "SELECT o.digest FROM objects o LEFT JOIN object_chunks oc ON oc.object_digest = o.digest"
                    " LEFT JOIN chunks c ON c.digest = oc.chunk_digest GROUP BY o.digest, o.size, o.chunk_size"
                    " HAVING count(oc.idx) <> (o.size + o.chunk_size - 1) / o.chunk_size"
                    "   OR coalesce(sum(c.size), 0) <> o.size OR max(oc.idx) <> count(oc.idx) - 1"
                )
            ]
            report.objects_checked = conn.execute("SELECT count(*) AS n FROM objects").fetchone()["n"]
            report.unreferenced_chunks = conn.execute("SELECT count(*) AS n FROM chunks WHERE refcount = 0").fetchone()[
                "n"
            ]
            report.unreferenced_objects = conn.execute(
                "SELECT count(*) AS n FROM objects WHERE refcount = 0"
            ).fetchone()["n"]
            known = {_hex(r["digest"]) for r in conn.execute("SELECT digest FROM chunks")}
        if report.missing_chunks:
            report.missing_chunks = self._still_missing(report.missing_chunks)
        files = 0
        for chunk_file in self.store.iterate():
            files += 1
            if chunk_file.digest not in known:
                report.orphan_files.append(chunk_file.digest)
            if progress and files % 1000 == 0:
                progress("files", files, None)
        if repair:
            report.repaired = self._repair_counts()
        return report

    def _still_missing(self, digests: list[str]) -> list[str]:
        """The snapshot may predate a collection that freed these chunks (rows and files)
        while the check ran; only a chunk still referenced now and still absent is missing."""
        with self.db.transaction() as conn:
            referenced = {
                _hex(r["digest"])
                for r in conn.execute(
                    "SELECT digest FROM chunks WHERE digest = ANY(%s) AND refcount > 0",
                    ([bytes.fromhex(d) for d in digests],),
                )
            }
        return [d for d in digests if d in referenced and not self.store.exists(d)]

    def _check_chunk(self, digest: str, size: int, verify_content: bool, report: CheckReport) -> None:
        try:
            data = self.store.get(digest) if verify_content else None
            actual_size = len(data) if data is not None else self.store.path_for(digest).stat().st_size
        except (ChunkMissing, FileNotFoundError):
            report.missing_chunks.append(digest)
            return
        if actual_size != size:
            report.wrong_size_chunks.append(digest)
        elif data is not None and hashlib.sha256(data).hexdigest() != digest:
            report.corrupt_chunks.append(digest)

    def _repair_counts(self) -> int:
        """Set every refcount to the references that exist. Deletes nothing."""
        fixed = 0
        with self.db.transaction() as conn:
            conn.execute("LOCK TABLE objects, chunks IN SHARE ROW EXCLUSIVE MODE")
            if self.object_references_sql:
                fixed += conn.execute(
                    "UPDATE objects o SET refcount = coalesce(m.n, 0),"
                    " released_at = CASE WHEN coalesce(m.n, 0) = 0 THEN now() END"
                    f" FROM objects o2 LEFT JOIN (SELECT object_digest, count(*) AS n FROM ({self.object_references_sql}) r"
                    " GROUP BY 1) m ON m.object_digest = o2.digest"
                    " WHERE o.digest = o2.digest AND o.refcount IS DISTINCT FROM coalesce(m.n, 0)"
                ).rowcount
            fixed += conn.execute(
                "UPDATE chunks c SET refcount = coalesce(m.n, 0),"
                " released_at = CASE WHEN coalesce(m.n, 0) = 0 THEN now() END"
                " FROM chunks c2 LEFT JOIN (SELECT chunk_digest, count(*) AS n FROM object_chunks GROUP BY 1) m"
                " ON m.chunk_digest = c2.digest"
                " WHERE c.digest = c2.digest AND c.refcount IS DISTINCT FROM coalesce(m.n, 0)"
            ).rowcount
        return fixed

    # -- reporting -------------------------------------------------------------------------
    def stats(self) -> dict:
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM objects WHERE refcount > 0) AS objects,"
                " (SELECT count(*) FROM chunks WHERE refcount > 0) AS chunks,"
                " (SELECT coalesce(sum(size), 0) FROM chunks WHERE refcount > 0)::bigint AS stored_bytes,"
                " (SELECT coalesce(sum(size), 0) FROM objects WHERE refcount > 0)::bigint AS object_bytes"
            ).fetchone()
            logical = row["object_bytes"]
            references = None
            if self.object_references_sql:
                ref = conn.execute(
                    f"SELECT count(*) AS n, coalesce(sum(o.size), 0)::bigint AS bytes FROM ({self.object_references_sql}) r"
                    " JOIN objects o ON o.digest = r.object_digest"
                ).fetchone()
                references, logical = ref["n"], ref["bytes"]
        stored = row["stored_bytes"]
        return {
            "references": references,
            "objects": row["objects"],
            "chunks": row["chunks"],
            "logical_bytes": logical,
            "stored_bytes": stored,
            "dedup_ratio": round(logical / stored, 3) if stored else None,
        }

    def metrics(self) -> list[tuple[str, str, str, int]]:
        return [
            ("imagerepo_cache_hits_total", "counter", "Chunk reads served from the cache", self.cache.hits),
            (
                "imagerepo_cache_misses_total",
                "counter",
                "Cacheable chunk reads that went to the store",
                self.cache.misses,
            ),
            (
                "imagerepo_cache_bypassed_total",
                "counter",
                "Chunk reads of objects over the cache's size gate (read from the store, not cached)",
                self.cache.bypassed,
            ),
            ("imagerepo_cache_bytes", "gauge", "Bytes held by the chunk cache", self.cache.bytes_used),
            ("imagerepo_cache_chunks", "gauge", "Chunks held by the chunk cache", len(self.cache)),
            (
                "imagerepo_objects_created_total",
                "counter",
                "Uploads that stored new content",
                self.counters["objects_created"],
            ),
            (
                "imagerepo_uploads_deduplicated_total",
                "counter",
                "Uploads of content already stored",
                self.counters["uploads_deduplicated"],
            ),
            ("imagerepo_chunks_written_total", "counter", "Chunk files written", self.counters["chunks_written"]),
            (
                "imagerepo_chunks_corrupt_total",
                "counter",
                "Chunk reads that failed verification",
                self.counters["chunks_corrupt"],
            ),
            (
                "imagerepo_chunks_healed_total",
                "counter",
                "Missing chunk files rewritten from an identical upload",
                self.counters["chunks_healed"],
            ),
            ("imagerepo_gc_runs_total", "counter", "Collector runs", self.counters["gc_runs"]),
            (
                "imagerepo_gc_chunks_freed_total",
                "counter",
                "Chunks freed by the collector",
                self.counters["gc_chunks_freed"],
            ),
        ]
