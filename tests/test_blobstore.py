"""The blob store on a real database and real files: sharing, ranges, collection, the cache."""

from __future__ import annotations

import gc as pygc
import io
import threading
import time

import pytest

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
    sha256,
    staging_files,
    table_counts,
)
from imagerepo.blobstore import ChunkCorrupt, ChunkLost, EmptyUpload, UploadTooLarge

CS = SMALL_CHUNK


@pytest.fixture
def owner(config):
    return add_owner(config.database_url)


# -- sharing ---------------------------------------------------------------------------------
def test_same_bytes_twice_adds_no_object_no_chunk_and_no_file(blobs, owner):
    data = pseudo_random(5 * CS + 123, seed=1)
    first = blobs.put(io.BytesIO(data))
    assert first.created and first.digest == sha256(data) and first.size == len(data)
    counts, files = table_counts(blobs), chunk_files(blobs)
    assert counts["chunks"] == 6 and len(files) == 6
    second = blobs.put(io.BytesIO(data))
    assert not second.created and second.digest == first.digest
    assert table_counts(blobs) == counts
    assert chunk_files(blobs) == files
    assert staging_files(blobs) == [], "a deduplicated upload leaves nothing staged"
    with blobs.db.transaction() as conn:
        assert conn.execute("SELECT refcount FROM objects").fetchone()["refcount"] == 2
        assert {r["refcount"] for r in conn.execute("SELECT refcount FROM chunks")} == {1}
    assert blobs.counters["uploads_deduplicated"] == 1


def test_files_sharing_a_prefix_share_those_chunks(blobs):
    prefix = pseudo_random(3 * CS, seed=2)
    a = prefix + pseudo_random(2 * CS + 10, seed=3)
    b = prefix + pseudo_random(CS + 500, seed=4)
    blobs.put(io.BytesIO(a))
    blobs.put(io.BytesIO(b))
    prefix_chunks = {sha256(prefix[i : i + CS]) for i in range(0, 3 * CS, CS)}
    with blobs.db.transaction() as conn:
        refcounts = {
            bytes(r["digest"]).hex(): r["refcount"] for r in conn.execute("SELECT digest, refcount FROM chunks")
        }
    assert len(refcounts) == 3 + 3 + 2
    assert all(refcounts[d] == 2 for d in prefix_chunks)
    assert sorted(v for d, v in refcounts.items() if d not in prefix_chunks) == [1] * 5
    assert len(chunk_files(blobs)) == 8
    assert blobs.read_all(sha256(a)) == a and blobs.read_all(sha256(b)) == b


def test_a_chunk_repeated_inside_one_file_is_stored_once_and_counted_per_use(blobs, owner):
    block = pseudo_random(CS, seed=5)
    data = block * 7 + b"tail"
    add_reference(blobs, owner, data)
    with blobs.db.transaction() as conn:
        assert (
            conn.execute("SELECT refcount FROM chunks WHERE digest = %s", (bytes.fromhex(sha256(block)),)).fetchone()[
                "refcount"
            ]
            == 7
        )
    assert len(chunk_files(blobs)) == 2
    assert blobs.read_all(sha256(data)) == data
    assert blobs.check(verify_content=True).clean


def test_chunk_size_is_recorded_per_object(config, blobs):
    data = pseudo_random(20000, seed=6)
    blobs.put(io.BytesIO(data))
    other = make_blobs(config, chunk_size=8192)
    try:
        stored = other.put(io.BytesIO(data))
        assert not stored.created and stored.chunk_size == CS, "identical bytes reuse the old object"
        newer = other.put(io.BytesIO(data + b"!"))
        assert newer.chunk_size == 8192
        assert other.read_all(sha256(data)) == data
        assert blobs.read_all(sha256(data + b"!")) == data + b"!"
        report = other.check(verify_content=True)
        assert (
            report.chunks_checked,
            report.corrupt_chunks,
            report.chunk_refcount_mismatches,
            report.broken_manifests,
        ) == (len(chunk_files(blobs)), [], [], [])
    finally:
        other.db.close()


def test_empty_and_too_large_uploads_stage_nothing(config, blobs):
    with pytest.raises(EmptyUpload):
        blobs.put(io.BytesIO(b""))
    small = make_blobs(config, max_upload_bytes=3 * CS)
    try:
        with pytest.raises(UploadTooLarge):
            small.put(io.BytesIO(pseudo_random(4 * CS, seed=7)))
    finally:
        small.db.close()
    assert staging_files(blobs) == []
    assert table_counts(blobs)["chunks"] == 0 and chunk_files(blobs) == set()


def test_staged_reader_sees_the_whole_upload(blobs):
    data = pseudo_random(3 * CS + 77, seed=8)
    stager = blobs.stager()
    for piece in range(0, len(data), 1000):
        stager.write(data[piece : piece + 1000])
    staged = stager.finish()
    try:
        assert staged.head == data[: 64 * 1024]
        reader = staged.reader()
        assert reader.read() == data
        reader.seek(CS - 3)
        assert reader.read(10) == data[CS - 3 : CS + 7]
    finally:
        staged.discard()
    assert staging_files(blobs) == []


# -- reading ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "start,end",
    [
        (0, None),
        (0, 0),
        (0, CS - 1),
        (CS - 1, CS),
        (CS, 2 * CS - 1),
        (CS - 1, 2 * CS),
        (1, 3 * CS + 1),
        (4 * CS - 1, 4 * CS - 1),
        (4 * CS, None),
        (4 * CS + 50, 4 * CS + 99),
        (10, 10**9),
    ],
)
def test_range_reads_at_chunk_boundaries_read_only_the_chunks_they_touch(config, start, end):
    data = pseudo_random(4 * CS + 100, seed=9)
    writer = make_blobs(config)
    writer.put(io.BytesIO(data))
    reader = make_blobs(config)  # a cold cache, to count the chunks read
    try:
        got = b"".join(reader.open(sha256(data), start, end))
        last = len(data) - 1 if end is None else min(end, len(data) - 1)
        assert got == data[start : last + 1]
        assert reader.cache.misses == last // CS - start // CS + 1
    finally:
        writer.db.close()
        reader.db.close()


def test_open_of_an_unknown_object_raises_key_error(blobs):
    with pytest.raises(KeyError):
        blobs.open(sha256(b"never stored"))


# -- collecting ------------------------------------------------------------------------------
def test_delete_then_gc_reclaims_every_row_and_file(blobs, owner):
    shared = pseudo_random(2 * CS, seed=10)
    images = [add_reference(blobs, owner, shared + pseudo_random(3 * CS + 1 + i, seed=11 + i)) for i in range(3)]
    images.append(add_reference(blobs, owner, shared))
    images.append(add_reference(blobs, owner, shared))  # a second image of the same object
    assert blobs.check(verify_content=True).clean
    for image in images[:-1]:
        drop_reference(blobs, image)
    report = blobs.collect_garbage(grace_seconds=0)
    assert report.objects_freed == 3 and report.chunks_freed == 3 * 4
    assert chunk_files(blobs) == needed_chunks(blobs)
    drop_reference(blobs, images[-1])
    report = blobs.collect_garbage(grace_seconds=0)
    assert report.objects_freed == 1 and report.chunks_freed == 2 and report.bytes_freed == 2 * CS
    assert table_counts(blobs) == {"objects": 0, "chunks": 0, "object_chunks": 0, "images": 0}
    assert chunk_files(blobs) == set() and staging_files(blobs) == []
    assert blobs.check(verify_content=True).clean


def test_gc_respects_the_grace_period(blobs, owner):
    data = pseudo_random(3 * CS, seed=20)
    image = add_reference(blobs, owner, data)
    drop_reference(blobs, image)
    # A download that read the manifest just before the delete can still finish.
    stream = blobs.open(sha256(data))
    report = blobs.collect_garbage(grace_seconds=3600)
    assert (report.objects_freed, report.chunks_freed, report.orphan_files_removed) == (0, 0, 0)
    assert b"".join(stream) == data
    assert len(chunk_files(blobs)) == 3
    assert blobs.collect_garbage().chunks_freed == 0, "the configured grace (600 s) applies by default"
    report = blobs.collect_garbage(grace_seconds=0)
    assert report.objects_freed == 1 and report.chunks_freed == 3
    assert chunk_files(blobs) == set()


def test_reupload_during_the_grace_period_revives_the_object_without_chunk_work(blobs, owner):
    data = pseudo_random(3 * CS, seed=21)
    drop_reference(blobs, add_reference(blobs, owner, data))
    written = blobs.counters["chunks_written"]
    image = add_reference(blobs, owner, data)
    assert blobs.counters["chunks_written"] == written
    assert blobs.collect_garbage(grace_seconds=0).chunks_freed == 0
    assert blobs.read_all(object_of(blobs, image)) == data
    assert blobs.check(verify_content=True).clean


def test_orphan_files_are_swept_after_the_grace_period(blobs, owner):
    kept = pseudo_random(2 * CS, seed=22)
    add_reference(blobs, owner, kept)
    orphan = pseudo_random(CS, seed=23)
    blobs.store.put(sha256(orphan), orphan)  # as a crash between publishing and commit leaves it
    report = blobs.collect_garbage(grace_seconds=3600)
    assert report.orphan_files_removed == 0 and sha256(orphan) in chunk_files(blobs)
    assert blobs.check().orphan_files == [sha256(orphan)]
    report = blobs.collect_garbage(grace_seconds=0)
    assert report.orphan_files_removed == 1
    assert chunk_files(blobs) == needed_chunks(blobs)
    assert blobs.check(verify_content=True).clean and blobs.check().orphan_files == []


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_the_orphan_sweep_never_takes_a_file_whose_upload_holds_the_row(blobs, owner, outcome):
    """An upload has published its chunk files and holds their (uncommitted) rows: to the
    sweep they look like orphans. It must wait for the upload, and spare them if it commits."""
    data = pseudo_random(3 * CS, seed=24)
    published, finish = threading.Event(), threading.Event()
    errors = []

    def upload():
        staged = blobs.stager().stage_stream(io.BytesIO(data)).finish()
        try:
            with blobs.db.transaction() as conn:
                blobs.commit(conn, staged)
                conn.execute(
                    "INSERT INTO images (owner_id, object_digest, filename, content_type) VALUES (%s, %s, 'a', 'b')",
                    (owner, bytes.fromhex(staged.digest)),
                )
                published.set()
                finish.wait(30)
                if outcome == "rollback":
                    raise RuntimeError("the upload fails after publishing")
        except RuntimeError as err:
            errors.append(err)
        finally:
            staged.discard()

    uploader = threading.Thread(target=upload)
    uploader.start()
    assert published.wait(30)
    assert len(chunk_files(blobs)) == 3
    reports = []
    collector = threading.Thread(target=lambda: reports.append(blobs.collect_garbage(grace_seconds=0)))
    collector.start()
    collector.join(1.0)
    assert collector.is_alive(), "the sweep must wait for the upload's row locks"
    assert len(chunk_files(blobs)) == 3
    finish.set()
    uploader.join(30)
    collector.join(30)
    if outcome == "commit":
        assert reports[0].orphan_files_removed == 0
        assert len(chunk_files(blobs)) == 3 and blobs.read_all(sha256(data)) == data
    else:
        assert len(errors) == 1
        assert reports[0].orphan_files_removed == 3 and chunk_files(blobs) == set()
    assert blobs.check(verify_content=True).clean


def test_staged_files_survive_gc_while_the_upload_runs_and_go_once_it_is_abandoned(blobs, owner):
    data = pseudo_random(5 * CS, seed=25)
    live = blobs.stager()
    live.write(data[: 3 * CS])
    abandoned = blobs.stager()
    abandoned.write(pseudo_random(3 * CS, seed=26))
    assert len(staging_files(blobs)) == 6
    assert blobs.collect_garbage(grace_seconds=0).staging_files_removed == 0
    # A request handler that died without cleaning up: its stager is dropped, its lock released.
    del abandoned
    pygc.collect()
    assert blobs.collect_garbage(grace_seconds=0).staging_files_removed == 3
    live.write(data[3 * CS :])
    staged = live.finish()
    try:
        with blobs.db.transaction() as conn:
            blobs.commit(conn, staged)
    finally:
        staged.discard()
    assert blobs.read_all(sha256(data)) == data
    assert staging_files(blobs) == [] and list(blobs.store.staging_dir.iterdir()) == []


def test_stale_staging_files_wait_out_the_grace_period(blobs):
    abandoned = blobs.stager()
    abandoned.write(pseudo_random(2 * CS, seed=27))
    del abandoned
    pygc.collect()
    assert blobs.collect_garbage(grace_seconds=3600).staging_files_removed == 0
    assert blobs.collect_garbage(grace_seconds=0).staging_files_removed == 2


def test_a_count_drifted_to_zero_never_lets_gc_free_referenced_data(blobs, owner):
    data = pseudo_random(3 * CS, seed=28)
    image = add_reference(blobs, owner, data)
    with blobs.db.transaction() as conn:
        conn.execute("UPDATE chunks SET refcount = 0, released_at = now() - interval '1 day'")
        conn.execute("UPDATE objects SET refcount = 0, released_at = now() - interval '1 day'")
    report = blobs.collect_garbage(grace_seconds=0)
    assert (report.objects_freed, report.chunks_freed, report.orphan_files_removed) == (0, 0, 0)
    assert blobs.read_all(object_of(blobs, image)) == data
    found = blobs.check(verify_content=True)
    assert len(found.chunk_refcount_mismatches) == 3 and len(found.object_refcount_mismatches) == 1
    assert blobs.check(repair=True).repaired == 4
    assert blobs.check(verify_content=True).clean


# -- the cache -------------------------------------------------------------------------------
def test_the_cache_serves_hot_chunks(blobs):
    data = pseudo_random(4 * CS, seed=30)
    blobs.put(io.BytesIO(data))
    assert blobs.read_all(sha256(data)) == data
    assert (blobs.cache.hits, blobs.cache.misses) == (0, 4)
    assert blobs.read_all(sha256(data)) == data
    assert (blobs.cache.hits, blobs.cache.misses) == (4, 4)
    assert blobs.cache.bytes_used == 4 * CS


def test_the_cache_is_bounded_in_bytes(config):
    blobs = make_blobs(config, cache_bytes=3 * CS, cache_max_object_bytes=8 * CS)
    try:
        data = pseudo_random(8 * CS, seed=31)
        blobs.put(io.BytesIO(data))
        assert blobs.read_all(sha256(data)) == data
        assert blobs.cache.bytes_used <= 3 * CS and len(blobs.cache) == 3
    finally:
        blobs.db.close()


def test_an_object_over_the_size_gate_is_read_past_the_cache(config):
    """The blob store tells the cache each object's size: chunks of an object over the gate
    (1/8 of the cache by default) are served verified but never cached, and counted apart."""
    blobs = make_blobs(config, cache_bytes=16 * CS)  # gate: 2 chunks
    try:
        big, small = pseudo_random(5 * CS, seed=34), pseudo_random(2 * CS, seed=35)
        blobs.put(io.BytesIO(big))
        blobs.put(io.BytesIO(small))
        for _ in range(2):
            assert blobs.read_all(sha256(big)) == big
            assert b"".join(blobs.open(sha256(big), CS + 5, 3 * CS)) == big[CS + 5 : 3 * CS + 1]
        assert len(blobs.cache) == 0 and blobs.cache.bypassed == 2 * (5 + 3)
        assert blobs.read_all(sha256(small)) == small
        assert len(blobs.cache) == 2 and (blobs.cache.hits, blobs.cache.misses) == (0, 2)
    finally:
        blobs.db.close()


def test_the_cache_is_never_asked_whether_an_object_exists(blobs, owner):
    """Hot chunks of a deleted object are not served once the manifest is gone."""
    data = pseudo_random(2 * CS, seed=32)
    drop_reference(blobs, add_reference(blobs, owner, data))
    assert blobs.read_all(sha256(data)) == data  # within the grace period: still readable, now cached
    blobs.collect_garbage(grace_seconds=0)
    with pytest.raises(KeyError):
        blobs.open(sha256(data))


def test_a_chunk_file_lost_while_cached_is_reported_and_rewritten_by_the_next_upload(blobs, owner):
    """The cached bytes were verified and chunks are immutable, so serving them stays correct;
    but the cache does not make the chunk exist: fsck reports the missing file, and an upload
    of the same bytes writes it again rather than trusting the cache (Docker's #4569)."""
    data = pseudo_random(3 * CS, seed=33)
    image = add_reference(blobs, owner, data)
    assert blobs.read_all(sha256(data)) == data
    lost = sha256(data[CS : 2 * CS])
    blobs.store.delete(lost)
    assert blobs.read_all(sha256(data)) == data
    assert blobs.check().missing_chunks == [lost]
    overlapping = data[CS : 2 * CS] + b"different tail"
    add_reference(blobs, owner, overlapping)
    assert lost in chunk_files(blobs)
    assert blobs.check(verify_content=True).clean
    assert blobs.read_all(object_of(blobs, image)) == data


# -- corruption ------------------------------------------------------------------------------
def test_a_flipped_byte_is_never_read_back_nor_cached(blobs, owner):
    from blob_helpers import flip_byte

    data = pseudo_random(3 * CS, seed=40)
    add_reference(blobs, owner, data)
    bad = sha256(data[CS : 2 * CS])
    flip_byte(blobs.store.path_for(bad))
    stream = blobs.open(sha256(data))  # the first chunk is fine
    assert next(stream) == data[:CS]
    with pytest.raises(ChunkCorrupt, match=bad):
        next(stream)
    # The read that found it wrong moved the file aside (kept in quarantine/): it now reads as
    # missing, and the next upload of those bytes writes it again.
    with pytest.raises(ChunkLost):
        blobs.open(sha256(data), CS, CS + 10)  # a range starting in the bad chunk fails up front
    assert blobs.cache.get(bad) is None
    assert blobs.counters["chunks_corrupt"] == 1
    assert [p.name.split(".")[0] for p in (blobs.store.root / "quarantine").iterdir()] == [bad]
    report = blobs.check(verify_content=True)
    assert report.missing_chunks == [bad] and report.problems == 1
    add_reference(blobs, owner, data)
    assert blobs.read_all(sha256(data)) == data and blobs.check(verify_content=True).clean


def test_missing_and_truncated_chunk_files_are_reported(blobs, owner):
    data = pseudo_random(3 * CS, seed=41)
    add_reference(blobs, owner, data)
    missing, truncated = sha256(data[:CS]), sha256(data[2 * CS :])
    blobs.store.delete(missing)
    with open(blobs.store.path_for(truncated), "r+b") as handle:
        handle.truncate(CS - 1)
    report = blobs.check()
    assert report.missing_chunks == [missing] and report.wrong_size_chunks == [truncated]
    assert not report.clean
    with pytest.raises(ChunkCorrupt, match=missing):
        blobs.open(sha256(data))


def test_refcount_drift_is_reported_and_repair_fixes_it_deleting_nothing(blobs, owner):
    data = pseudo_random(3 * CS, seed=42)
    add_reference(blobs, owner, data)
    add_reference(blobs, owner, pseudo_random(CS, seed=43))
    drifted = sha256(data[:CS])
    with blobs.db.transaction() as conn:
        conn.execute("UPDATE chunks SET refcount = refcount + 5 WHERE digest = %s", (bytes.fromhex(drifted),))
        conn.execute("UPDATE objects SET refcount = 7 WHERE digest = %s", (bytes.fromhex(sha256(data)),))
    before_files, before_rows = chunk_files(blobs), table_counts(blobs)
    report = blobs.check()
    assert report.chunk_refcount_mismatches == [(drifted, 6, 1)]
    assert report.object_refcount_mismatches == [(sha256(data), 7, 1)]
    report = blobs.check(repair=True)
    assert report.repaired == 2
    assert chunk_files(blobs) == before_files and table_counts(blobs) == before_rows
    assert blobs.check(verify_content=True).clean
    assert blobs.read_all(sha256(data)) == data


def test_stats_counts_sharing(blobs, owner):
    data = pseudo_random(4 * CS, seed=44)
    add_reference(blobs, owner, data)
    add_reference(blobs, owner, data)
    add_reference(blobs, owner, data[: 2 * CS])
    stats = blobs.stats()
    assert stats == {
        "references": 3,
        "objects": 2,
        "chunks": 4,
        "logical_bytes": 10 * CS,
        "stored_bytes": 4 * CS,
        "dedup_ratio": 2.5,
    }


def test_the_background_collector_frees_released_storage(config, owner):
    blobs = make_blobs(config, gc_grace_seconds=0)
    try:
        drop_reference(blobs, add_reference(blobs, owner, pseudo_random(2 * CS, seed=45)))
        blobs.start_background_collector(interval_seconds=0.05)
        deadline = time.monotonic() + 10
        # The collector unlinks a chunk's file, then commits the deletion of its row.
        while (chunk_files(blobs) or table_counts(blobs)["chunks"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert chunk_files(blobs) == set() and table_counts(blobs)["chunks"] == 0
    finally:
        blobs.stop_background_collector()
        blobs.db.close()


# -- the manifest cache ------------------------------------------------------------------------
def test_a_hot_read_asks_the_database_nothing_about_the_manifest(blobs, owner):
    data = pseudo_random(2 * CS + 7, seed=90)
    add_reference(blobs, owner, data)
    assert blobs.read_all(sha256(data)) == data
    # With the object's rows gone the cached manifest (and cached chunks) still serve it:
    # proof that the second read did not query object_chunks.
    with blobs.db.transaction() as conn:
        conn.execute("DELETE FROM object_chunks WHERE object_digest = %s", (bytes.fromhex(sha256(data)),))
    assert blobs.read_all(sha256(data)) == data


def test_a_stale_cached_manifest_is_replaced_not_served(config, blobs, owner):
    """Content freed and stored again with another chunk size has other chunks: the cached
    manifest names chunk files that are gone, and the read must find the new manifest."""
    data = pseudo_random(3 * CS + 11, seed=91)
    holder = add_reference(blobs, owner, data)
    assert blobs.read_all(sha256(data)) == data  # the manifest is now cached
    drop_reference(blobs, holder)
    blobs.collect_garbage(grace_seconds=0)
    assert not chunk_files(blobs)
    blobs.chunk_size = 2 * CS
    add_reference(blobs, owner, data)
    assert blobs.read_all(sha256(data)) == data
    assert b"".join(blobs.open(sha256(data), CS + 5, 2 * CS + 5)) == data[CS + 5 : 2 * CS + 6]


def test_an_identical_upload_puts_back_a_lost_chunk_file(blobs, owner):
    data = pseudo_random(3 * CS + 5, seed=92)
    add_reference(blobs, owner, data)
    lost = sha256(data[CS : 2 * CS])
    blobs.store.delete(lost)
    assert blobs.check().missing_chunks == [lost]
    add_reference(blobs, owner, data)  # deduplicated: no new object, but the file comes back
    assert blobs.check(verify_content=True).clean
    assert blobs.counters["chunks_healed"] == 1
