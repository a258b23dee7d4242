"""The chunk-store contract: what the blob store relies on from any backend.

Every implementation runs the same tests. A new backend (S3, ...) adds a factory to
STORE_FACTORIES; only the tests named `test_local_*` are about the local disk's layout.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from imagerepo.blobstore.interface import ChunkFile, ChunkMissing
from imagerepo.blobstore.local import LocalChunkStore


def _local(tmp_path: Path) -> LocalChunkStore:
    return LocalChunkStore(tmp_path / "blobs", fsync=True)


STORE_FACTORIES = {"local": _local}


@pytest.fixture(params=sorted(STORE_FACTORIES))
def store(request, tmp_path):
    return STORE_FACTORIES[request.param](tmp_path)


def chunk(seed: int, size: int = 5000) -> tuple[str, bytes]:
    data = hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1)
    data = data[:size]
    return hashlib.sha256(data).hexdigest(), data


def staged_file(store, data: bytes):
    area = store.new_staging_area()
    handle, path = area.new_file()
    with handle:
        handle.write(data)
    return area, path


def test_put_then_get_exists_iterate(store):
    digest, data = chunk(1)
    assert not store.exists(digest)
    assert store.put(digest, data) is True
    assert store.exists(digest)
    assert store.get(digest) == data
    assert list(store.iterate()) == [ChunkFile(digest, len(data), pytest.approx(time.time(), abs=60))]


def test_put_of_a_present_digest_keeps_the_first_bytes_and_says_so(store):
    digest, data = chunk(2)
    assert store.put(digest, data) is True
    assert store.put(digest, data) is False
    area, path = staged_file(store, data)
    assert store.put(digest, path) is False
    assert not path.exists(), "a staged file that was not needed is consumed, not left behind"
    area.remove()
    assert store.get(digest) == data
    assert [c.digest for c in store.iterate()] == [digest]


def test_get_of_a_missing_digest_raises_chunk_missing(store):
    digest, _ = chunk(3)
    with pytest.raises(ChunkMissing):
        store.get(digest)


def test_stat_gives_size_and_time_without_reading_and_raises_chunk_missing(store):
    digest, data = chunk(30, 7000)
    with pytest.raises(ChunkMissing):
        store.stat(digest)
    store.put(digest, data)
    assert store.stat(digest) == ChunkFile(digest, len(data), pytest.approx(time.time(), abs=60))
    store.delete(digest)
    with pytest.raises(ChunkMissing):
        store.stat(digest)
    with pytest.raises(ValueError):
        store.stat("../" + "0" * 61)


def test_delete(store):
    digest, data = chunk(4)
    store.put(digest, data)
    assert store.delete(digest) is True
    assert not store.exists(digest)
    assert store.delete(digest) is False
    with pytest.raises(ChunkMissing):
        store.get(digest)
    assert list(store.iterate()) == []


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "abc",
        "A" * 64,
        "g" * 64,
        "0" * 63,
        "0" * 65,
        "../" + "0" * 61,
        "0" * 62 + "/.",
        "00/00/" + "0" * 58,
        " " + "0" * 63,
    ],
)
def test_bad_digest_strings_are_refused_by_every_method(store, bad):
    for call in (
        lambda: store.get(bad),
        lambda: store.exists(bad),
        lambda: store.delete(bad),
        lambda: store.put(bad, b"x"),
    ):
        with pytest.raises(ValueError):
            call()
    assert list(store.iterate()) == []


def test_a_staged_file_is_published_by_rename(store):
    digest, data = chunk(5)
    area, path = staged_file(store, data)
    inode = os.stat(path).st_ino
    assert store.put(digest, path) is True
    assert not path.exists(), "the staged file is moved, not copied"
    assert store.get(digest) == data
    if isinstance(store, LocalChunkStore):
        assert os.stat(store.path_for(digest)).st_ino == inode
    area.remove()


def test_iterate_lists_every_chunk_once_and_nothing_staged(store):
    stored = dict(chunk(seed, 100 + seed) for seed in range(40))
    for digest, data in stored.items():
        store.put(digest, data)
    area, _ = staged_file(store, b"in flight")
    listed = list(store.iterate())
    assert sorted(c.digest for c in listed) == sorted(stored)
    assert {c.digest: c.size for c in listed} == {d: len(b) for d, b in stored.items()}
    area.remove()


def test_readers_only_ever_see_complete_chunks(store):
    """Big chunks written while other threads read: a read is missing or whole, never partial."""
    chunks = [chunk(seed, 2 * 1024 * 1024) for seed in range(6)]
    seen_partial = []
    done = threading.Event()

    def reader():
        while not done.is_set():
            for digest, data in chunks:
                try:
                    got = store.get(digest)
                except ChunkMissing:
                    continue
                if got != data:
                    seen_partial.append((digest, len(got)))
            for listed in store.iterate():
                if listed.size != 2 * 1024 * 1024:
                    seen_partial.append((listed.digest, listed.size))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for digest, data in chunks:
            store.put(digest, data)
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert seen_partial == []
    assert all(store.get(d) == b for d, b in chunks)


def test_staging_sweep_spares_live_uploads_and_takes_abandoned_ones(store):
    live, live_path = staged_file(store, b"an upload still in flight")
    dead, dead_path = staged_file(store, b"left by a crash")
    # A crash: the owner dies without cleaning up; the kernel drops its lock.
    dead._release()
    assert store.sweep_staging(0) == 1
    assert live_path.exists()
    assert not dead_path.exists()
    digest = hashlib.sha256(b"an upload still in flight").hexdigest()
    assert store.put(digest, live_path) is True
    live.remove()
    assert store.sweep_staging(0) == 0
    assert store.get(digest) == b"an upload still in flight"


def test_staging_sweep_waits_out_the_grace_period(store):
    area, path = staged_file(store, b"abandoned")
    area._release()
    assert store.sweep_staging(3600) == 0
    assert path.exists()
    assert store.sweep_staging(0) == 1


def test_a_staging_area_lock_is_seen_by_another_process(store, tmp_path):
    """The lock is what a sweeper in another worker process relies on."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_hold_staging_area, args=(str(store.root), ready, release))
    child.start()
    try:
        assert ready.wait(30)
        assert store.sweep_staging(0) == 0
        assert len(list(store.staging_dir.glob("upload-*/*"))) == 1
    finally:
        release.set()
        child.join(30)
    # The owner exited without cleaning up: its staged file is now abandoned.
    assert child.exitcode == 0
    assert store.sweep_staging(0) == 1
    assert list(store.staging_dir.iterdir()) == []


def _hold_staging_area(root: str, ready, release) -> None:
    store = LocalChunkStore(Path(root))
    area = store.new_staging_area()
    handle, _ = area.new_file()
    with handle:
        handle.write(b"held by another process")
    ready.set()
    release.wait(30)
    os._exit(0)  # no cleanup, as a killed worker


# -- the local disk store's own layout ----------------------------------------------------------
def test_local_fan_out_layout(tmp_path):
    store = _local(tmp_path)
    digest, data = chunk(7)
    store.put(digest, data)
    path = store.root / digest[:2] / digest[2:4] / digest
    assert store.path_for(digest) == path
    assert path.read_bytes() == data
    assert [p for p in store.root.rglob("*") if p.is_file()] == [path]


def test_local_iterate_ignores_foreign_files(tmp_path):
    store = _local(tmp_path)
    digest, data = chunk(8)
    store.put(digest, data)
    (store.root / digest[:2] / digest[2:4] / "notes.txt").write_text("hi")
    # A chunk file in the wrong fan-out directory is not one of ours either.
    wrong = store.root / "00" / "00"
    wrong.mkdir(parents=True)
    (wrong / digest).write_bytes(data)
    assert [c.digest for c in store.iterate()] == [digest]


def test_local_a_writer_killed_at_random_points_leaves_only_whole_chunks(tmp_path):
    """SIGKILL a process in the middle of writing big chunks, many times: every file at a
    final path holds exactly the bytes its name promises, and the sweep takes the rest."""
    import multiprocessing
    import random
    import signal

    store = _local(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    rng = random.Random(1234)
    for round_number in range(8):
        child = ctx.Process(target=_write_chunks_forever, args=(str(store.root), round_number))
        child.start()
        time.sleep(0.3 + rng.random() * 0.4)
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
    stored = list(store.iterate())
    assert stored, "the writer never got a chunk into place; the test proves nothing"
    for listed in stored:
        data = store.get(listed.digest)
        assert hashlib.sha256(data).hexdigest() == listed.digest
        assert len(data) == listed.size
    leftovers = list(store.staging_dir.rglob("*"))
    assert leftovers, "a kill mid-write should have left staged files"
    assert store.sweep_staging(0) >= 1
    assert list(store.staging_dir.iterdir()) == []
    assert sorted(c.digest for c in store.iterate()) == sorted(c.digest for c in stored)


def _write_chunks_forever(root: str, round_number: int) -> None:
    store = LocalChunkStore(Path(root), fsync=False)
    seed = round_number * 100000
    while True:
        seed += 1
        digest, data = chunk(seed, 4 * 1024 * 1024 + seed % 977)
        store.put(digest, data)
