"""The invariant under fire: many threads and several processes upload and delete the same few
files (which also share chunks with each other) against one database, while collectors with a
zero grace period run all the time. That is exactly the window in which a naive protocol loses
chunks: a collector unlinking a file that a concurrent upload has just taken a new reference to,
or sweeping as an orphan a file whose upload has not committed yet.

During the run every worker reads back what it holds (a reference held means the chunks must be
there); afterwards fsck with content verification must be clean, every surviving image must read
back byte-exact, and releasing everything must leave an empty store. All of it on each chunk
backend: local files and S3 (a real SeaweedFS).
"""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
import random
import threading
import time
import traceback


from blob_helpers import (
    SMALL_CHUNK,
    add_owner,
    add_reference,
    chunk_files,
    drop_reference,
    make_blobs,
    needed_chunks,
    object_of,
    pseudo_random,
    staging_files,
    table_counts,
)

CS = SMALL_CHUNK
RUN_SECONDS = 12
THREADS_IN_TEST_PROCESS = 4
PROCESSES = 3
THREADS_PER_PROCESS = 2


def the_files() -> list[bytes]:
    """A few files built from a handful of blocks, so they share chunks with one another."""
    shared = [pseudo_random(CS, seed=100 + i) for i in range(3)]
    own = [pseudo_random(CS, seed=200 + i) for i in range(8)]
    files = [own[i] + shared[i % 3] + (b"tail %d" % i if i % 2 else b"") for i in range(6)]
    files.append(shared[0] + shared[1] + shared[2])
    files.append(own[7] + own[7] + shared[2])
    return files


def hammer(blobs, owner: int, seed: int, deadline: float) -> dict:
    """Upload, read back and delete random files until the deadline. Returns what it did and
    the images it still holds (as {image_id: file index})."""
    files = the_files()
    digests = [hashlib.sha256(f).hexdigest() for f in files]
    rng = random.Random(seed)
    held: dict[int, int] = {}
    result = {"uploads": 0, "deletes": 0, "reads": 0, "errors": []}
    while time.monotonic() < deadline:
        try:
            # Hold little, so objects and chunks keep dropping to zero and coming back.
            if held and (len(held) >= 2 or rng.random() < 0.6):
                image = rng.choice(list(held))
                drop_reference(blobs, image)
                del held[image]
                result["deletes"] += 1
            else:
                which = rng.randrange(len(files))
                image = add_reference(blobs, owner, files[which])
                held[image] = which
                result["uploads"] += 1
            # Whatever this worker holds must be readable, whatever the others and the collector do.
            image = rng.choice(list(held)) if held else None
            if image is not None:
                got = blobs.read_all(digests[held[image]])
                if got != files[held[image]]:
                    result["errors"].append(f"image {image} read back {len(got)} wrong bytes")
                result["reads"] += 1
        except Exception:  # any failure (a missing chunk, a deadlock) fails the test
            result["errors"].append(traceback.format_exc(limit=6))
    result["held"] = held
    return result


def collect_forever(blobs, stop: threading.Event | None, deadline: float) -> dict:
    result = {"runs": 0, "chunks_freed": 0, "orphans": 0, "errors": []}
    while time.monotonic() < deadline and not (stop and stop.is_set()):
        try:
            report = blobs.collect_garbage(grace_seconds=0)
            result["runs"] += 1
            result["chunks_freed"] += report.chunks_freed
            result["orphans"] += report.orphan_files_removed
        except Exception:
            result["errors"].append(traceback.format_exc(limit=6))
    return result


def run_threads(blobs, owner: int, seeds: list[int], deadline: float) -> list[dict]:
    results: list[dict] = [None] * len(seeds)

    def work(index: int, seed: int):
        results[index] = hammer(blobs, owner, seed, deadline)

    threads = [threading.Thread(target=work, args=(i, s)) for i, s in enumerate(seeds)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(deadline - time.monotonic() + 60)
        assert not thread.is_alive(), "a worker hung (deadlock?)"
    return results


def process_main(config, owner: int, seeds: list[int], deadline_in: float, role: str, queue) -> None:
    """A separate process: its own pool, its own cache, the same database and chunk store."""
    deadline = time.monotonic() + deadline_in
    blobs = make_blobs(config)
    try:
        if role == "collector":
            queue.put(("collector", collect_forever(blobs, None, deadline)))
        else:
            queue.put(("workers", run_threads(blobs, owner, seeds, deadline)))
    except BaseException:
        queue.put(("crash", traceback.format_exc()))
    finally:
        blobs.db.close()


def test_concurrent_uploads_deletes_and_collection_keep_the_invariant(backend_config):
    """On local files and on S3 (backend_config): the collector's protocol is the same, the
    store's semantics are not (an atomic PUT instead of a rename, a paginated listing)."""
    config = dataclasses.replace(backend_config, db_pool_max=10)
    owner = add_owner(config.database_url)
    blobs = make_blobs(config, gc_grace_seconds=0)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    start_in = 4.0  # let spawned interpreters import before the clock starts
    deadline = time.monotonic() + start_in + RUN_SECONDS
    processes = [
        ctx.Process(
            target=process_main,
            args=(
                config,
                owner,
                [1000 * (p + 1) + t for t in range(THREADS_PER_PROCESS)],
                start_in + RUN_SECONDS,
                "workers",
                queue,
            ),
        )
        for p in range(PROCESSES)
    ]
    processes.append(
        ctx.Process(target=process_main, args=(config, owner, [], start_in + RUN_SECONDS, "collector", queue))
    )
    for process in processes:
        process.start()
    try:
        time.sleep(start_in)
        stop = threading.Event()
        local_collector: dict = {}
        collector = threading.Thread(target=lambda: local_collector.update(collect_forever(blobs, stop, deadline)))
        collector.start()
        results = run_threads(blobs, owner, list(range(THREADS_IN_TEST_PROCESS)), deadline)
        stop.set()
        collector.join(60)
        collectors = [local_collector]
        for _ in processes:
            kind, payload = queue.get(timeout=90)
            assert kind != "crash", payload
            if kind == "collector":
                collectors.append(payload)
            else:
                results.extend(payload)
    finally:
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
    assert all(p.exitcode == 0 for p in processes)

    errors = [e for r in results + collectors for e in r["errors"]]
    assert errors == [], "\n".join(errors[:5])
    uploads = sum(r["uploads"] for r in results)
    deletes = sum(r["deletes"] for r in results)
    freed = sum(c["chunks_freed"] for c in collectors)
    # The run must actually have raced: lots of traffic, and chunks freed and written again.
    assert uploads > 200 and deletes > 100, (uploads, deletes)
    assert freed > 20 and sum(c["runs"] for c in collectors) > 20, collectors
    print(
        f"uploads {uploads}, deletes {deletes}, reads {sum(r['reads'] for r in results)},"
        f" collector runs {sum(c['runs'] for c in collectors)}, chunks freed {freed}"
    )

    report = blobs.check(verify_content=True)
    assert report.clean, report
    assert report.orphan_files == [], "every upload committed, so no file can be without its row"
    files = the_files()
    survivors = {image: which for r in results for image, which in r["held"].items()}
    assert len(survivors) == table_counts(blobs)["images"]
    for image, which in survivors.items():
        assert blobs.read_all(object_of(blobs, image)) == files[which]
    cold = make_blobs(config)  # an empty cache: every byte comes from the store
    try:
        for image, which in survivors.items():
            assert cold.read_all(object_of(cold, image)) == files[which]
        distinct = {
            hashlib.sha256(files[w][i : i + CS]).digest()
            for w in survivors.values()
            for i in range(0, len(files[w]), CS)
        }
        assert cold.cache.misses == len(distinct), "each distinct chunk was read from disk and verified"
    finally:
        cold.db.close()

    blobs.collect_garbage(grace_seconds=0)
    assert chunk_files(blobs) == needed_chunks(blobs)
    for image in survivors:
        drop_reference(blobs, image)
    blobs.collect_garbage(grace_seconds=0)
    assert table_counts(blobs) == {"objects": 0, "chunks": 0, "object_chunks": 0, "images": 0}
    assert chunk_files(blobs) == set() and staging_files(blobs) == []
    blobs.db.close()
