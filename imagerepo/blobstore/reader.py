"""Reading objects back: manifests (cached per worker), and a stream of verified chunk bytes
for any byte range, touching only the chunks the range needs.

Every chunk read from the store is re-hashed before it is returned or cached; a chunk that
fails raises ChunkCorrupt (ChunkLost when its file is gone) rather than yield wrong bytes. A
response of 8 chunks or more reads (and verifies) one chunk ahead on a small thread pool.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING

from cachetools import LRUCache

from .cache import ChunkCache
from .errors import ChunkCorrupt, ChunkFreed, ChunkLost, ObjectNotFound
from .interface import ChunkMissing, ChunkQuarantiner, ChunkReader
from .pools import pool
from .stats import Counters

if TYPE_CHECKING:
    from ..db import Database

log = logging.getLogger(__name__)

MANIFEST_CACHE_ENTRIES = 20_000
# Read-ahead only pays on long responses: each hand-off waits for a thread to be scheduled.
READ_AHEAD_MIN_CHUNKS = 8
READ_AHEAD_THREADS = 4


@dataclasses.dataclass(frozen=True)
class Manifest:
    size: int
    chunk_size: int
    chunks: tuple[str, ...]  # chunk digests (hex), in order


class ObjectReader:
    def __init__(self, db: Database, store: ChunkReader, cache: ChunkCache, counters: Counters):
        self.db = db
        self.store = store
        self.cache = cache
        self.counters = counters
        self._manifests: LRUCache[str, Manifest] = LRUCache(maxsize=MANIFEST_CACHE_ENTRIES)
        self._manifest_lock = threading.Lock()
        self.read_ahead = True  # IMAGEREPO_READ_AHEAD

    def read_chunk(self, digest: str, object_size: int | None = None) -> bytes:
        """Verified bytes of one chunk: from the cache, else from the store and checked.
        `object_size`, of the object being read, lets the cache keep big objects out."""
        data = self.cache.get(digest, object_size)
        return data if data is not None else self._load_chunk(digest, object_size)

    def _load_chunk(self, digest: str, object_size: int | None = None) -> bytes:
        try:
            data = self.store.get(digest)
        except ChunkMissing:
            if not self._referenced(digest):
                log.info("chunk %s was freed while being read: its images were deleted and collected", digest)
                raise ChunkFreed(f"chunk {digest} was freed while being read (its images were deleted)") from None
            log.error("chunk %s is referenced but missing from the store", digest)
            raise ChunkLost(f"chunk {digest} is missing") from None
        if hashlib.sha256(data).hexdigest() != digest:
            log.error("chunk %s failed verification: its bytes do not match its digest", digest)
            self.counters.inc("chunks_corrupt")
            self._quarantine(digest)
            raise ChunkCorrupt(f"chunk {digest} is corrupt")
        self.cache.put(digest, data, object_size)
        return data

    def _quarantine(self, digest: str) -> None:
        """Move a file just found wrong aside (the store re-reads it first), under its row lock
        as fsck --repair does: it then reads as missing, and the next upload of those bytes
        writes it, even in a process that wrote the file and would otherwise trust it."""
        if self.db is None or not isinstance(self.store, ChunkQuarantiner):
            return
        try:
            with self.db.transaction() as conn:
                row = conn.execute(
                    "SELECT size FROM chunks WHERE digest = %s FOR UPDATE", (bytes.fromhex(digest),)
                ).fetchone()
                if row is not None:
                    self.store.quarantine(digest, row["size"])
        except Exception:  # the read fails with ChunkCorrupt either way; this only helps later
            log.exception("could not move the corrupt chunk %s aside", digest)

    def _referenced(self, digest: str) -> bool:
        """Whether some object still holds this chunk (a missing file is then a loss)."""
        if self.db is None:  # a reader on a bare store (tests): assume the worst
            return True
        with self.db.read() as conn:
            return (
                conn.execute(
                    "SELECT 1 FROM chunks WHERE digest = %s AND refcount > 0", (bytes.fromhex(digest),)
                ).fetchone()
                is not None
            )

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
            raise ObjectNotFound(digest)
        found = Manifest(row["size"], row["chunk_size"], tuple(bytes(c).hex() for c in row["chunks"]))
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
            except ChunkLost as err:
                # A cached manifest can outlive its object (freed, then stored again with
                # another chunk size, so other chunks); ask the database once before giving up.
                if from_cache and attempt == 0:
                    self.forget_manifest(digest)
                    continue
                if isinstance(err, ChunkFreed):  # deleted and collected since the caller looked
                    raise ObjectNotFound(digest) from err
                raise
            return self._iterate(digest, plan, first, start, last, found.size)
        raise AssertionError("unreachable")

    def _iterate(
        self, digest: str, plan: list[tuple[int, str]], first: bytes, start: int, end: int, size: int
    ) -> Iterator[bytes]:
        # Read-ahead (IMAGEREPO_READ_AHEAD), for responses of READ_AHEAD_MIN_CHUNKS or more: the
        # next chunk not in the cache is read and verified on another thread while this one is
        # sent. hashlib and socket writes release the GIL, so hashing n+1 overlaps sending n;
        # one chunk ahead, so a download holds at most two chunks. Bytes are still only yielded
        # once verified, and a bad chunk still fails at its own position. Measured against
        # reading in line on every `make bench` run: README, "Performance".
        read_ahead = self.read_ahead and len(plan) >= READ_AHEAD_MIN_CHUNKS
        ahead: Future[bytes] | None = None
        try:
            for position, (chunk_start, chunk_digest) in enumerate(plan):
                try:
                    if position == 0:
                        data = first
                    elif ahead is not None:
                        data = ahead.result()
                    else:
                        data = self.read_chunk(chunk_digest, size)
                except ChunkLost:
                    self.forget_manifest(digest)  # so the next request asks the database again
                    raise
                ahead = None
                if read_ahead and position + 1 < len(plan) and plan[position + 1][1] not in self.cache:
                    ahead = pool("read", READ_AHEAD_THREADS).submit(self.read_chunk, plan[position + 1][1], size)
                low = max(start - chunk_start, 0)
                high = min(end + 1 - chunk_start, len(data))
                yield data if (low == 0 and high == len(data)) else data[low:high]
        finally:
            if ahead is not None:
                ahead.cancel()
