"""Making chunk files durable before their rows commit: an acknowledged upload survives a power
loss, so each chunk file's data, its entry in its fan-out directory, and the entry of every new
fan-out directory in its parent are on stable storage before the caller commits.

Each chunk is published on its own, in this order: fsync the staged file (its writeback began
as it was staged, staging_area.py), make its fan-out directories if missing (fsyncing each new
one's parent), rename it into place, fsync its directory. The data is durable before the file
appears under its final name, so another upload that finds it there (and verifies it) never
adopts bytes a power loss can take back. The writer publishes an upload's chunks in parallel on
a thread pool: each fsync is mostly a wait for the filesystem's journal to commit, and
concurrent fsyncs share those commits.

Batching them instead (fsync every file, then every new directory's parent once, rename all,
fsync each final directory once) was built and measured slower (issue 16): with random digests
nearly every chunk has a directory of its own, so batching saves few fsyncs, and its barriers
wait for the slowest fsync of each step, where independent chunks keep the disk busy. syncfs(2)
was no faster and flushes every other writer's data too; a pack file (one fsync per upload) is
5-8x faster but changes the layout every other part relies on. `python -m bench.fsync_strategies`
measures them all; README, "Performance".
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dirs(paths: Iterable[Path], fsync: bool) -> None:
    """Create each directory of `paths` and its missing parents; then fsync, once each, every
    parent in which an entry was made (root first when done in order), before anything is
    published in them. A directory raced into existence by another process is fsynced by both
    racers. Left to the filesystem: a put that finds a directory made by another process a
    moment ago, before its fsync returned (ext4 and XFS journal the mkdir before the file made
    in it)."""
    parents: set[Path] = set()
    for path in sorted(set(paths)):
        missing = []
        while not path.is_dir():
            missing.append(path)
            path = path.parent
        for directory in reversed(missing):
            try:
                os.mkdir(directory)
            except FileExistsError:
                pass
            parents.add(directory.parent)
    if fsync:
        for parent in sorted(parents, key=lambda p: (len(p.parts), p)):
            fsync_dir(parent)


def publish(staged: Path, final: Path, fsync: bool) -> None:
    """Move a staged file to its final path (one filesystem), durably when `fsync`."""
    if fsync:
        fsync_file(staged)
    ensure_dirs([final.parent], fsync)
    os.replace(staged, final)
    # The collector's grace period for files without a row counts from when a chunk became
    # visible, not from when it was staged.
    os.utime(final)
    if fsync:
        fsync_dir(final.parent)
