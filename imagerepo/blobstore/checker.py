"""fsck for the blob store: every referenced chunk present with the right size (and, on request,
the right bytes), every refcount equal to the references that exist, every manifest complete;
and the repair of drifted counts.

Checking plans nothing and changes nothing. `repair=True` sets counts to the references that
exist, and mends what an upload of the right bytes would: a chunk file with the wrong size or
bytes is moved aside (the store's quarantine, kept for inspection, never deleted), so the chunk
reads as missing, a clear error, instead of as wrong bytes, and the next upload of an image
holding it writes it again. Repair cannot bring lost bytes back.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import TYPE_CHECKING, Protocol

from .collector import Progress
from .interface import ChunkEnumerator, ChunkMissing, ChunkQuarantiner, ChunkReader, ChunkStatter

if TYPE_CHECKING:
    from ..db import Database


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
    quarantined: list[str] = dataclasses.field(default_factory=list)

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

    @property
    def data_lost(self) -> bool:
        """Whether a repair of counts cannot make the store whole (bytes must be uploaded)."""
        return bool(self.missing_chunks or self.wrong_size_chunks or self.corrupt_chunks or self.broken_manifests)

    def summary(self) -> dict:
        """The report as `fsck` prints it (JSON)."""
        fields = dataclasses.asdict(self)
        return {**fields, "orphan_files": len(self.orphan_files), "problems": self.problems}


class _CheckedStore(ChunkReader, ChunkStatter, ChunkEnumerator, Protocol):
    """The roles the checker uses: read and stat chunks, and list every stored one."""


class Checker:
    def __init__(self, db: Database, store: _CheckedStore, object_references_sql: str | None):
        self.db = db
        self.store = store
        # SELECT yielding one row (object_digest) per reference; None means "no referrers table".
        self.object_references_sql = object_references_sql

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
                    self._check_chunk(bytes(row["digest"]).hex(), row["size"], verify_content, report)
                    report.chunks_checked += 1
                    if progress and (report.chunks_checked % 1000 == 0 or report.chunks_checked == total):
                        progress("chunks", report.chunks_checked, total)
            report.chunk_refcount_mismatches = [
                (bytes(r["digest"]).hex(), r["refcount"], r["expected"])
                for r in conn.execute(
                    "SELECT coalesce(c.digest, m.chunk_digest) AS digest, coalesce(c.refcount, -1) AS refcount,"
                    " coalesce(m.n, 0)::int AS expected FROM chunks c"
                    " FULL JOIN (SELECT chunk_digest, count(*) AS n FROM object_chunks GROUP BY 1) m"
                    " ON m.chunk_digest = c.digest WHERE c.refcount IS DISTINCT FROM coalesce(m.n, 0)"
                )
            ]
            if self.object_references_sql:
                report.object_refcount_mismatches = [
                    (bytes(r["digest"]).hex(), r["refcount"], r["expected"])
                    for r in conn.execute(
                        "SELECT coalesce(o.digest, m.object_digest) AS digest, coalesce(o.refcount, -1) AS refcount,"
                        " coalesce(m.n, 0)::int AS expected FROM objects o"
                        f" FULL JOIN (SELECT object_digest, count(*) AS n FROM ({self.object_references_sql}) r"
                        " GROUP BY 1) m ON m.object_digest = o.digest"
                        " WHERE o.refcount IS DISTINCT FROM coalesce(m.n, 0)"
                    )
                ]
            report.broken_manifests = [
                bytes(r["digest"]).hex()
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
            known = {bytes(r["digest"]).hex() for r in conn.execute("SELECT digest FROM chunks")}
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
            if isinstance(self.store, ChunkQuarantiner):
                self._quarantine(self.store, report.wrong_size_chunks + report.corrupt_chunks, report, progress)
        return report

    def _quarantine(
        self, store: ChunkQuarantiner, digests: list[str], report: CheckReport, progress: Progress | None
    ) -> None:
        """Move each damaged file aside under its chunk row's lock: an upload of the same bytes
        (which locks the row too) either mended it before, and the store sees a right file and
        keeps it, or writes it again after."""
        for done, digest in enumerate(digests, 1):
            with self.db.transaction() as conn:
                row = conn.execute(
                    "SELECT size FROM chunks WHERE digest = %s FOR UPDATE", (bytes.fromhex(digest),)
                ).fetchone()
                if row is not None and store.quarantine(digest, row["size"]):
                    report.quarantined.append(digest)
            if progress:
                progress("quarantine", done, len(digests))

    def _still_missing(self, digests: list[str]) -> list[str]:
        """The snapshot may predate a collection that freed these chunks (rows and files)
        while the check ran; only a chunk still referenced now and still absent is missing."""
        with self.db.read() as conn:
            referenced = {
                bytes(r["digest"]).hex()
                for r in conn.execute(
                    "SELECT digest FROM chunks WHERE digest = ANY(%s) AND refcount > 0",
                    ([bytes.fromhex(d) for d in digests],),
                )
            }
        return [d for d in digests if d in referenced and not self.store.exists(d)]

    def _check_chunk(self, digest: str, size: int, verify_content: bool, report: CheckReport) -> None:
        try:
            data = self.store.get(digest) if verify_content else None
            actual_size = len(data) if data is not None else self.store.stat(digest).size
        except ChunkMissing:
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
