"""Where chunk bytes live. The narrow interface every backend implements:

    put(digest, data) -> bool      store bytes (or a staged file) under their digest; False if present
    get(digest) -> bytes           raise ChunkMissing when absent; no verification here
    exists(digest) -> bool
    delete(digest) -> bool         False if it was already gone
    iterate() -> ChunkFile...      every stored chunk (digest, size, mtime)

plus the staging area uploads write into before anything is committed (`new_staging_file`,
`sweep_staging`). Digests are lowercase SHA-256 hex. The local-disk store lays chunks out
like git's objects: `root/ab/cd/abcd…`, written to a temp file, fsynced, renamed into place,
so a reader never sees a partial chunk. An object-storage backend (S3) would implement the
same methods; nothing above this module knows about paths.
"""
from __future__ import annotations

import dataclasses
import os
import re
import time
from pathlib import Path
from typing import Iterator, Protocol

_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")
STAGING = "tmp"


class ChunkMissing(LookupError):
    pass


@dataclasses.dataclass(frozen=True)
class ChunkFile:
    digest: str
    size: int
    mtime: float


class ChunkStore(Protocol):
    def put(self, digest: str, data: bytes | Path) -> bool: ...
    def get(self, digest: str) -> bytes: ...
    def exists(self, digest: str) -> bool: ...
    def delete(self, digest: str) -> bool: ...
    def iterate(self) -> Iterator[ChunkFile]: ...
    def new_staging_file(self): ...
    def sweep_staging(self, older_than_seconds: float) -> int: ...


def _check_digest(digest: str) -> str:
    if not _HEX_DIGEST.match(digest):
        raise ValueError(f"not a SHA-256 hex digest: {digest!r}")
    return digest


class LocalChunkStore:
    def __init__(self, root: Path, fsync: bool = True):
        self.root = Path(root)
        self.fsync = fsync
        self.staging_dir = self.root / STAGING
        self.staging_dir.mkdir(parents=True, exist_ok=True)

    def path_for(self, digest: str) -> Path:
        _check_digest(digest)
        return self.root / digest[:2] / digest[2:4] / digest

    # -- staging -------------------------------------------------------------------------
    def new_staging_file(self):
        """An open binary file in the staging area (same filesystem, so publishing is a rename)."""
        fd, name = _mkstemp(self.staging_dir)
        return os.fdopen(fd, "wb"), Path(name)

    def sweep_staging(self, older_than_seconds: float) -> int:
        cutoff = time.time() - older_than_seconds
        removed = 0
        for entry in os.scandir(self.staging_dir):
            try:
                if entry.is_file() and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    # -- the interface -------------------------------------------------------------------
    def put(self, digest: str, data: bytes | Path) -> bool:
        """Make `digest` present. `data` is bytes, or a staged file that is moved (not copied)."""
        final = self.path_for(digest)
        if final.exists():
            if isinstance(data, Path):
                data.unlink(missing_ok=True)
            return False
        final.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, Path):
            staged = data
            if self.fsync:
                fd = os.open(staged, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        else:
            handle, staged = self.new_staging_file()
            with handle:
                handle.write(data)
                handle.flush()
                if self.fsync:
                    os.fsync(handle.fileno())
        os.replace(staged, final)
        # The collector's grace period counts from when a chunk became visible, not staged.
        os.utime(final)
        if self.fsync:
            _fsync_dir(final.parent)
        return True

    def get(self, digest: str) -> bytes:
        try:
            with open(self.path_for(digest), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            raise ChunkMissing(digest) from None

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).is_file()

    def delete(self, digest: str) -> bool:
        try:
            os.unlink(self.path_for(digest))
            return True
        except FileNotFoundError:
            return False

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


def _mkstemp(directory: Path):
    import tempfile

    return tempfile.mkstemp(dir=directory, prefix="chunk-", suffix=".tmp")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
