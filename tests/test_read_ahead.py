"""Cold reads with read-ahead (IMAGEREPO_READ_AHEAD, on by default): the next chunk is read and
verified on another thread while this one is sent. Same bytes, same ranges, and a bad chunk still
fails at its own position, with every byte before it sent and none of it."""

from __future__ import annotations

import threading

import pytest

from blob_helpers import SMALL_CHUNK, add_owner, add_reference, flip_byte, make_blobs, pseudo_random, sha256
from imagerepo.blobstore import ChunkCorrupt

CS = SMALL_CHUNK


@pytest.fixture(params=[True, False], ids=["read-ahead", "in-line"])
def cold_blobs(request, config):
    blobs = make_blobs(config, cache_bytes=0, read_ahead=request.param)
    assert blobs.reader.read_ahead is request.param
    yield blobs
    blobs.db.close()


@pytest.mark.parametrize(("start", "end"), [(0, None), (1, 5 * CS - 2), (CS - 1, CS), (2 * CS, 3 * CS - 1)])
def test_every_range_reads_back_exactly(cold_blobs, config, start, end):
    data = pseudo_random(6 * CS + 123, seed=60)
    add_reference(cold_blobs, add_owner(config.database_url), data)
    got = b"".join(cold_blobs.open(sha256(data), start, end))
    assert got == data[start : None if end is None else end + 1]


def test_a_bad_chunk_fails_at_its_position_after_the_good_ones(cold_blobs, config):
    data = pseudo_random(5 * CS, seed=61)
    add_reference(cold_blobs, add_owner(config.database_url), data)
    bad = sha256(data[3 * CS : 4 * CS])
    flip_byte(cold_blobs.store.path_for(bad))
    stream = cold_blobs.open(sha256(data))
    assert [next(stream) for _ in range(3)] == [data[i * CS : (i + 1) * CS] for i in range(3)]
    with pytest.raises(ChunkCorrupt, match=bad):
        next(stream)
    assert cold_blobs.counters["chunks_corrupt"] == 1


def test_the_next_chunk_is_read_on_another_thread_while_this_one_is_consumed(config):
    blobs = make_blobs(config, cache_bytes=0)  # the default: read-ahead on
    data = pseudo_random(4 * CS, seed=62)
    add_reference(blobs, add_owner(config.database_url), data)
    readers: list[str] = []
    get = blobs.store.get

    def recording_get(digest):  # the real read; only notes which thread does it
        readers.append(threading.current_thread().name)
        return get(digest)

    blobs.store.get = recording_get  # type: ignore[method-assign]
    try:
        assert b"".join(blobs.open(sha256(data))) == data
    finally:
        blobs.db.close()
    assert readers[0] == threading.current_thread().name, "the first chunk is read before the response starts"
    assert all(name.startswith("imagerepo-read") for name in readers[1:]) and len(readers) == 4
