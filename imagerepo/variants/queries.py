"""The SQL on the `variants` table (migrations/007_variants.sql): find, record, count, list.

A row holds one reference on its derived object unless the derived bytes are the source's own.
Rows are dicts (psycopg's dict_row).
"""

from __future__ import annotations

import hashlib

# Each row naming another object holds a reference on it: the blob store's collector and fsck
# count references with this (together with the images', see images/queries.py).
VARIANT_REFERENCES_SQL = "SELECT object_digest FROM variants WHERE object_digest <> source_digest"

_COLUMNS = "v.transform, v.object_digest, v.content_type, v.width, v.height, o.size, o.chunk_size"


def lock_key(source_digest: str, key: str) -> int:
    """A signed 64-bit advisory-lock key for one variant of one source: every worker making
    the same variant takes the same lock."""
    return int.from_bytes(hashlib.sha256(f"variant:{source_digest}:{key}".encode()).digest()[:8], "big", signed=True)


def find(conn, source_digest: str, key: str):
    return conn.execute(
        f"SELECT {_COLUMNS} FROM variants v JOIN objects o ON o.digest = v.object_digest"
        " WHERE v.source_digest = %s AND v.transform = %s",
        (bytes.fromhex(source_digest), key),
    ).fetchone()


def of_source(conn, source_digest: str) -> list[dict]:
    return conn.execute(
        f"SELECT {_COLUMNS} FROM variants v JOIN objects o ON o.digest = v.object_digest"
        " WHERE v.source_digest = %s ORDER BY v.created_at, v.transform",
        (bytes.fromhex(source_digest),),
    ).fetchall()


def lock_source(conn, source_digest: str) -> bool:
    """Share-lock the source object's row until commit (False when it is gone): the collector
    skips locked rows, so the source cannot be freed while its variant is made and recorded.
    Taken before the derived object's row, the order the collector's cascade uses too."""
    return (
        conn.execute(
            "SELECT 1 FROM objects WHERE digest = %s AND refcount > 0 FOR KEY SHARE", (bytes.fromhex(source_digest),)
        ).fetchone()
        is not None
    )


def counts(conn, source_digest: str, window_seconds: int) -> tuple[int, int]:
    """(variants made on request, off-grid ones made in the last `window_seconds`)."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE made_by = 'request') AS requested,"
        " count(*) FILTER (WHERE off_grid AND created_at > now() - make_interval(secs => %s)) AS recent_off_grid"
        " FROM variants WHERE source_digest = %s",
        (window_seconds, bytes.fromhex(source_digest)),
    ).fetchone()
    return row["requested"], row["recent_off_grid"]


def insert(
    conn,
    source_digest: str,
    key: str,
    object_digest: str,
    content_type: str,
    width: int,
    height: int,
    made_by: str,
    off_grid: bool,
) -> None:
    conn.execute(
        "INSERT INTO variants (source_digest, transform, object_digest, content_type, width, height, made_by, off_grid)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            bytes.fromhex(source_digest),
            key,
            bytes.fromhex(object_digest),
            content_type,
            width,
            height,
            made_by,
            off_grid,
        ),
    )


def reference_counts(db, store_stats: dict) -> dict:
    """For `stats`: the blob store's figures with its "references" told apart as images and
    variants, and the distinct derived objects and bytes the variants name."""
    with db.read() as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM images) AS images, count(*) AS variants,"
            " count(DISTINCT v.object_digest) AS variant_objects,"
            " coalesce(sum(o.size), 0)::bigint AS variant_bytes"
            " FROM variants v JOIN objects o ON o.digest = v.object_digest"
        ).fetchone()
    return {**counts, **{key: value for key, value in store_stats.items() if key != "references"}}
