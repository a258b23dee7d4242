"""`python -m imagerepo migrate-chunks --to s3|local` as an operator runs it, between the local
store and a real SeaweedFS: every chunk copied and verified, resumable, live (uploads during the
copy are picked up), refusing to call a store complete when a chunk is missing or corrupt.
And fsck, gc and stats on S3 with progress."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from blob_helpers import SMALL_CHUNK, add_owner, add_reference, drop_reference, make_blobs, object_of, pseudo_random
from blob_helpers import sha256
from s3_helpers import bucket_keys, cli, new_prefix

CS = SMALL_CHUNK


@pytest.fixture
def s3_settings(seaweed, monkeypatch):
    prefix = new_prefix()
    env = seaweed.environment(prefix)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, env[name])  # for the in-process stores; subprocesses inherit them
    return env, prefix


def on_s3(config, env):
    return dataclasses.replace(
        config,
        chunk_store="s3",
        s3_endpoint=env["IMAGEREPO_S3_ENDPOINT"],
        s3_bucket=env["IMAGEREPO_S3_BUCKET"],
        s3_prefix=env["IMAGEREPO_S3_PREFIX"],
        s3_region=env["IMAGEREPO_S3_REGION"],
    )


def run(config, env, store: str, *args):
    return cli(
        config.database_url,
        config.blob_dir,
        {**env, "IMAGEREPO_CHUNK_STORE": store, "IMAGEREPO_CHUNK_SIZE": str(CS)},
        *args,
    )


@pytest.fixture
def local_images(config):
    """A local store with a few images sharing chunks; {image id: bytes}."""
    blobs = make_blobs(config)
    owner = add_owner(config.database_url)
    shared = pseudo_random(3 * CS, seed=1)
    files = [shared + pseudo_random(2 * CS + 100, seed=2 + i) for i in range(4)] + [shared]
    images = {add_reference(blobs, owner, data): data for data in files}
    yield blobs, owner, images
    blobs.db.close()


def chunk_digests(files) -> set[str]:
    return {sha256(data[i : i + CS]) for data in files for i in range(0, len(data), CS)}


def test_local_to_s3_copies_and_verifies_every_chunk_and_says_how_to_switch(config, local_images, s3_settings, seaweed):
    blobs, _, images = local_images
    env, prefix = s3_settings
    code, report, stderr = run(config, env, "local", "migrate-chunks", "--to", "s3")
    assert code == 0, stderr
    wanted = chunk_digests(images.values())
    assert report["complete"] is True and report["chunks"] == len(wanted) == report["copied"] == report["verified"]
    assert set(bucket_keys(seaweed, prefix)) == wanted
    assert "copy: %d/%d (100%%)" % (len(wanted), len(wanted)) in stderr and "verify:" in stderr, "progress"
    assert "IMAGEREPO_CHUNK_STORE=s3" in stderr and f"IMAGEREPO_S3_PREFIX={prefix}" in stderr
    # The switch: the same database, configured for S3, reads everything back (cold cache).
    on_bucket = make_blobs(on_s3(config, env))
    try:
        for image, data in images.items():
            assert on_bucket.read_all(object_of(on_bucket, image)) == data
    finally:
        on_bucket.db.close()
    code, fsck, stderr = run(config, env, "s3", "fsck", "--verify-content")
    assert code == 0 and fsck["problems"] == 0 and fsck["chunks_checked"] == len(wanted), stderr
    # Run again: nothing to copy, everything verified again.
    code, again, _ = run(config, env, "local", "migrate-chunks", "--to", "s3")
    assert code == 0 and again["copied"] == 0 and again["already_there"] == again["verified"] == len(wanted)


def test_an_interrupted_copy_resumes_and_replaces_a_cut_short_object(config, local_images, s3_settings, seaweed):
    blobs, _, images = local_images
    env, prefix = s3_settings
    wanted = sorted(chunk_digests(images.values()))
    half = wanted[: len(wanted) // 2]
    raw = seaweed.client()
    for digest in half:  # what a first run got through before it was stopped
        raw.put_object(Bucket=seaweed.bucket, Key=f"{prefix}/{digest}", Body=blobs.store.get(digest))
    cut = wanted[-1]  # and one object cut short (a foreign writer, a broken tool)
    raw.put_object(Bucket=seaweed.bucket, Key=f"{prefix}/{cut}", Body=blobs.store.get(cut)[:10])
    code, report, stderr = run(config, env, "local", "migrate-chunks", "--to", "s3", "--jobs", "3")
    assert code == 0, stderr
    assert report["already_there"] == len(half)
    assert report["copied"] == len(wanted) - len(half) and report["replaced"] == 1
    assert report["verified"] == len(wanted)
    assert bucket_keys(seaweed, prefix)[cut] == len(blobs.store.get(cut))


def test_a_corrupt_or_missing_source_chunk_makes_the_copy_incomplete(config, local_images, s3_settings):
    blobs, _, images = local_images
    env, _ = s3_settings
    data = next(iter(images.values()))
    corrupt, missing = sha256(data[3 * CS : 4 * CS]), sha256(data[4 * CS : 5 * CS])
    path = blobs.store.path_for(corrupt)
    path.write_bytes(b"X" + path.read_bytes()[1:])
    blobs.store.delete(missing)
    code, report, stderr = run(config, env, "local", "migrate-chunks", "--to", "s3")
    assert code == 1
    assert report["complete"] is False and report["corrupt"] == [corrupt] and report["missing"] == [missing]
    assert "incomplete" in stderr and "IMAGEREPO_CHUNK_STORE=s3" not in stderr, "no switch is suggested"


def test_a_live_store_copy_picks_up_uploads_made_during_it_and_back_to_local(
    config, local_images, s3_settings, tmp_path
):
    blobs, owner, images = local_images
    env, _ = s3_settings
    stop = threading.Event()
    added: dict[int, bytes] = {}

    def keep_uploading():
        # At a service's pace, not as fast as a loop can: on a quiet machine an unthrottled
        # in-process loop outran the copy for all its rounds (and the test's timeout).
        seed = 100
        while not stop.is_set() and len(added) < 40:
            data = pseudo_random(3 * CS, seed=seed)
            added[add_reference(blobs, owner, data)] = data
            seed += 1
            stop.wait(0.05)

    uploader = threading.Thread(target=keep_uploading)
    uploader.start()
    try:
        code, report, stderr = run(config, env, "local", "migrate-chunks", "--to", "s3", "--jobs", "2")
    finally:
        stop.set()
        uploader.join(30)
    assert code in (0, 1) and added, ("uploads ran during the copy", stderr)
    # Nodes stopped (no more uploads): the second run copies what arrived during the first.
    code, report, stderr = run(config, env, "local", "migrate-chunks", "--to", "s3")
    assert code == 0, stderr
    everything = {**images, **added}
    assert report["verified"] == len(chunk_digests(everything.values()))
    # Delete one image and collect on the local side: the copy is no longer needed for it.
    drop_reference(blobs, next(iter(added)))
    # And back, from S3 to a new local directory.
    back = tmp_path / "back"
    code, report, stderr = run(config, env, "s3", "migrate-chunks", "--to", "local", "--local-dir", str(back))
    assert code == 0, stderr
    assert f"IMAGEREPO_BLOB_DIR={back}" in stderr
    restored = make_blobs(dataclasses.replace(config, blob_dir=back))
    try:
        for image, data in everything.items():
            if image != next(iter(added)):
                assert restored.read_all(object_of(restored, image)) == data
    finally:
        restored.db.close()


def test_migrating_to_the_configured_store_or_without_a_bucket_is_refused(config, s3_settings):
    env, _ = s3_settings
    code, _, stderr = run(config, env, "s3", "migrate-chunks", "--to", "s3")
    assert code == 2 and "already s3" in stderr
    code, _, stderr = run(config, {**env, "IMAGEREPO_S3_BUCKET": ""}, "local", "migrate-chunks", "--to", "s3")
    assert code != 0 and "IMAGEREPO_S3_BUCKET" in stderr


# -- fsck, gc and stats on S3 ---------------------------------------------------------------------
def test_fsck_gc_and_stats_work_on_s3_with_progress(config, s3_settings, seaweed):
    env, prefix = s3_settings
    s3_config = on_s3(config, env)
    blobs = make_blobs(s3_config)
    try:
        owner = add_owner(config.database_url)
        data = pseudo_random(5 * CS, seed=7)
        keep = add_reference(blobs, owner, data)
        gone = add_reference(blobs, owner, pseudo_random(2 * CS, seed=8))
        code, stats, stderr = run(config, env, "s3", "stats")
        assert code == 0 and stats["images"] == 2 and stats["chunks"] == 7, stderr
        damaged, lost = sha256(data[:CS]), sha256(data[CS : 2 * CS])
        seaweed.client().put_object(Bucket=seaweed.bucket, Key=f"{prefix}/{damaged}", Body=b"Y" * CS)
        seaweed.client().delete_object(Bucket=seaweed.bucket, Key=f"{prefix}/{lost}")
        code, report, stderr = run(config, env, "s3", "fsck", "--verify-content")
        assert code == 1
        assert report["corrupt_chunks"] == [damaged] and report["missing_chunks"] == [lost]
        assert "chunks: 7/7 (100%)" in stderr
        drop_reference(blobs, gone)
        code, report, stderr = run(config, env, "s3", "gc", "--grace", "0")
        assert code == 0 and report["chunks_freed"] == 2, stderr
        assert "chunks: 2" in stderr
        assert len(bucket_keys(seaweed, prefix)) == 4  # 5 chunks of `keep`, one lost
        assert b"".join(blobs.open(object_of(blobs, keep), 2 * CS)) == data[2 * CS :], "the rest still reads"
    finally:
        blobs.db.close()


def test_the_cli_on_an_unreachable_store_says_so(config, s3_settings):
    env, _ = s3_settings
    code, _, stderr = run(
        config, {**env, "IMAGEREPO_S3_ENDPOINT": "http://127.0.0.1:9", "IMAGEREPO_S3_MAX_ATTEMPTS": "1"}, "s3", "gc"
    )
    assert code == 2 and "error:" in stderr and "Traceback" not in stderr


def test_a_copy_killed_midway_resumes_where_it_stopped(config, s3_settings, seaweed):
    """The real interruption: migrate-chunks SIGKILLed while it copies, then run again."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from s3_helpers import PROJECT_ROOT

    blobs = make_blobs(config)
    try:
        owner = add_owner(config.database_url)
        files = [pseudo_random(40 * CS, seed=300 + i) for i in range(15)]  # 600 chunks
        for data in files:
            add_reference(blobs, owner, data)
    finally:
        blobs.db.close()
    env, prefix = s3_settings
    process = subprocess.Popen(
        [sys.executable, "-m", "imagerepo", "migrate-chunks", "--to", "s3", "--jobs", "1"],
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            **env,
            "DATABASE_URL": config.database_url,
            "IMAGEREPO_BLOB_DIR": str(config.blob_dir),
            "IMAGEREPO_ENV": "test",
            "IMAGEREPO_JWT_SECRET": "cli-test-secret-" + "z" * 40,
            "IMAGEREPO_CHUNK_STORE": "local",
            "IMAGEREPO_CHUNK_SIZE": str(CS),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while len(bucket_keys(seaweed, prefix)) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    copied_before = len(bucket_keys(seaweed, prefix))
    assert 100 <= copied_before < 600, "killed part-way through the copy"
    code, report, stderr = run(config, env, "local", "migrate-chunks", "--to", "s3")
    assert code == 0, stderr
    assert report["already_there"] == copied_before and report["copied"] == 600 - copied_before
    assert report["verified"] == 600 and report["complete"] is True
    assert set(bucket_keys(seaweed, prefix)) == chunk_digests(files)
