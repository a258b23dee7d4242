"""What the collector says it did is what it did, and each server process sweeps orphan and
staging files soon after it starts (one process at a time), not an hour later."""

from __future__ import annotations

import os
import time

from blob_helpers import chunk_files, pseudo_random, sha256
from imagerepo.blobstore import collector


def plant_orphans(blobs, count: int, seed: int) -> list[str]:
    """Chunk files with no row, as a crash between publishing and commit leaves them."""
    digests = []
    for n in range(count):
        data = pseudo_random(64, seed=seed + n)
        path = blobs.store.path_for(sha256(data))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        digests.append(sha256(data))
    return digests


def test_gc_counts_only_orphan_files_it_actually_unlinked(blobs, config):
    orphans = plant_orphans(blobs, collector._BATCH + 20, seed=1000)
    vanished: list[str] = []

    def progress(phase, done, total):
        # After the first batch, someone else (an operator's rm, a second store walker) removes
        # the rest: they are claimed, but no file is unlinked for them by this collection.
        if phase == "orphans" and not vanished:
            for digest in sorted(chunk_files(blobs)):
                blobs.store.delete(digest)
                vanished.append(digest)

    report = blobs.collect_garbage(grace_seconds=0, progress=progress)
    assert vanished, "the sweep went through more than one batch"
    assert report.orphan_files_removed == len(orphans) - len(vanished)
    assert not chunk_files(blobs)
    with blobs.db.read() as conn:
        assert conn.execute("SELECT count(*) AS n FROM chunks").fetchone()["n"] == 0, "no claim row is left"


def test_a_fresh_server_sweeps_orphan_and_staging_files_soon_after_it_starts(config):
    """Against the real server (2 workers): files a crash left long ago go within seconds of a
    start, not an hour later; and one walk at a time removes each exactly once."""
    from blob_helpers import make_blobs
    from live_server import live_server

    blobs = make_blobs(config)
    try:
        orphans = plant_orphans(blobs, 3, seed=2000)
    finally:
        blobs.db.close()
    abandoned = config.blob_dir / "tmp" / "upload-crashed"
    abandoned.mkdir(parents=True)
    (abandoned / "chunk-1.tmp").write_bytes(b"half an upload")
    long_ago = time.time() - 2 * 3600  # past the default grace period (600 s)
    for path in [*(config.blob_dir / d[:2] / d[2:4] / d for d in orphans), abandoned / "chunk-1.tmp", abandoned]:
        os.utime(path, (long_ago, long_ago))

    env = {"IMAGEREPO_GC_INTERVAL_SECONDS": "1"}
    with live_server(config.database_url, config.blob_dir, workers=2, extra_env=env) as server:
        deadline = time.monotonic() + 30
        while (abandoned.exists() or any(p.is_file() for p in config.blob_dir.glob("??/??/*"))) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.2)
        log = server.log_path.read_text()
    assert not abandoned.exists(), "the abandoned staging area is swept soon after start"
    assert not list(config.blob_dir.glob("??/??/*")), "the orphan files are swept soon after start"
    assert "Traceback" not in log
