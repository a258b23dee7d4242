"""`python -m imagerepo fsck|gc|stats` as an operator runs them: a subprocess on the same
database and chunk store, JSON on stdout, progress on stderr, non-zero exit on a problem."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from blob_helpers import (
    SMALL_CHUNK,
    add_owner,
    add_reference,
    chunk_files,
    drop_reference,
    flip_byte,
    pseudo_random,
    sha256,
    table_counts,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent

CS = SMALL_CHUNK


@pytest.fixture
def stored(blobs, config):
    """Two images of one file and one of a file sharing its first two chunks."""
    owner = add_owner(config.database_url)
    data = pseudo_random(4 * CS, seed=1)
    images = [
        add_reference(blobs, owner, data),
        add_reference(blobs, owner, data),
        add_reference(blobs, owner, data[: 2 * CS] + pseudo_random(CS, seed=2)),
    ]
    return {"data": data, "images": images}


def cli(config, *args):
    env = {
        **os.environ,
        "DATABASE_URL": config.database_url,
        "IMAGEREPO_BLOB_DIR": str(config.blob_dir),
        "IMAGEREPO_ENV": "test",
        "IMAGEREPO_JWT_SECRET": "cli-test-secret-" + "z" * 40,
        "IMAGEREPO_CHUNK_SIZE": str(CS),
    }
    result = subprocess.run(
        [sys.executable, "-m", "imagerepo", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    try:
        output = json.loads(result.stdout) if result.stdout.strip() else None
    except json.JSONDecodeError:
        pytest.fail(f"stdout is not JSON: {result.stdout!r} (stderr: {result.stderr})")
    return result.returncode, output, result.stderr


def test_fsck_of_a_clean_store(config, stored):
    code, report, stderr = cli(config, "fsck", "--verify-content")
    assert code == 0, stderr
    assert report["problems"] == 0 and report["chunks_checked"] == 5 and report["objects_checked"] == 2
    assert report["missing_chunks"] == [] and report["corrupt_chunks"] == []
    assert "chunks: 5/5 (100%)" in stderr, "progress is shown on stderr"
    assert "fsck: clean" in stderr


def test_fsck_verify_content_names_a_corrupt_chunk(config, stored, blobs):
    bad = sha256(stored["data"][2 * CS : 3 * CS])
    flip_byte(blobs.store.path_for(bad))
    code, report, stderr = cli(config, "fsck")
    assert code == 0, "without --verify-content a same-size corruption is not looked for"
    code, report, stderr = cli(config, "fsck", "--verify-content")
    assert code == 1
    assert report["corrupt_chunks"] == [bad] and report["problems"] == 1
    assert "1 problem" in stderr


def test_fsck_reports_a_missing_chunk_file(config, stored, blobs):
    lost = sha256(stored["data"][:CS])
    blobs.store.delete(lost)
    code, report, stderr = cli(config, "fsck")
    assert code == 1
    assert report["missing_chunks"] == [lost]
    code, report, _ = cli(config, "fsck", "--repair")
    assert code == 1, "--repair cannot bring back lost bytes, and says so"


def test_fsck_reports_refcount_drift_and_repair_fixes_it_deleting_nothing(config, stored, blobs):
    drifted = sha256(stored["data"][3 * CS :])
    with blobs.db.transaction() as conn:
        conn.execute("UPDATE chunks SET refcount = 0 WHERE digest = %s", (bytes.fromhex(drifted),))
        conn.execute(
            "UPDATE objects SET refcount = refcount + 3 WHERE digest = %s", (bytes.fromhex(sha256(stored["data"])),)
        )
    files, rows = chunk_files(blobs), table_counts(blobs)
    code, report, _ = cli(config, "fsck")
    assert code == 1
    assert report["chunk_refcount_mismatches"] == [[drifted, 0, 1]]
    assert report["object_refcount_mismatches"] == [[sha256(stored["data"]), 5, 2]]
    code, report, stderr = cli(config, "fsck", "--repair")
    assert code == 0, stderr
    assert report["repaired"] == 2 and "repaired 2" in stderr
    assert chunk_files(blobs) == files and table_counts(blobs) == rows
    code, report, _ = cli(config, "fsck", "--verify-content")
    assert code == 0 and report["problems"] == 0


def test_gc_frees_released_storage_and_reports_it(config, stored, blobs):
    for image in stored["images"][1:]:
        drop_reference(blobs, image)
    orphan = pseudo_random(CS, seed=3)
    blobs.store.put(sha256(orphan), orphan)
    code, report, stderr = cli(config, "gc")
    assert code == 0, stderr
    assert report == {
        "objects_freed": 0,
        "chunks_freed": 0,
        "bytes_freed": 0,
        "orphan_files_removed": 0,
        "staging_files_removed": 0,
    }, "the default grace applies"
    code, report, stderr = cli(config, "gc", "--grace", "0")
    assert code == 0, stderr
    assert report == {
        "objects_freed": 1,
        "chunks_freed": 1,
        "bytes_freed": CS,
        "orphan_files_removed": 1,
        "staging_files_removed": 0,
    }
    assert "objects: 1" in stderr and "chunks: 1" in stderr, "progress is shown on stderr"
    assert len(chunk_files(blobs)) == 4
    code, report, _ = cli(config, "fsck", "--verify-content")
    assert code == 0 and report["problems"] == 0


def test_stats(config, stored):
    code, stats, stderr = cli(config, "stats")
    assert code == 0, stderr
    assert stats == {
        "images": 3,
        "variants": 0,
        "variant_objects": 0,
        "variant_bytes": 0,
        "objects": 2,
        "chunks": 5,
        "logical_bytes": 11 * CS,
        "stored_bytes": 5 * CS,
        "dedup_ratio": 2.2,
    }


def test_a_bad_setting_exits_non_zero_without_a_traceback(config):
    env = {**os.environ, "DATABASE_URL": config.database_url, "IMAGEREPO_CHUNK_SIZE": "tiny"}
    result = subprocess.run(
        [sys.executable, "-m", "imagerepo", "stats"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "IMAGEREPO_CHUNK_SIZE" in result.stderr and "Traceback" not in result.stderr


def test_cli_errors_are_one_line(tmp_path):
    env = {**os.environ, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "IMAGEREPO_BLOB_DIR": str(tmp_path)}
    for command in (["stats"], ["fsck"], ["gc"]):
        done = subprocess.run(
            [sys.executable, "-m", "imagerepo", *command],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
        assert done.returncode == 2
        assert done.stderr.startswith("cannot reach the database:") and "Traceback" not in done.stderr
    negative = subprocess.run(
        [sys.executable, "-m", "imagerepo", "gc", "--grace", "-5"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert negative.returncode == 2 and "cannot be negative" in negative.stderr
