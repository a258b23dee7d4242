"""`fsck --repair` mends what an upload of the right bytes would: a chunk file with the wrong
size or bytes is moved aside (never deleted), reads as missing afterwards instead of as wrong
bytes, and the next upload holding it writes it again. fsck runs as an operator runs it, a
separate process on the same database and chunk store."""

from __future__ import annotations

import pytest

from blob_helpers import SMALL_CHUNK, add_owner, add_reference, chunk_files, flip_byte, pseudo_random, sha256
from imagerepo.blobstore import ChunkLost
from test_cli_blobstore import cli

CS = SMALL_CHUNK


@pytest.mark.parametrize("damage", ["flipped bit", "zero-length", "truncated"])
def test_repair_moves_a_damaged_chunk_aside_and_an_upload_writes_it_again(config, blobs, damage):
    owner = add_owner(config.database_url)
    data = pseudo_random(4 * CS, seed=11)
    add_reference(blobs, owner, data)
    bad = sha256(data[CS : 2 * CS])
    path = blobs.store.path_for(bad)
    if damage == "flipped bit":
        flip_byte(path)
    else:
        path.write_bytes(b"" if damage == "zero-length" else data[CS : 2 * CS - 1])
    damaged_bytes = path.read_bytes()

    code, report, stderr = cli(config, "fsck", "--verify-content", "--repair")
    assert code == 1, "the bytes are still lost: not clean"
    assert report["quarantined"] == [bad]
    assert (report["corrupt_chunks"] if damage == "flipped bit" else report["wrong_size_chunks"]) == [bad]
    assert "quarantine: 1/1" in stderr and "moved 1 damaged chunk file" in stderr
    assert not path.exists()
    kept = list((config.blob_dir / "quarantine").iterdir())
    assert [p.read_bytes() for p in kept] == [damaged_bytes], "moved aside for inspection, not deleted"
    assert bad not in chunk_files(blobs), "the sweep and listings do not see the quarantine"
    with pytest.raises(ChunkLost):  # a clear "missing", no longer wrong bytes
        blobs.read_all(sha256(data))

    code, report, _ = cli(config, "fsck")
    assert code == 1 and report["missing_chunks"] == [bad]
    add_reference(blobs, owner, data)  # the same image uploaded again
    assert blobs.read_all(sha256(data)) == data
    code, report, stderr = cli(config, "fsck", "--verify-content")
    assert code == 0 and report["problems"] == 0, stderr


def test_repair_keeps_right_files_and_moves_nothing_on_a_clean_store(config, blobs):
    owner = add_owner(config.database_url)
    add_reference(blobs, owner, pseudo_random(3 * CS, seed=12))
    files = chunk_files(blobs)
    code, report, stderr = cli(config, "fsck", "--verify-content", "--repair")
    assert code == 0, stderr
    assert report["quarantined"] == [] and chunk_files(blobs) == files
    assert not (config.blob_dir / "quarantine").exists()


def test_without_verify_content_repair_moves_only_wrong_sizes(config, blobs):
    """A same-size corruption is only found by reading; --repair acts on what the check found."""
    owner = add_owner(config.database_url)
    data = pseudo_random(3 * CS, seed=13)
    add_reference(blobs, owner, data)
    flipped, cut = sha256(data[:CS]), sha256(data[CS : 2 * CS])
    flip_byte(blobs.store.path_for(flipped))
    blobs.store.path_for(cut).write_bytes(b"x")
    code, report, _ = cli(config, "fsck", "--repair")
    assert code == 1 and report["quarantined"] == [cut]
    assert blobs.store.path_for(flipped).exists()
