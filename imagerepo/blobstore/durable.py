"""Making chunk files durable before their rows commit: an acknowledged upload survives a power
loss, so each chunk file's data, its entry in its fan-out directory, and the entry of every new
fan-out directory in its parent are on stable storage before the caller commits.

One upload's chunks are published as a batch (issue 16), in three steps each spread over a
thread pool, instead of each chunk doing all of its steps in turn:

1. fsync every staged file (its data; the writeback began as it was staged, staging_area.py);
2. make the missing fan-out directories, then fsync each parent of a new one, once;
3. rename every staged file into place, then fsync each final directory, once.

The data is durable before a file appears under its final name, as with one chunk at a time, so
another upload that finds the file there (and verifies it) never adopts bytes a power loss can
take back. What batching saves: each fsync is mostly a wait for the filesystem journal to
commit, and the fsyncs of one step run together and share those commits, where one chunk at a
time waited for at least two commits per chunk. `python -m bench.fsync_strategies` measures
this against syncfs(2) and a pack file; README, "Performance", says why this one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

Mapper = Callable[..., Iterable[Any]]


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


def ensure_dirs(paths: Iterable[Path], fsync: bool, map_: Mapper = map) -> None:
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
    if fsync and parents:
        list(map_(fsync_dir, sorted(parents, key=lambda p: (len(p.parts), p))))


def publish(staged: list[tuple[Path, Path]], fsync: bool, map_: Mapper = map) -> None:
    """Move each staged file to its final path (both on one filesystem), durably when `fsync`:
    the three steps above. `map_` runs a function over many paths (a thread pool's map)."""
    if fsync:
        list(map_(fsync_file, [source for source, _ in staged]))
    ensure_dirs((final.parent for _, final in staged), fsync, map_)
    for source, final in staged:
        os.replace(source, final)
        # The collector's grace period for files without a row counts from when a chunk
        # became visible, not from when it was staged.
        os.utime(final)
    if fsync:
        list(map_(fsync_dir, sorted({final.parent for _, final in staged})))
