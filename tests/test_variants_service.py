"""The variant store (imagerepo/variants/service.py) on real PostgreSQL and real chunk files:
made once and found again, deduplicated, counted as references, freed with its source by the
collector, made once by concurrent callers, bounded by the per-source cap."""

from __future__ import annotations

import dataclasses
import io
import threading

import pytest
import variant_samples as samples
from blob_helpers import add_owner, make_blobs, add_reference, chunk_files, drop_reference, object_of, table_counts

from imagerepo.context import Services
from imagerepo.variants import service
from imagerepo.variants.errors import VariantLimitReached, VariantSourceGone
from imagerepo.variants.transform import normalise


@pytest.fixture
def svc(config, blobs):
    return Services(config=dataclasses.replace(config, variant_max_per_image=3), db=blobs.db, blobs=blobs)


@pytest.fixture
def photo(svc, config):
    owner = add_owner(config.database_url)
    image_id = add_reference(svc.blobs, owner, samples.photo_jpeg(640, 480))
    return image_id, object_of(svc.blobs, image_id)


def png(image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", **options)
    return out.getvalue()


def variant_rows(svc) -> int:
    with svc.db.read() as conn:
        return conn.execute("SELECT count(*) AS n FROM variants").fetchone()["n"]


def test_made_once_then_found(svc, photo):
    _, source = photo
    transform = normalise(200, 0, "inside", "webp", 80)
    made = service.variant_for(source, "image/jpeg", transform, svc=svc)
    assert (made.width, made.height, made.content_type) == (200, 150, "image/webp")
    data = b"".join(svc.blobs.open(made.digest))
    assert data[8:12] == b"WEBP" and len(data) == made.size
    objects_before = table_counts(svc.blobs)["objects"]
    again = service.variant_for(source, "image/jpeg", transform, svc=svc)
    assert again == made
    assert service.get_or_create_variant(source, "image/jpeg", transform, svc=svc) == made.digest
    assert table_counts(svc.blobs)["objects"] == objects_before
    assert [v.digest for v in service.existing_variants(source, svc=svc)] == [made.digest]
    report = svc.blobs.check(verify_content=True)
    assert report.clean, report


def test_variant_lives_with_its_source_and_is_freed_with_it(svc, photo):
    image_id, source = photo
    made = service.variant_for(source, "image/jpeg", normalise(0, 200, "inside", "jpeg", 80), svc=svc)
    svc.blobs.collect_garbage(grace_seconds=0)
    assert b"".join(svc.blobs.open(made.digest))[:2] == b"\xff\xd8"
    assert variant_rows(svc) == 1
    drop_reference(svc.blobs, image_id)
    svc.blobs.collect_garbage(grace_seconds=0)
    assert variant_rows(svc) == 0
    assert table_counts(svc.blobs) == {"objects": 0, "chunks": 0, "object_chunks": 0, "images": 0}
    assert chunk_files(svc.blobs) == set()
    assert svc.blobs.check(verify_content=True).clean


def test_two_sources_sharing_a_derived_object(svc, config):
    """Two different sources whose variants have identical bytes share one derived object,
    counted twice; it outlives the first source and goes with the second."""
    owner = add_owner(config.database_url)
    base = samples.photo(300, 200)
    first = add_reference(svc.blobs, owner, png(base))
    second = add_reference(svc.blobs, owner, png(base, compress_level=1))
    tiny = normalise(32, 0, "inside", "png", 0)
    a = service.variant_for(object_of(svc.blobs, first), "image/png", tiny, svc=svc)
    b = service.variant_for(object_of(svc.blobs, second), "image/png", tiny, svc=svc)
    assert a.digest == b.digest
    assert svc.blobs.check().clean
    drop_reference(svc.blobs, first)
    svc.blobs.collect_garbage(grace_seconds=0)
    assert b"".join(svc.blobs.open(b.digest))[:4] == b"\x89PNG"
    assert svc.blobs.check(verify_content=True).clean
    drop_reference(svc.blobs, second)
    svc.blobs.collect_garbage(grace_seconds=0)
    assert table_counts(svc.blobs)["objects"] == 0 and chunk_files(svc.blobs) == set()


@pytest.mark.parametrize("pool_size", [3, 8])
def test_concurrent_callers_make_one(svc, photo, pool_size, config):
    """Six threads on one pool: one makes the variant, five wait on the lock and then find it.
    With a pool smaller than the threads too: the maker and the waiters hold one connection
    each, so they cannot starve each other."""
    _, source = photo
    small = make_blobs(config, db_pool_max=pool_size)
    svc = dataclasses.replace(svc, db=small.db, blobs=small)
    transform = normalise(500, 0, "inside", "jpeg", 70)
    barrier = threading.Barrier(6)
    results, errors = [], []

    def ask():
        try:
            barrier.wait()
            results.append(service.variant_for(source, "image/jpeg", transform, svc=svc).digest)
        except Exception as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(set(results)) == 1 and len(results) == 6
    with svc.db.read() as conn:
        assert (
            conn.execute("SELECT refcount FROM objects WHERE digest = %s", (bytes.fromhex(results[0]),)).fetchone()[
                "refcount"
            ]
            == 1
        )
    assert svc.blobs.counters["objects_created"] == 1, "rendered and stored once"
    assert table_counts(svc.blobs)["objects"] == 2  # the source and the variant
    svc.db.close()


def test_cap_per_source_but_not_for_the_worker(svc, photo):
    _, source = photo
    for width in (32, 64, 96):
        service.variant_for(source, "image/jpeg", normalise(width, 0, "inside", "jpeg", 80), svc=svc)
    with pytest.raises(VariantLimitReached):
        service.variant_for(source, "image/jpeg", normalise(128, 0, "inside", "jpeg", 80), svc=svc)
    # existing ones are still served, and background jobs are not capped
    service.variant_for(source, "image/jpeg", normalise(32, 0, "inside", "jpeg", 80), svc=svc)
    service.variant_for(source, "image/jpeg", normalise(0, 200, "inside", "jpeg", 80), made_by="worker", svc=svc)
    assert variant_rows(svc) == 4


def test_source_gone(svc, photo):
    image_id, source = photo
    drop_reference(svc.blobs, image_id)
    with pytest.raises(VariantSourceGone):
        service.variant_for(source, "image/jpeg", normalise(64, 0, "inside", "jpeg", 80), svc=svc)
    assert variant_rows(svc) == 0


def test_fsck_counts_variant_references(svc, photo):
    _, source = photo
    made = service.variant_for(source, "image/jpeg", normalise(64, 0, "inside", "png", 0), svc=svc)
    assert svc.blobs.check().clean
    with svc.db.transaction() as conn:
        conn.execute("UPDATE objects SET refcount = 0 WHERE digest = %s", (bytes.fromhex(made.digest),))
    report = svc.blobs.check()
    assert report.object_refcount_mismatches == [(made.digest, 0, 1)]
    # the collector does not free an object a variant still names, whatever its count says
    svc.blobs.collect_garbage(grace_seconds=0)
    assert b"".join(svc.blobs.open(made.digest))[:4] == b"\x89PNG"
    assert svc.blobs.check(repair=True).repaired >= 1 and svc.blobs.check().clean
