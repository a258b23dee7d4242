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
from imagerepo.blobstore.local import LocalChunkStore, StagingArea


def _local(tmp_path: Path, request=None) -> LocalChunkStore:
    return LocalChunkStore(tmp_path / "blobs", fsync=True)


def _s3(tmp_path: Path, request):
    # A real SeaweedFS, started once per run (tests/seaweed.py), a fresh key prefix per test.
    return request.getfixturevalue("s3_store")


STORE_FACTORIES = {"local": _local, "s3": _s3}


@pytest.fixture(params=sorted(STORE_FACTORIES))
def store(request, tmp_path):
    return STORE_FACTORIES[request.param](tmp_path, request)


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
    child = ctx.Process(target=_hold_staging_area, args=(str(store.staging_dir), ready, release))
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


def _hold_staging_area(staging_dir: str, ready, release) -> None:
    area = StagingArea(Path(staging_dir))
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
        # The kill falls at a random point of the writing, however long the child took to start
        # (a spawned interpreter takes ~0.6 s to import, several times that on a loaded machine).
        ready = tmp_path / f"writer-{round_number}.ready"
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1 + rng.random() * 0.4)
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
    (Path(root).parent / f"writer-{round_number}.ready").touch()
    seed = round_number * 100000
    while True:
        seed += 1
        digest, data = chunk(seed, 4 * 1024 * 1024 + seed % 977)
        store.put(digest, data)


def _damage(path: Path, how: str, data: bytes) -> None:
    if how == "flipped bit":
        path.write_bytes(data[:100] + bytes([data[100] ^ 0x01]) + data[101:])
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "zero-length":
        path.write_bytes(b"")
    else:  # "longer"
        path.write_bytes(data + b"\0")


DAMAGE = ["flipped bit", "truncated", "zero-length", "longer"]


@pytest.mark.parametrize("how", DAMAGE)
@pytest.mark.parametrize("given", ["bytes", "staged file"])
def test_local_a_wrong_file_at_the_final_path_is_replaced_by_the_right_bytes(tmp_path, how, given):
    """A crash with IMAGEREPO_FSYNC=0 leaves zero-length or truncated files, a disk flips bits:
    a put that brings the right bytes must not adopt such a file."""
    store = _local(tmp_path)
    digest, data = chunk(11)
    final = store.path_for(digest)
    final.parent.mkdir(parents=True)
    _damage(final, how, data)
    if given == "bytes":
        assert store.put(digest, data) is True
    else:
        area, path = staged_file(store, data)
        assert store.put(digest, path) is True
        area.remove()
    assert store.get(digest) == data
    assert [c.digest for c in store.iterate()] == [digest]


@pytest.mark.parametrize("how", DAMAGE)
def test_local_a_file_damaged_after_it_was_written_is_replaced_too(tmp_path, how):
    """Damage in place after this process wrote the file: a change of size is always seen, a
    change of bytes because the rewrite gives the file a new inode and mtime."""
    store = _local(tmp_path)
    digest, data = chunk(12)
    assert store.put(digest, data) is True
    final = store.path_for(digest)
    damaged = final.with_name("damaged")
    _damage(damaged, how, data)
    os.replace(damaged, final)
    assert store.put(digest, data) is True
    assert store.get(digest) == data


def test_local_a_right_file_is_kept_as_it_is(tmp_path):
    store = _local(tmp_path)
    digest, data = chunk(13)
    assert store.put(digest, data) is True
    before = os.stat(store.path_for(digest))
    assert store.put(digest, data) is False
    # Another process (a fresh store) has not seen it: it reads and checks it, and keeps it.
    assert _local(tmp_path).put(digest, data) is False
    after = os.stat(store.path_for(digest))
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def _chunk_where(wanted) -> tuple[str, bytes]:
    """A chunk whose digest satisfies `wanted` (found by trying seeds)."""
    for seed in range(10**7):
        data = b"prefix-search-%d" % seed
        digest = hashlib.sha256(data).hexdigest()
        if wanted(digest):
            return digest, data
    raise AssertionError("no digest found")


def test_local_each_new_fan_out_directory_is_fsynced_in_its_parent_once(tmp_path, monkeypatch):
    """What is observable without pulling the plug: which directories are fsynced, and that
    it happens before put() returns (so before the caller commits the chunk's row). A real
    os.fsync is called each time; the wrapper only records the path each descriptor names."""
    store = _local(tmp_path)
    real_fsync = os.fsync
    synced: list[Path] = []

    def recording_fsync(fd):
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    root = store.root
    first, first_data = chunk(21)
    assert store.put(first, first_data) is True
    level1, level2 = root / first[:2], root / first[:2] / first[2:4]
    directories = [p for p in synced if p.is_dir()]
    # New `ab` made durable in the root, new `ab/cd` in `ab`, the file's entry in `ab/cd`.
    assert directories == [root, level1, level2]

    synced.clear()
    sibling, sibling_data = _chunk_where(lambda d: d[:4] == first[:4] and d != first)  # same `ab/cd`
    assert store.put(sibling, sibling_data) is True
    assert [p for p in synced if p.is_dir()] == [level2]

    synced.clear()
    cousin, cousin_data = _chunk_where(lambda d: d[:2] == first[:2] and d[2:4] != first[2:4])  # new `ab/ef`
    assert store.put(cousin, cousin_data) is True
    assert [p for p in synced if p.is_dir()] == [level1, level1 / cousin[2:4]]


@pytest.mark.parametrize("how", DAMAGE)
def test_local_quarantine_moves_a_wrong_file_aside_and_keeps_a_right_one(tmp_path, how):
    store = _local(tmp_path)
    digest, data = chunk(31)
    store.put(digest, data)
    assert store.quarantine(digest, len(data)) is False, "a right file stays"
    assert store.get(digest) == data
    final = store.path_for(digest)
    _damage(final, how, data)
    assert store.quarantine(digest, len(data)) is True
    assert not store.exists(digest) and list(store.iterate()) == []
    kept = list((store.root / "quarantine").iterdir())
    assert len(kept) == 1 and kept[0].name.startswith(digest), "moved aside for inspection, not deleted"
    assert store.quarantine(digest, len(data)) is False, "nothing left to move"
    assert store.put(digest, data) is True and store.get(digest) == data


def test_local_quarantine_reads_the_file_even_when_it_was_known_good(tmp_path):
    """Bit rot changes neither inode, size nor mtime: quarantine must not trust what put knew."""
    store = _local(tmp_path)
    digest, data = chunk(32)
    store.put(digest, data)
    final = store.path_for(digest)
    st = os.stat(final)
    with open(final, "r+b") as handle:
        handle.seek(7)
        handle.write(bytes([data[7] ^ 0x10]))
    os.utime(final, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert store.put(digest, data) is False, "put trusts a file it wrote and that looks unchanged"
    assert store.quarantine(digest, len(data)) is True


def test_local_a_staged_file_is_durable_before_it_is_visible_and_its_entry_before_put_returns(tmp_path, monkeypatch):
    """durable.py's order, per chunk: fsync the staged file, then rename it into place (another
    upload may adopt it from there, so its bytes must already be on disk), then fsync its
    directory, all before put() returns (so before the caller commits the chunk's row)."""
    store = _local(tmp_path)
    events: list[tuple[str, Path]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def recording_fsync(fd):
        real_fsync(fd)
        events.append(("fsync", Path(os.readlink(f"/proc/self/fd/{fd}"))))

    def recording_replace(source, target):
        events.append(("rename", Path(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    for seed in range(41, 46):
        digest, data = chunk(seed)
        area, staged = staged_file(store, data)
        events.clear()
        assert store.put(digest, staged) is True
        area.remove()
        final = store.path_for(digest)
        kinds = [(kind, path) for kind, path in events if kind == "rename" or path in (staged, final.parent)]
        assert kinds == [("fsync", staged), ("rename", final), ("fsync", final.parent)], events
    monkeypatch.undo()
    assert store.get(digest) == data
