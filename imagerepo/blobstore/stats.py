"""Reporting: what the store holds (objects, chunks, logical and stored bytes, dedup ratio) and
this store's event counters. Read-only, apart from the counters."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..db import Database


def storage_stats(db: Database, object_references_sql: str | None) -> dict:
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM objects WHERE refcount > 0) AS objects,"
            " (SELECT count(*) FROM chunks WHERE refcount > 0) AS chunks,"
            " (SELECT coalesce(sum(size), 0) FROM chunks WHERE refcount > 0)::bigint AS stored_bytes,"
            " (SELECT coalesce(sum(size), 0) FROM objects WHERE refcount > 0)::bigint AS object_bytes"
        ).fetchone()
        logical = row["object_bytes"]
        references = None
        if object_references_sql:
            ref = conn.execute(
                f"SELECT count(*) AS n, coalesce(sum(o.size), 0)::bigint AS bytes FROM ({object_references_sql}) r"
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


class Counters:
    """Events of one blob store (uploads, chunks written, corrupt reads, collector runs), bumped
    from many threads. `inc` holds a lock: `counter[name] += 1` is a read and a write that two
    threads can interleave, losing one. `listener` (set by the app: Prometheus) hears each event;
    the store itself imports nothing outside its package."""

    NAMES = (
        "objects_created",
        "uploads_deduplicated",
        "chunks_written",
        "chunks_corrupt",
        "chunks_healed",
        "gc_runs",
        "gc_chunks_freed",
    )

    def __init__(self) -> None:
        self._values = dict.fromkeys(self.NAMES, 0)
        self._lock = threading.Lock()
        self.listener: Callable[[str, int], None] | None = None

    def inc(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._values[name] += amount
        if self.listener is not None and amount:
            self.listener(name, amount)

    def __getitem__(self, name: str) -> int:
        return self._values[name]
