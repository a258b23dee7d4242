"""Cold reads with read-ahead (IMAGEREPO_READ_AHEAD, on by default for responses of 8 chunks or
more): the next chunk is read and verified on another thread while this one is sent. Same bytes,
same ranges, and a bad chunk still fails at its own position, with every byte before it sent and
none of it."""

from __future__ import annotations

import threading

import pytest

from blob_helpers import SMALL_CHUNK, add_owner, add_reference, flip_byte, make_blobs, pseudo_random, sha256
from imagerepo.blobstore import ChunkCorrupt
from imagerepo.blobstore.reader import READ_AHEAD_MIN_CHUNKS

CS = SMALL_CHUNK
CHUNKS = READ_AHEAD_MIN_CHUNKS + 2


@pytest.fixture(params=[True, False], ids=["read-ahead", "in-line"])
def cold_blobs(request, config):
    blobs = make_blobs(config, cache_bytes=0, read_ahead=request.param)
    assert blobs.reader.read_ahead is request.param
    yield blobs
    blobs.db.close()


@pytest.mark.parametrize(
    ("start", "end"), [(0, None), (1, CHUNKS * CS - 2), (CS - 1, CS), (2 * CS, 3 * CS - 1), (CS + 7, None)]
)
def test_every_range_reads_back_exactly(cold_blobs, config, start, end):
    data = pseudo_random(CHUNKS * CS + 123, seed=60)
    add_reference(cold_blobs, add_owner(config.database_url), data)
    got = b"".join(cold_blobs.open(sha256(data), start, end))
    assert got == data[start : None if end is None else end + 1]


def test_a_bad_chunk_fails_at_its_position_after_the_good_ones(cold_blobs, config):
    data = pseudo_random(CHUNKS * CS, seed=61)
    add_reference(cold_blobs, add_owner(config.database_url), data)
    bad_index = CHUNKS - 3
    bad = sha256(data[bad_index * CS : (bad_index + 1) * CS])
    flip_byte(cold_blobs.store.path_for(bad))
    stream = cold_blobs.open(sha256(data))
    assert [next(stream) for _ in range(bad_index)] == [data[i * CS : (i + 1) * CS] for i in range(bad_index)]
    with pytest.raises(ChunkCorrupt, match=bad):
        next(stream)
    assert cold_blobs.counters["chunks_corrupt"] == 1


def _reading_threads(config, chunks: int, **changes) -> list[str]:
    """Which thread read each chunk of a `chunks`-chunk object, downloaded whole."""
    blobs = make_blobs(config, cache_bytes=0, **changes)
    data = pseudo_random(chunks * CS, seed=62 + chunks)
    add_reference(blobs, add_owner(config.database_url, f"owner{chunks}"), data)
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
    assert len(readers) == chunks
    return readers


def test_a_long_download_reads_each_next_chunk_on_another_thread(config):
    here = threading.current_thread().name
    readers = _reading_threads(config, CHUNKS)  # the default configuration
    assert readers[0] == here, "the first chunk is read before the response starts"
    assert all(name.startswith("imagerepo-read") for name in readers[1:])


def test_a_short_download_or_read_ahead_off_reads_in_line(config):
    here = threading.current_thread().name
    assert _reading_threads(config, READ_AHEAD_MIN_CHUNKS - 1) == [here] * (READ_AHEAD_MIN_CHUNKS - 1)
    assert _reading_threads(config, CHUNKS, read_ahead=False) == [here] * CHUNKS
