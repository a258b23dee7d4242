"""Moving a live chunk store to another backend (local files to S3, or back): copy every chunk
the database knows, verify every copy, and say whether the target is complete.

It never switches anything itself. The service keeps running on the source while this copies;
the switch is a configuration change (IMAGEREPO_CHUNK_STORE and its settings) made by the
operator once a run has reported the target complete, with no upload in between (README,
"Running on S3": copy live, stop the nodes, run again for what arrived meanwhile, switch,
start). Every run is resumable: what the target already holds with the right size is not
copied again, but it is verified again, so a complete run vouches for every chunk.

Per chunk: one read from the source, re-hashed against its name (bytes that do not match are
reported, never copied); one write to the target (on S3 the server checks the SHA-256 sent
with the PUT); one read back from the target, re-hashed. Chunks run in parallel on a bounded
pool. A chunk the source no longer has is fine if the collector freed it meanwhile (no row, or
no reference); if a reference still needs it, it is reported missing.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from .interface import ChunkMissing, ChunkStore

if TYPE_CHECKING:
    from ..db import Database

Progress = Callable[[str, int, int | None], None]

# Rounds of "copy what arrived since the last round" before giving up on a busy store.
_MAX_ROUNDS = 5


@dataclasses.dataclass
class MigrationReport:
    chunks: int = 0  # chunk rows considered
    copied: int = 0
    already_there: int = 0  # held by the target with the right size (an earlier run)
    replaced: int = 0  # held by the target with the wrong size: written again
    verified: int = 0  # read back from the target and re-hashed
    freed_meanwhile: int = 0  # gone from the source because nothing references them any more
    bytes_copied: int = 0
    rounds: int = 0
    still_arriving: bool = False  # new chunks in every round: stop the uploads and run again
    missing: list[str] = dataclasses.field(default_factory=list)  # referenced, not in the source
    corrupt: list[str] = dataclasses.field(default_factory=list)  # source bytes do not match
    bad_copies: list[str] = dataclasses.field(default_factory=list)  # target bytes do not match

    @property
    def complete(self) -> bool:
        return not (self.missing or self.corrupt or self.bad_copies or self.still_arriving)

    def count(self, outcome: str, digest: str, size: int = 0) -> None:
        """Tally one chunk's outcome (on the calling thread: the workers only return them)."""
        if outcome in ("missing", "corrupt", "bad_copies"):
            getattr(self, outcome).append(digest)
        elif outcome:
            setattr(self, outcome, getattr(self, outcome) + 1)
        if outcome == "copied" or outcome == "replaced":
            self.bytes_copied += size
            if outcome == "replaced":
                self.copied += 1


class ChunkMigration:
    def __init__(self, db: Database, source: ChunkStore, target: ChunkStore, jobs: int = 16):
        self.db = db
        self.source = source
        self.target = target
        self.jobs = jobs

    def run(self, progress: Progress | None = None) -> MigrationReport:
        report = MigrationReport()
        if progress:
            progress("listing target", 0, None)
        present = {f.digest: f.size for f in self.target.iterate()}
        done: set[str] = set()
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="migrate") as pool:
            # New uploads land in the source while we copy: go round again for them, until a
            # round finds nothing new (or give up, incomplete, on a store busier than we are).
            for _ in range(_MAX_ROUNDS):
                rows = [row for row in self._rows() if row[0] not in done]
                if not rows:
                    break
                report.rounds += 1
                report.chunks += len(rows)
                self._each(pool, rows, lambda row: self._copy(row, present), "copy", report, progress)
                done.update(digest for digest, _ in rows)
                failed = set(report.corrupt) | set(report.missing)  # reported once, not again
                rows = [row for row in rows if row[0] not in failed]
                self._each(pool, rows, self._verify, "verify", report, progress)
            else:
                report.still_arriving = any(row[0] not in done for row in self._rows())
        for problems in (report.missing, report.corrupt, report.bad_copies):
            problems.sort()
        return report

    def _rows(self) -> list[tuple[str, int]]:
        with self.db.read() as conn:
            return [
                (bytes(r["digest"]).hex(), r["size"])
                for r in conn.execute("SELECT digest, size FROM chunks ORDER BY digest")
            ]

    @staticmethod
    def _each(pool, rows, work: Callable, phase: str, report: MigrationReport, progress: Progress | None) -> None:
        for finished, (row, (outcome, size)) in enumerate(zip(rows, pool.map(work, rows), strict=True), 1):
            report.count(outcome, row[0], size)
            if progress and (finished % 200 == 0 or finished == len(rows)):
                progress(phase, finished, len(rows))

    def _copy(self, row: tuple[str, int], present: dict[str, int]) -> tuple[str, int]:
        digest, size = row
        held = present.get(digest)
        if held == size:
            return "already_there", 0
        try:
            data = self.source.get(digest)
        except ChunkMissing:
            return ("missing" if self._still_needed(digest) else "freed_meanwhile"), 0
        if hashlib.sha256(data).hexdigest() != digest:
            return "corrupt", 0
        if held is not None:
            # A wrong or cut-short object from elsewhere: an S3 PUT would not replace it.
            self.target.delete(digest)
        self.target.put(digest, data)
        return ("replaced" if held is not None else "copied"), len(data)

    def _verify(self, row: tuple[str, int]) -> tuple[str, int]:
        digest, _ = row
        try:
            data = self.target.get(digest)
        except ChunkMissing:
            # Freed in the source before it was copied (the copy pass counted it), or lost.
            return ("bad_copies" if self._still_needed(digest) else ""), 0
        if hashlib.sha256(data).hexdigest() != digest:
            return "bad_copies", 0
        return "verified", 0

    def _still_needed(self, digest: str) -> bool:
        with self.db.read() as conn:
            row = conn.execute("SELECT refcount FROM chunks WHERE digest = %s", (bytes.fromhex(digest),)).fetchone()
        return row is not None and row["refcount"] > 0


def summary(report: MigrationReport) -> dict:
    return {**dataclasses.asdict(report), "complete": report.complete}


def describe_switch(settings: Iterable[tuple[str, str]]) -> str:
    lines = ["The target holds and has verified every chunk. To switch, with no upload in between:"]
    lines += [f"  {name}={value}" for name, value in settings]
    lines.append(
        "then restart every node (uploads made since this run started: stop the nodes and run it again first)."
    )
    return "\n".join(lines)
