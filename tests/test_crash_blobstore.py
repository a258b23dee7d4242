"""The real server SIGKILLed at random points of uploads and deletes, again and again.

Every upload the server acknowledged (201) must read back byte-exact afterwards, every delete it
acknowledged must stay deleted, fsck must be clean, and one collection must remove exactly what
the crashes left behind (files without rows, staged files of uploads that died), leaving the
chunk files the surviving images need and nothing else. On each chunk backend: local files and
S3 (a real SeaweedFS), where a kill between a chunk's PUT and the commit leaves an orphan object.
"""

from __future__ import annotations

import random
import threading
import time

import requests

from blob_helpers import chunk_files, make_blobs, needed_chunks, object_of, staging_files
from http_helpers import bmp_bytes, signup, upload
from live_server import LiveServer
from s3_helpers import backend_env

CHUNK = 16 * 1024
ROUNDS = {"local": 24, "s3": 12}  # fewer on S3: each round's uploads are slower, so CI stays short
UPLOADERS = 4


def the_files() -> list[bytes]:
    """Images of a few sizes; the first three share their pixel bytes' prefix, so they share chunks."""
    shared = [bmp_bytes(256, height, seed=1) for height in (300, 500, 700)]  # 230..540 KB
    own = [bmp_bytes(300, 400, seed=2 + i) for i in range(3)]
    return shared + own + [bmp_bytes(512, 1000, seed=9)]  # and one of 1.5 MB


def slowly(data: bytes, rng: random.Random, piece: int = 48 * 1024):
    """Sent in pieces with pauses, so a kill can land in the middle of a body."""
    for offset in range(0, len(data), piece):
        yield data[offset : offset + piece]
        if rng.random() < 0.3:
            time.sleep(0.003)


def test_sigkill_at_random_points_loses_nothing_acknowledged(backend_config):
    config = backend_config
    rounds = ROUNDS[config.chunk_store]
    files = the_files()
    env = {
        "IMAGEREPO_CHUNK_SIZE": str(CHUNK),
        "IMAGEREPO_CACHE_BYTES": str(4 * 1024 * 1024),
        **backend_env(config),
    }
    rng = random.Random(20240601)
    acknowledged: dict[int, int] = {}  # image id -> index into files
    deleted: set[int] = set()
    uncertain: dict[int, int] = {}  # deletes cut off by a kill: gone, or still byte-exact
    lock = threading.Lock()
    counts = {"uploads_sent": 0, "acknowledged": 0, "broken": 0, "deletes": 0}
    headers = None

    def uploader(base: str, seed: int, stop: threading.Event, acked: threading.Event):
        local = random.Random(seed)
        session = requests.Session()
        while not stop.is_set():
            with lock:
                counts["uploads_sent"] += 1
                # Sometimes delete an acknowledged image instead (a kill may hit that too).
                victim = local.choice(sorted(acknowledged)) if acknowledged and local.random() < 0.2 else None
            try:
                if victim is not None:
                    response = session.delete(f"{base}/images/{victim}", headers=headers, timeout=30)
                    if response.status_code == 202:
                        with lock:
                            acknowledged.pop(victim, None)
                            deleted.add(victim)
                            counts["deletes"] += 1
                    continue
                which = local.randrange(len(files))
                response = upload(session, base, headers, f"f{which}.bmp", slowly(files[which], local), timeout=30)
                assert response.status_code == 201, response.text
                with lock:
                    acknowledged[response.json()["id"]] = which
                    counts["acknowledged"] += 1
                acked.set()
            except requests.RequestException:
                with lock:
                    counts["broken"] += 1
                    # The delete may or may not have committed before the kill (unless another
                    # thread deleted the same image first).
                    if victim is not None and victim in acknowledged:
                        uncertain[victim] = acknowledged.pop(victim)
                return  # the server is dead; this round is over

    started = time.monotonic()
    for round_number in range(rounds):
        server = LiveServer(config.database_url, config.blob_dir, workers=2, threads=4, extra_env=env).start()
        try:
            if headers is None:
                headers = signup(server.url, "crashtest")
            stop, acked = threading.Event(), threading.Event()
            threads = [
                threading.Thread(target=uploader, args=(server.url, round_number * 100 + i, stop, acked))
                for i in range(UPLOADERS)
            ]
            for thread in threads:
                thread.start()
            # The kill comes at a random point once the server has acknowledged something: a
            # worker that is still starting (slow on a loaded machine, and S3's client takes
            # ~0.7 s to build) would otherwise make most rounds kill before any upload is done.
            acked.wait(30)
            time.sleep(rng.random() * 0.9)
            server.kill()
            stop.set()
            for thread in threads:
                thread.join(60)
        finally:
            server.kill()
    crash_seconds = time.monotonic() - started
    assert counts["acknowledged"] > 3 * rounds and counts["broken"] >= rounds, counts

    blobs = make_blobs(config, chunk_size=CHUNK)
    try:
        # Before any collection: the database and the files agree on everything referenced.
        report = blobs.check(verify_content=True)
        assert report.clean, report
        for image, which in acknowledged.items():
            assert blobs.read_all(object_of(blobs, image)) == files[which]
        left_behind_staged = len(staging_files(blobs))
        left_behind_orphans = len(report.orphan_files)
        assert left_behind_staged + left_behind_orphans > 0, "no kill landed mid-upload; the test proved nothing"

        collected = blobs.collect_garbage(grace_seconds=0)
        assert collected.staging_files_removed == left_behind_staged
        assert collected.orphan_files_removed == left_behind_orphans
        assert staging_files(blobs) == [] and list(blobs.store.staging_dir.iterdir()) == []
        assert chunk_files(blobs) == needed_chunks(blobs)
        report = blobs.check(verify_content=True)
        assert report.clean and report.orphan_files == [] and report.unreferenced_chunks == 0, report
    finally:
        blobs.db.close()

    # And through the server, as a user sees it.
    server = LiveServer(config.database_url, config.blob_dir, workers=1, threads=4, extra_env=env).start()
    try:
        session = requests.Session()
        for image, which in acknowledged.items():
            response = session.get(f"{server.url}/images/{image}/content", headers=headers, timeout=30)
            assert response.status_code == 200 and response.content == files[which], image
        for image in deleted:
            assert session.get(f"{server.url}/images/{image}", headers=headers, timeout=30).status_code == 404
        for image, which in uncertain.items():
            response = session.get(f"{server.url}/images/{image}/content", headers=headers, timeout=30)
            assert response.status_code == 404 or response.content == files[which], image
    finally:
        server.stop()
    print(
        f"{config.chunk_store}: {rounds} kills in {crash_seconds:.1f}s: {counts}; left behind {left_behind_staged} staged"
        f" and {left_behind_orphans} orphan files"
    )
