"""Reporting: what the store holds (objects, chunks, logical and stored bytes, dedup ratio) and
this process's counters as metrics. Read-only."""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING

from .cache import ChunkCache

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


def metrics(cache: ChunkCache, counters: collections.Counter[str]) -> list[tuple[str, str, str, int]]:
    return [
        ("imagerepo_cache_hits_total", "counter", "Chunk reads served from the cache", cache.hits),
        ("imagerepo_cache_misses_total", "counter", "Cacheable chunk reads that went to the store", cache.misses),
        (
            "imagerepo_cache_bypassed_total",
            "counter",
            "Chunk reads of objects over the cache's size gate (read from the store, not cached)",
            cache.bypassed,
        ),
        ("imagerepo_cache_bytes", "gauge", "Bytes held by the chunk cache", cache.bytes_used),
        ("imagerepo_cache_chunks", "gauge", "Chunks held by the chunk cache", len(cache)),
        (
            "imagerepo_objects_created_total",
            "counter",
            "Uploads that stored new content",
            counters["objects_created"],
        ),
        (
            "imagerepo_uploads_deduplicated_total",
            "counter",
            "Uploads of content already stored",
            counters["uploads_deduplicated"],
        ),
        ("imagerepo_chunks_written_total", "counter", "Chunk files written", counters["chunks_written"]),
        (
            "imagerepo_chunks_corrupt_total",
            "counter",
            "Chunk reads that failed verification",
            counters["chunks_corrupt"],
        ),
        (
            "imagerepo_chunks_healed_total",
            "counter",
            "Missing chunk files rewritten from an identical upload",
            counters["chunks_healed"],
        ),
        ("imagerepo_gc_runs_total", "counter", "Collector runs", counters["gc_runs"]),
        (
            "imagerepo_gc_chunks_freed_total",
            "counter",
            "Chunks freed by the collector",
            counters["gc_chunks_freed"],
        ),
    ]
