"""The blob store: content-addressed, chunked, reference-counted storage of byte streams.

Two levels of sharing. An *object* is one whole content (SHA-256 of all its bytes, its size,
the chunk size it was cut with, and how many referrers use it); identical uploads share one
object and do no chunk work. A *chunk* is a fixed-size slice named by its own SHA-256, stored
once in the chunk store and counted by the manifest entries that name it, so objects that
overlap share chunks.

The invariant: every chunk row with refcount > 0 has its file, with the right bytes.
How it is held is in README, "Storage design"; one job per module:

    interface.py  the ChunkStore contract (small role protocols) every backend implements
    local.py      LocalChunkStore: chunk files on a local disk, and the staging areas
    staging.py    Stager: cut an incoming stream into staged chunks, hashing on the way
    writer.py     commit a staged object (rows, then files), heal lost files, release
    reader.py     manifests (cached) and a verified stream of any byte range
    cache.py      the chunk cache: verified bytes, LRU, bounded in bytes
    collector.py  free what nothing references, and the background collector thread
    checker.py    fsck: files, sizes, bytes, counts, manifests; repair of drifted counts
    stats.py      what the store holds, and its event counters (thread-safe)
    errors.py     what it raises

`BlobStore` below wires them together for the app and the command line.

This package owns the `objects`, `object_chunks` and `chunks` tables and the chunk files. It
must never know about HTTP, users or images: who refers to an object is given to it as SQL
(`object_references_sql`), and it raises its own errors (errors.py), never HTTP ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Self

from .cache import ChunkCache
from .checker import Checker, CheckReport
from .collector import Collector, GcReport, Progress
from .errors import BlobError, ChunkCorrupt, ChunkLost, EmptyUpload, ObjectNotFound, StoreUnavailable, UploadTooLarge
from .interface import ChunkStore
from .local import LocalChunkStore
from .reader import Manifest, ObjectReader
from .staging import StagedObject, Stager
from .stats import Counters, storage_stats
from .writer import ObjectWriter, StoredObject

if TYPE_CHECKING:
    from ..config import Config
    from ..db import Database

__all__ = [
    "BlobError",
    "BlobStore",
    "CheckReport",
    "ChunkCorrupt",
    "ChunkLost",
    "EmptyUpload",
    "GcReport",
    "ObjectNotFound",
    "StagedObject",
    "StoreUnavailable",
    "StoredObject",
    "UploadTooLarge",
]


def chunk_store_for_config(config: Config) -> ChunkStore:
    """The configured backend (IMAGEREPO_CHUNK_STORE): chunk files under blob_dir, or objects in
    an S3 bucket with only this node's staging area under blob_dir. boto3 is imported only for
    S3, and its client is built here, not by the first request."""
    if config.chunk_store == "s3":
        from .s3 import S3ChunkStore

        store = S3ChunkStore.for_config(config)
        store.warm_up()
        return store
    return LocalChunkStore(config.blob_dir, fsync=config.fsync)


class BlobStore:
    """One store's writer, reader, collector and checker, sharing its database, chunk store,
    cache and counters."""

    def __init__(
        self,
        db: Database,
        store: ChunkStore,
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
        # SELECT yielding one row (object_digest) per reference; None means "no referrers table".
        self.object_references_sql = object_references_sql
        self.counters = Counters()
        self.writer = ObjectWriter(store, self.counters)
        self.reader = ObjectReader(db, store, cache, self.counters)
        self.collector = Collector(db, store, cache, self.counters, gc_grace_seconds, object_references_sql)
        self.checker = Checker(db, store, object_references_sql)

    @classmethod
    def for_config(cls, config: Config, db: Database, object_references_sql: str | None = None) -> Self:
        blobs = cls(
            db,
            chunk_store_for_config(config),
            ChunkCache(config.cache_bytes, config.cache_max_object_bytes),
            config.chunk_size,
            config.max_upload_bytes,
            config.gc_grace_seconds,
            object_references_sql,
        )
        blobs.reader.read_ahead = config.read_ahead
        return blobs

    # -- writing ---------------------------------------------------------------------------
    def stager(self) -> Stager:
        """A sink for one upload's bytes (see staging.py)."""
        return Stager(self.store, self.chunk_size, self.max_upload_bytes)

    def commit(self, conn, staged: StagedObject) -> StoredObject:
        """Take one reference to the staged content inside the caller's transaction; the
        caller discards `staged` afterwards, committed or not."""
        return self.writer.commit(conn, staged)

    def release(self, conn, digest: str) -> None:
        """Drop one reference inside the caller's transaction; the collector reclaims later."""
        self.writer.release(conn, digest)

    # -- reading ---------------------------------------------------------------------------
    def open(
        self, digest: str, start: int = 0, end: int | None = None, chunk_size: int | None = None
    ) -> Iterator[bytes]:
        """Verified bytes start..end (inclusive) of an object, chunk by chunk (see reader.py)."""
        return self.reader.open(digest, start, end, chunk_size)

    def manifest(self, digest: str, chunk_size: int | None = None) -> tuple[Manifest, bool]:
        return self.reader.manifest(digest, chunk_size)

    # -- collecting ------------------------------------------------------------------------
    def collect_garbage(
        self, grace_seconds: int | None = None, progress: Progress | None = None, sweep_files: bool = True
    ) -> GcReport:
        return self.collector.collect_garbage(grace_seconds, progress, sweep_files)

    def start_background_collector(self, interval_seconds: int) -> None:
        self.collector.start_background(interval_seconds)

    def stop_background_collector(self, timeout: float = 30) -> None:
        self.collector.stop_background(timeout)

    # -- checking and reporting ------------------------------------------------------------
    def check(
        self, verify_content: bool = False, repair: bool = False, progress: Progress | None = None
    ) -> CheckReport:
        return self.checker.check(verify_content, repair, progress)

    def stats(self) -> dict:
        return storage_stats(self.db, self.object_references_sql)
