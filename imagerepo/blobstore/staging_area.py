"""Staging areas: each upload gets its own directory under `root/tmp/`, held with an exclusive
flock(2) for as long as its owner lives. The kernel drops the lock when the owner exits, however
it exits, so the sweeper knows exactly which staged files are abandoned: a locked directory is
an upload in flight (never touched, however old), an unlocked one was left by a crash (removed
once older than the grace period). Age alone cannot tell a slow upload from a dead one.

When the store makes chunks durable (IMAGEREPO_FSYNC, the default), a staged file starts its
writeback to disk as it is closed (sync_file_range(2) with SYNC_FILE_RANGE_WRITE: start, do not
wait), so the disk works while the rest of the upload is still arriving and the fsync at commit
(durable.py) finds little left to write. That is a head start, not a guarantee: durability still
comes only from the fsyncs before the commit.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import io
import os
import shutil
import tempfile
import weakref
from pathlib import Path

SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>


def _load_sync_file_range():
    """libc's sync_file_range, or None where there is none (not Linux): then no head start."""
    try:
        function = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_sync_file_range = _load_sync_file_range()


def start_writeback(fd: int) -> None:
    """Ask the kernel to start writing the file's dirty pages now (returns without waiting).
    Best effort: a failure here only loses the head start, the commit's fsync still reports it."""
    if _sync_file_range is not None:
        _sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE)


class _WritebackFile(io.FileIO):
    """A staged file that starts its writeback when closed (after the buffered writer's flush)."""

    def close(self) -> None:
        if not self.closed:
            start_writeback(self.fileno())
        super().close()


class StagingArea:
    """A private, flock-held directory for one upload's staged chunk files."""

    def __init__(self, parent: Path, writeback: bool = False):
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
        self._writeback = writeback
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
        raw = _WritebackFile(fd, "wb") if self._writeback else io.FileIO(fd, "wb")
        return io.BufferedWriter(raw), path

    def remove(self) -> None:
        """Delete whatever is still staged here and give up the lock."""
        if self._release.alive:
            shutil.rmtree(self.path, ignore_errors=True)
            self._release()


def remove_abandoned_area(path: str) -> int:
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
