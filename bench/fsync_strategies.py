"""python -m bench.fsync_strategies [--mib 20] [--runs 5] [--only NAMES] [--dir DIR]

How to make one upload's chunk files durable, measured on the disk the store would use (issue 16:
"measure syncfs-style or pack-style alternatives before choosing"). Each strategy stores the same
20 MiB of random bytes as 256 KiB chunks into a fresh `root/ab/cd/<digest>` store (so nearly
every chunk needs new fan-out directories, as in a young store), hashing included, and every one
leaves the chunk files' data and their directory entries on stable storage when it returns:

  serial      per chunk: write, fsync, mkdir (+ fsync parent), rename, fsync dir: the upload limit
              of `make bench` (bench/baselines.py)
  per-chunk   the store before issue 16: the serial steps per chunk, 8 chunks at a time on a pool
  per-chunk+sfr  per-chunk, with sync_file_range(WRITE) as each file is written, so writeback
              starts while the rest of the upload still arrives (the store's choice: README,
              "Performance", and imagerepo/blobstore/durable.py)
  batched     write every file; fsync them all on the pool; make the new directories and fsync
              each parent once; rename every file; fsync each final directory once (on the pool)
  batched+sfr batched, with sync_file_range(WRITE) as each file is written
  pipelined   make the new directories (each parent fsynced once) first, then per chunk on the
              pool with no barrier between chunks: fsync, rename, fsync its directory
  syncfs      write every file, make directories, rename, then one syncfs(2) of the filesystem
  pack        all chunks appended to one pack file: write, fsync, rename, one directory fsync
              (a layout change: needs an index from digest to pack offset)

Prints MB/s (median, min-max) per strategy, and the ratio to `serial`, interleaved run by run.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CHUNK = 256 * 1024
POOL = ThreadPoolExecutor(8)
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
SYNC_FILE_RANGE_WRITE = 2  # start writeback of the dirty pages, do not wait


def _fsync_path(path: str | Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _chunks(data: bytes) -> list[tuple[str, memoryview]]:
    view = memoryview(data)
    hashlib.sha256(view).digest()  # the object's own name, as every strategy must compute it
    return [(hashlib.sha256(p).hexdigest(), p) for p in (view[o : o + CHUNK] for o in range(0, len(data), CHUNK))]


def _write(path: Path, piece, sfr: bool = False, fsync: bool = False) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, piece)
        if sfr:
            _libc.sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _ensure_dirs(root: Path, digests: list[str]) -> None:
    """Make the fan-out directories; fsync each parent of a new one once (on the pool)."""
    parents: set[Path] = set()
    for digest in digests:
        level1 = root / digest[:2]
        for path in (level1, level1 / digest[2:4]):
            try:
                os.mkdir(path)
                parents.add(path.parent)
            except FileExistsError:
                pass
    list(POOL.map(lambda p: _fsync_path(p, True), parents))


def serial(data: bytes, root: Path) -> None:
    staging = root / "tmp"
    for n, (digest, piece) in enumerate(_chunks(data)):
        temp = staging / f"c{n}"
        _write(temp, piece, fsync=True)
        final_dir = root / digest[:2] / digest[2:4]
        _ensure_dirs(root, [digest])
        os.replace(temp, final_dir / digest)
        _fsync_path(final_dir, True)


def per_chunk(data: bytes, root: Path, sfr: bool = False) -> None:
    staging = root / "tmp"
    pieces = _chunks(data)
    for n, (_, piece) in enumerate(pieces):
        _write(staging / f"c{n}", piece, sfr=sfr)

    def put(item):
        n, (digest, _) = item
        final_dir = root / digest[:2] / digest[2:4]
        for path in (final_dir.parent, final_dir):
            try:
                os.mkdir(path)
                _fsync_path(path.parent, True)
            except FileExistsError:
                pass
        _fsync_path(staging / f"c{n}")
        os.replace(staging / f"c{n}", final_dir / digest)
        _fsync_path(final_dir, True)

    list(POOL.map(put, enumerate(pieces)))


def per_chunk_sfr(data: bytes, root: Path) -> None:
    per_chunk(data, root, sfr=True)


def _batched(data: bytes, root: Path, sfr: bool) -> None:
    staging = root / "tmp"
    pieces = _chunks(data)
    temps = [staging / f"c{n}" for n in range(len(pieces))]
    for temp, (_, piece) in zip(temps, pieces, strict=True):
        _write(temp, piece, sfr=sfr)
    list(POOL.map(_fsync_path, temps))
    digests = [d for d, _ in pieces]
    _ensure_dirs(root, digests)
    finals = {root / d[:2] / d[2:4] for d in digests}
    for temp, digest in zip(temps, digests, strict=True):
        os.replace(temp, root / digest[:2] / digest[2:4] / digest)
    list(POOL.map(lambda p: _fsync_path(p, True), finals))


def batched(data: bytes, root: Path) -> None:
    _batched(data, root, sfr=False)


def batched_sfr(data: bytes, root: Path) -> None:
    _batched(data, root, sfr=True)


def pipelined(data: bytes, root: Path) -> None:
    """The fan-out directories first (each new one's parent fsynced once), then per chunk on the
    pool, with no barrier between chunks: fsync, rename, fsync its directory."""
    staging = root / "tmp"
    pieces = _chunks(data)
    for n, (_, piece) in enumerate(pieces):
        _write(staging / f"c{n}", piece, sfr=True)
    _ensure_dirs(root, [d for d, _ in pieces])

    def put(item):
        n, (digest, _) = item
        _fsync_path(staging / f"c{n}")
        os.replace(staging / f"c{n}", root / digest[:2] / digest[2:4] / digest)
        _fsync_path(root / digest[:2] / digest[2:4], True)

    list(POOL.map(put, enumerate(pieces)))


def syncfs(data: bytes, root: Path) -> None:
    staging = root / "tmp"
    pieces = _chunks(data)
    for n, (_, piece) in enumerate(pieces):
        _write(staging / f"c{n}", piece)
    digests = [d for d, _ in pieces]
    for path in {root / d[:2] for d in digests} | {root / d[:2] / d[2:4] for d in digests}:
        path.mkdir(parents=True, exist_ok=True)
    for n, digest in enumerate(digests):
        os.replace(staging / f"c{n}", root / digest[:2] / digest[2:4] / digest)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc.syncfs(fd) != 0:
            raise OSError(ctypes.get_errno(), "syncfs")
    finally:
        os.close(fd)


def pack(data: bytes, root: Path) -> None:
    pieces = _chunks(data)
    temp = root / "tmp" / "pack"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for _, piece in pieces:
            os.write(fd, piece)
        os.fsync(fd)
    finally:
        os.close(fd)
    (root / "packs").mkdir(exist_ok=True)
    os.replace(temp, root / "packs" / pieces[0][0])
    _fsync_path(root / "packs", True)
    _fsync_path(root, True)


STRATEGIES: dict[str, Callable[[bytes, Path], None]] = {
    "serial": serial,
    "per-chunk": per_chunk,
    "per-chunk+sfr": per_chunk_sfr,
    "batched": batched,
    "batched+sfr": batched_sfr,
    "pipelined": pipelined,
    "syncfs": syncfs,
    "pack": pack,
}


def measure(mib: int, runs: int, workdir: Path | None, names: list[str]) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(runs):
        for name in names:
            strategy = STRATEGIES[name]
            data = os.urandom(mib * 1024 * 1024)
            root = Path(tempfile.mkdtemp(prefix="fsync-", dir=workdir))
            (root / "tmp").mkdir()
            _fsync_path(root.parent, True)
            start = time.perf_counter()
            strategy(data, root)
            rates[name].append(len(data) / 1e6 / (time.perf_counter() - start))
            shutil.rmtree(root)
    return rates


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fsync_strategies", description=__doc__.split("\n\n")[1])
    parser.add_argument("--mib", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, help="where the stores go (default: the system temp dir)")
    parser.add_argument("--only", help=f"comma-separated, of {','.join(STRATEGIES)} (serial is always measured)")
    args = parser.parse_args(argv)
    names = ["serial"] + [n for n in (args.only.split(",") if args.only else STRATEGIES) if n != "serial"]
    rates = measure(args.mib, args.runs, args.dir, names)
    ratios = {n: statistics.median(r / s for r, s in zip(rates[n], rates["serial"], strict=True)) for n in rates}
    print(f"| strategy ({args.mib} MiB, {args.runs} runs) | MB/s median (min-max) | vs serial |")
    print("|---|---|---|")
    for name, runs in rates.items():
        print(f"| {name} | {statistics.median(runs):.0f} ({min(runs):.0f}-{max(runs):.0f}) | {ratios[name]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
