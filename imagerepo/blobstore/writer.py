"""Taking and dropping references: commit a staged object inside the caller's transaction (the
rows first, then the chunk files), heal an existing object's lost chunk files from identical
bytes, and release a reference. Nothing here ever unlinks a chunk file; only the collector does.

Lock order (README, "Storage design"): the object row first, then chunk rows in ascending
digest order, the same order the collector takes them in, so neither can deadlock.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from .interface import ChunkReader, ChunkWriter
from .pools import pool
from .staging import StagedChunk, StagedObject
from .stats import Counters

log = logging.getLogger(__name__)


def _io_pool() -> ThreadPoolExecutor:
    """Threads for the fsyncs at publish."""
    return pool("io", 8)


class _WritableStore(ChunkWriter, ChunkReader, Protocol):
    """The roles the writer uses: put files into place, and see whether they are there."""


@dataclasses.dataclass(frozen=True)
class StoredObject:
    """What a commit took a reference to."""

    digest: str  # SHA-256 hex of the whole content
    size: int
    chunk_size: int
    created: bool  # False when identical bytes were already stored


class ObjectWriter:
    def __init__(self, store: _WritableStore, counters: Counters):
        self.store = store
        self.counters = counters

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
            self.counters.inc("uploads_deduplicated")
            if row["chunk_size"] == staged.chunk_size:
                self._heal(conn, staged)
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
        # fsyncs on different files share the filesystem's journal commits (the serial loop spent
        # most of an upload here; batching them was measured slower, see durable.py).
        written = list(_io_pool().map(self._publish, distinct))
        self.counters.inc("chunks_written", sum(written))
        self.counters.inc("objects_created")
        return StoredObject(staged.digest, staged.size, staged.chunk_size, created=True)

    def _publish(self, chunk: StagedChunk) -> bool:
        return self.store.put(chunk.digest, chunk.path)

    def _heal(self, conn, staged: StagedObject) -> None:
        """Make every chunk file of an existing object hold the right bytes again, from the
        identical bytes just received: a lost file is written, a damaged one (wrong size, or
        wrong bytes where the store cannot vouch for the file) replaced atomically; `put`
        checks and replaces. The object's reference, held under its row lock, keeps every chunk
        counted, so the collector cannot be freeing them; a share lock on the chunk rows keeps
        fsck's quarantine (which locks the row for update) from moving a file this replaces."""
        distinct = sorted({c.digest: c for c in staged.chunks}.values(), key=lambda c: c.digest)
        conn.execute(
            "SELECT 1 FROM chunks WHERE digest = ANY(%s) ORDER BY digest FOR KEY SHARE",
            ([bytes.fromhex(c.digest) for c in distinct],),
        )
        for chunk, written in zip(distinct, _io_pool().map(self._publish, distinct), strict=True):
            if written:
                log.warning("chunk %s was missing or damaged; rewritten from an identical upload", chunk.digest)
                self.counters.inc("chunks_healed")

    @staticmethod
    def release(conn, digest: str) -> None:
        """Drop one reference. Storage is reclaimed later by the collector."""
        conn.execute(
            "UPDATE objects SET refcount = refcount - 1,"
            " released_at = CASE WHEN refcount = 1 THEN now() ELSE released_at END"
            " WHERE digest = %s",
            (bytes.fromhex(digest),),
        )
