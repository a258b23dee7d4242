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

Staging: each upload gets its own directory under `root/tmp/`, held with an exclusive
flock(2) for as long as its owner lives. The kernel drops the lock when the owner exits, however
it exits, so the sweeper knows exactly which staged files are abandoned: a locked directory is
an upload in flight (never touched, however old), an unlocked one was left by a crash (removed
once older than the grace period). Age alone cannot tell a slow upload from a dead one.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

from cachetools import LRUCache

from .interface import ChunkFile, ChunkMissing, ChunkStore

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


class StagingArea:
    """A private, flock-held directory for one upload's staged chunk files."""

    def __init__(self, parent: Path):
        parent.mkdir(parents=True, exist_ok=True)  # e.g. emptied by reinstall-schema under a live server
        while True:
            path = Path(tempfile.mkdtemp(dir=parent, prefix="upload-"))
            try:
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            except FileNotFoundError:
                continue  # a sweep removed it before we could lock it
            fcntl.flock(fd, fcntl.LOCK_EX)
            # A sweep may have locked and removed it between mkdtemp and flock.
            try:
                ours = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                ours = False
            if ours:
                break
            os.close(fd)
        self.path = path
        self._files = 0
        # Closing the descriptor releases the lock; if the owner forgets `remove()`, the
        # finalizer still releases it and the next sweep takes the leftovers.
        self._release = weakref.finalize(self, os.close, fd)

    def new_file(self):
        """An open binary file inside this area, and its path."""
        # The area is private to one upload, so a counter names files uniquely; mkstemp's
        # random names and retries cost ~10% of an upload's time in the profile.
        self._files += 1
        path = self.path / f"chunk-{self._files}.tmp"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        return os.fdopen(fd, "wb"), path

    def remove(self) -> None:
        """Delete whatever is still staged here and give up the lock."""
        if self._release.alive:
            shutil.rmtree(self.path, ignore_errors=True)
            self._release()


class LocalChunkStore:
    def __init__(self, root: Path, fsync: bool = True):
        self.root = Path(root)
        self.fsync = fsync
        self.staging_dir = self.root / STAGING
        _ensure_dir(self.root, fsync)
        self.staging_dir.mkdir(exist_ok=True)  # staged files need no durability
        self._known_good: LRUCache = LRUCache(_KNOWN_GOOD_ENTRIES)
        self._known_good_lock = threading.Lock()

    def path_for(self, digest: str) -> Path:
        _check_digest(digest)
        return self.root / digest[:2] / digest[2:4] / digest

    # -- staging -------------------------------------------------------------------------
    def new_staging_area(self) -> StagingArea:
        """A locked directory for one upload (same filesystem, so publishing is a rename)."""
        return StagingArea(self.staging_dir)

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
                    removed += _remove_abandoned_area(entry.path)
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
        a wrong one)."""
        final = self.path_for(digest)
        size = data.stat().st_size if isinstance(data, Path) else len(data)
        if self._holds(final, digest, size):
            if isinstance(data, Path):
                data.unlink(missing_ok=True)
            return False
        _ensure_dir(final.parent, self.fsync)
        if isinstance(data, Path):
            staged = data
            if self.fsync:
                fd = os.open(staged, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            _publish(staged, final, self.fsync)
        else:
            area = self.new_staging_area()
            try:
                handle, staged = area.new_file()
                with handle:
                    handle.write(data)
                    handle.flush()
                    if self.fsync:
                        os.fsync(handle.fileno())
                _publish(staged, final, self.fsync)
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
        _ensure_dir(aside, self.fsync)
        try:
            os.replace(final, aside / f"{digest}.{time.time_ns()}")
        except FileNotFoundError:
            return False
        with self._known_good_lock:
            self._known_good.pop(digest, None)
        if self.fsync:
            _fsync_dir(final.parent)
            _fsync_dir(aside)
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


def _publish(staged: Path, final: Path, fsync: bool) -> None:
    os.replace(staged, final)
    # The collector's grace period for files without a row counts from when a chunk became
    # visible, not from when it was staged.
    os.utime(final)
    if fsync:
        _fsync_dir(final.parent)


def _remove_abandoned_area(path: str) -> int:
    """Remove a staging directory if no live upload holds its lock; returns files removed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # its upload is still running
        removed = 0
        for entry in os.scandir(path):
            try:
                os.unlink(entry.path)
                removed += 1
            except (FileNotFoundError, IsADirectoryError):
                pass
        shutil.rmtree(path, ignore_errors=True)
        return removed
    finally:
        os.close(fd)  # after the removal, so a new owner cannot lock it half-emptied


def _ensure_dir(path: Path, fsync: bool) -> None:
    """Create `path` and its missing parents, each fsynced in its parent before anything is
    published in it (a chunk row must not outlive, after a power loss, the entry leading to its
    file): one fsync per new directory. A directory raced into existence is fsynced by both
    racers. Left to the filesystem: a put that finds a directory made by another process a moment
    ago, before its fsync returned (ext4 and XFS journal the mkdir before the file made in it)."""
    if path.is_dir():
        return
    _ensure_dir(path.parent, fsync)
    try:
        os.mkdir(path)
    except FileExistsError:
        pass
    if fsync:
        _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Static conformance (restic's `var _ backend.Backend = &Local{}`): mypy fails here if
# LocalChunkStore stops implementing the contract.
_LOCAL_IS_A_CHUNK_STORE: type[ChunkStore] = LocalChunkStore
