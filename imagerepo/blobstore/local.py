"""Where chunk bytes live on a local disk: the `ChunkStore` contract (interface.py) on files.

The local-disk store lays chunks out like git's objects: `root/ab/cd/abcd…`, written to a temp
file, fsynced, renamed into place, so a reader never sees a partial chunk. An object-storage
backend (S3) implements the same contract; nothing above this module knows about paths.

A file already at a chunk's final path is only kept when it holds the right bytes: its size is
checked always, its SHA-256 unless this process has written or verified that very file (same
inode, size and mtime) before. A crash with IMAGEREPO_FSYNC=0 can leave a zero-length or
truncated file, a disk a flipped bit; an upload that brings the right bytes replaces such a
file atomically instead of adopting it. Every fan-out directory created is made durable in its
parent (one fsync of the parent per new directory) before a chunk is published in it.

Publishing a chunk durably: durable.py. Staging areas: staging_area.py.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from cachetools import LRUCache

from .durable import ensure_dirs, fsync_dir, publish
from .interface import ChunkFile, ChunkMissing, ChunkStore
from .staging_area import StagingArea, remove_abandoned_area

__all__ = ["LocalChunkStore", "StagingArea"]

log = logging.getLogger(__name__)

_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")
STAGING = "tmp"
# Wrong chunk files moved aside by `quarantine`, kept for inspection (never read or listed).
QUARANTINE = "quarantine"
# Chunk files this process wrote or verified, by digest: (inode, size, mtime_ns) then.
_KNOWN_GOOD_ENTRIES = 16_384


def _check_digest(digest: str) -> str:
    if not _HEX_DIGEST.match(digest):
        raise ValueError(f"not a SHA-256 hex digest: {digest!r}")
    return digest


class LocalChunkStore:
    def __init__(self, root: Path, fsync: bool = True):
        self.root = Path(root)
        self.fsync = fsync
        self.staging_dir = self.root / STAGING
        ensure_dirs([self.root], fsync)
        self.staging_dir.mkdir(exist_ok=True)  # staged files need no durability
        self._known_good: LRUCache = LRUCache(_KNOWN_GOOD_ENTRIES)
        self._known_good_lock = threading.Lock()

    def path_for(self, digest: str) -> Path:
        _check_digest(digest)
        return self.root / digest[:2] / digest[2:4] / digest

    # -- staging -------------------------------------------------------------------------
    def new_staging_area(self) -> StagingArea:
        """A locked directory for one upload (same filesystem, so publishing is a rename)."""
        return StagingArea(self.staging_dir, writeback=self.fsync)

    def sweep_staging(self, older_than_seconds: float) -> int:
        """Remove staged files no live upload holds, once older than the grace period.
        Returns how many files went."""
        cutoff = time.time() - older_than_seconds
        removed = 0
        for entry in os.scandir(self.staging_dir):
            try:
                if entry.stat(follow_symlinks=False).st_mtime > cutoff:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    removed += remove_abandoned_area(entry.path)
                else:
                    os.unlink(entry.path)  # a loose file: nothing stages outside an area
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    # -- the interface -------------------------------------------------------------------
    def put(self, digest: str, data: bytes | Path) -> bool:
        """Make `digest` present with the right bytes. `data` is bytes, or a staged file that is
        moved (not copied); either must hold exactly the bytes `digest` names. Returns False
        when the right file was already there, True when a file was written (new, or replacing
        a wrong one). Durable before it returns (durable.py)."""
        final = self.path_for(digest)
        size = data.stat().st_size if isinstance(data, Path) else len(data)
        if self._holds(final, digest, size):
            if isinstance(data, Path):
                data.unlink(missing_ok=True)
            return False
        if isinstance(data, Path):
            publish(data, final, self.fsync)
        else:
            area = self.new_staging_area()
            try:
                handle, staged = area.new_file()
                with handle:
                    handle.write(data)
                publish(staged, final, self.fsync)
            finally:
                area.remove()
        self._remember_good(digest, os.stat(final))
        return True

    def _holds(self, final: Path, digest: str, size: int, trust_known: bool = True) -> bool:
        """Whether the file at `final` holds the `size` bytes that `digest` names."""
        try:
            st = os.stat(final)
        except FileNotFoundError:
            return False
        if st.st_size != size:
            log.warning("chunk %s had %d bytes on disk instead of %d; replaced", digest, st.st_size, size)
            return False
        with self._known_good_lock:
            if trust_known and self._known_good.get(digest) == (st.st_ino, st.st_size, st.st_mtime_ns):
                return True
        try:
            with open(final, "rb") as handle:
                actual = hashlib.file_digest(handle, "sha256").hexdigest()
        except FileNotFoundError:
            return False  # deleted meanwhile: write it
        if actual != digest:
            log.warning("chunk %s had the wrong bytes on disk; replaced", digest)
            return False
        self._remember_good(digest, st)
        return True

    def _remember_good(self, digest: str, st: os.stat_result) -> None:
        with self._known_good_lock:
            self._known_good[digest] = (st.st_ino, st.st_size, st.st_mtime_ns)

    def get(self, digest: str) -> bytes:
        try:
            with open(self.path_for(digest), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            raise ChunkMissing(digest) from None

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).is_file()

    def stat(self, digest: str) -> ChunkFile:
        try:
            st = self.path_for(digest).stat()
        except FileNotFoundError:
            raise ChunkMissing(digest) from None
        return ChunkFile(digest, st.st_size, st.st_mtime)

    def delete(self, digest: str) -> bool:
        try:
            os.unlink(self.path_for(digest))
            return True
        except FileNotFoundError:
            return False

    def quarantine(self, digest: str, size: int) -> bool:
        """Move the file at `digest`'s final path aside if it does not hold the `size` bytes
        `digest` names (checked again here, so a file a put has just replaced is left alone).
        True if a file was moved. The chunk then reads as missing, and the next upload of those
        bytes writes it again. The caller keeps concurrent puts of this digest out meanwhile
        (the blob store holds the chunk's row lock)."""
        final = self.path_for(digest)
        # Always read: whoever asks has just seen these bytes fail, whatever this process knew.
        if not final.exists() or self._holds(final, digest, size, trust_known=False):
            return False
        aside = self.root / QUARANTINE
        ensure_dirs([aside], self.fsync)
        try:
            os.replace(final, aside / f"{digest}.{time.time_ns()}")
        except FileNotFoundError:
            return False
        with self._known_good_lock:
            self._known_good.pop(digest, None)
        if self.fsync:
            fsync_dir(final.parent)
            fsync_dir(aside)
        log.warning("chunk %s held the wrong bytes; moved to %s", digest, aside)
        return True

    def iterate(self) -> Iterator[ChunkFile]:
        for level1 in sorted(_subdirs(self.root)):
            if level1.name == STAGING:
                continue
            for level2 in sorted(_subdirs(level1)):
                for entry in os.scandir(level2):
                    if _HEX_DIGEST.match(entry.name) and entry.name.startswith(level1.name + level2.name):
                        try:
                            st = entry.stat()
                        except FileNotFoundError:
                            continue  # deleted while we walked
                        yield ChunkFile(entry.name, st.st_size, st.st_mtime)


def _subdirs(path: Path):
    try:
        return [Path(e.path) for e in os.scandir(path) if e.is_dir() and len(e.name) == 2]
    except FileNotFoundError:
        return []


# Static conformance (restic's `var _ backend.Backend = &Local{}`): mypy fails here if
# LocalChunkStore stops implementing the contract.
_LOCAL_IS_A_CHUNK_STORE: type[ChunkStore] = LocalChunkStore
