"""What the machine allows, measured in this process on the same disk as the server's store.

upload limit:   SHA-256 of the whole content (the object's name) + SHA-256 of each 256 KiB
                chunk (the chunk's name) + writing each chunk to a temp file, fsync, rename into
                the fan-out directory, fsync the directory: exactly the durability of
                imagerepo/chunkstore.py with fsync on. One thread, like one upload request.
download limit: reading those chunk files and hashing each (the verification a cold read does).
sha256:         hashing bytes already in memory (the cap on verified cold reads).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

CHUNK = 256 * 1024


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_chunks(data: bytes, root: Path, chunk_size: int = CHUNK, fsync: bool = True) -> list[str]:
    """Returns the chunk digests in order."""
    view = memoryview(data)
    hashlib.sha256(view).hexdigest()
    staging = root / "tmp"
    staging.mkdir(parents=True, exist_ok=True)
    digests = []
    for offset in range(0, len(data), chunk_size):
        piece = view[offset : offset + chunk_size]
        digest = hashlib.sha256(piece).hexdigest()
        digests.append(digest)
        final_dir = root / digest[:2] / digest[2:4]
        final_dir.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=staging)
        try:
            os.write(fd, piece)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, final_dir / digest)
        if fsync:
            _fsync_dir(str(final_dir))
    return digests


def read_chunks(root: Path, digests: list[str]) -> int:
    total = 0
    for digest in digests:
        with open(root / digest[:2] / digest[2:4] / digest, "rb") as handle:
            data = handle.read()
        if hashlib.sha256(data).hexdigest() != digest:
            raise RuntimeError(f"baseline chunk {digest} corrupt")
        total += len(data)
    return total


def upload_limit(data: bytes, workdir: Path) -> tuple[float, float, list[str], Path]:
    """(MB/s to store, seconds, digests, root). The caller reads them back, then removes root."""
    root = Path(tempfile.mkdtemp(dir=workdir, prefix="baseline-"))
    start = time.perf_counter()
    digests = write_chunks(data, root)
    seconds = time.perf_counter() - start
    return len(data) / 1e6 / seconds, seconds, digests, root


def download_limit(root: Path, digests: list[str], size: int) -> float:
    start = time.perf_counter()
    read = read_chunks(root, digests)
    seconds = time.perf_counter() - start
    assert read == size
    return size / 1e6 / seconds


def sha256_rate(data: bytes) -> float:
    start = time.perf_counter()
    hashlib.sha256(data).digest()
    return len(data) / 1e6 / (time.perf_counter() - start)


def remove(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
