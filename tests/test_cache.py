"""The chunk cache's policy on its own: bounded in bytes, a size gate that keeps big objects out,
and a segmented LRU that a scan of chunks read once cannot flush. (Through the real server:
tests/test_cache_live.py.)"""

from __future__ import annotations

import hashlib
import random
import threading

import pytest

from imagerepo.blobstore.cache import ChunkCache
from imagerepo.config import Config, ConfigError

KiB, MiB = 1024, 1024 * 1024
CHUNK = 256 * KiB


def key(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def read(cache: ChunkCache, digest: str, data: bytes, object_size: int | None = None) -> bool:
    """What the blob store does for one chunk: look up, and on a miss offer what it read."""
    if cache.get(digest, object_size) is not None:
        return True
    cache.put(digest, data, object_size)
    return False


def test_a_chunk_put_is_served_and_counted():
    cache = ChunkCache(1 * MiB)
    assert cache.get(key(1)) is None
    cache.put(key(1), b"abc")
    assert cache.get(key(1)) == b"abc"
    assert (cache.hits, cache.misses, cache.bypassed) == (1, 1, 0)
    assert key(1) in cache and key(2) not in cache
    assert (cache.bytes_used, len(cache)) == (3, 1)


def test_bytes_held_never_exceed_the_bound_and_the_accounting_is_exact():
    cache = ChunkCache(10 * CHUNK)
    rng = random.Random(1)
    lengths = {}
    for i in range(500):
        lengths[key(i)] = rng.randint(1, CHUNK)
        read(cache, key(i), bytes(lengths[key(i)]))
        if i % 3 == 0:
            again = key(rng.randrange(i + 1))  # some second hits
            read(cache, again, bytes(lengths[again]))
        if i % 7 == 0:
            cache.forget(key(rng.randrange(i + 1)))
        held = sum(length for digest, length in lengths.items() if digest in cache)
        assert cache.bytes_used == held <= 10 * CHUNK
        assert len(cache) == sum(digest in cache for digest in lengths)


def test_a_chunk_larger_than_the_cache_or_a_cache_turned_off_holds_nothing():
    assert ChunkCache(CHUNK).max_object_bytes == CHUNK // 8
    small = ChunkCache(100, max_object_bytes=10_000)
    small.put(key(1), bytes(101))
    assert key(1) not in small and small.bytes_used == 0
    off = ChunkCache(0)
    off.put(key(2), b"x", object_size=1)
    off.put(key(3), b"x")
    assert len(off) == 0 and off.get(key(2), 1) is None


# -- the size gate ----------------------------------------------------------------------------
def test_chunks_of_an_object_over_the_gate_are_never_admitted_and_counted_as_bypassed():
    cache = ChunkCache(64 * MiB)  # gate: 8 MiB
    assert cache.max_object_bytes == 8 * MiB
    big = 150_000_000
    for i in range(40):
        assert not read(cache, key("big", i), bytes(CHUNK), big)
    assert len(cache) == 0 and cache.bytes_used == 0
    assert (cache.hits, cache.misses, cache.bypassed) == (0, 0, 40)
    # At the gate exactly, and when the caller does not know the size: admitted.
    read(cache, key("edge"), bytes(10), 8 * MiB)
    read(cache, key("unknown"), bytes(10))
    assert key("edge") in cache and key("unknown") in cache
    assert cache.misses == 2


def test_a_chunk_cached_for_a_small_object_is_served_to_a_big_one_that_shares_it():
    cache = ChunkCache(64 * MiB)
    shared = key("shared")
    read(cache, shared, b"s" * CHUNK, 1 * MiB)
    assert read(cache, shared, b"s" * CHUNK, 150_000_000)
    assert (cache.hits, cache.misses, cache.bypassed) == (1, 1, 0)


def test_the_gate_can_be_set():
    cache = ChunkCache(64 * MiB, max_object_bytes=200 * MiB)
    read(cache, key("big"), bytes(CHUNK), 150_000_000)
    assert key("big") in cache
    closed = ChunkCache(64 * MiB, max_object_bytes=0)
    read(closed, key("tiny"), b"t", 1)
    assert len(closed) == 0 and closed.bypassed == 1


# -- the segmented LRU -------------------------------------------------------------------------
def test_a_chunk_read_twice_survives_a_scan_of_chunks_read_once():
    cache = ChunkCache(10 * CHUNK)
    hot = [key("hot", i) for i in range(5)]
    for _ in range(2):
        for digest in hot:
            read(cache, digest, bytes(CHUNK))
    for i in range(1000):  # a crawler: 100 times the cache, each chunk once
        read(cache, key("scan", i), bytes(CHUNK))
    assert all(digest in cache for digest in hot)
    assert cache.bytes_used <= 10 * CHUNK


def test_under_plain_lru_the_same_scan_flushes_the_hot_chunks():
    """The same trace against cachetools' LRU (the policy before), so the test above means
    something: recency alone keeps whatever was read last."""
    from cachetools import LRUCache

    lru = LRUCache(maxsize=10 * CHUNK, getsizeof=len)
    hot = [key("hot", i) for i in range(5)]
    for _ in range(2):
        for digest in hot:
            lru[digest] = bytes(CHUNK)
    for i in range(1000):
        lru[key("scan", i)] = bytes(CHUNK)
    assert not any(digest in lru for digest in hot)


def test_the_protected_segment_is_bounded_and_its_oldest_fall_back_to_probation():
    cache = ChunkCache(10 * CHUNK)  # protected: at most 8 chunks
    promoted = [key("p", i) for i in range(9)]
    for digest in promoted:
        read(cache, digest, bytes(CHUNK))
        read(cache, digest, bytes(CHUNK))  # second hit: protected
    # Nine promoted into room for eight: the first went back to probation, still cached.
    assert all(digest in cache for digest in promoted)
    read(cache, key("new", 0), bytes(CHUNK))
    read(cache, key("new", 1), bytes(CHUNK))  # probation overflows: its oldest leaves first
    assert promoted[0] not in cache
    assert all(digest in cache for digest in promoted[1:])
    # A demoted chunk hit again is promoted again (and another one falls back).
    cache.put(promoted[0], bytes(CHUNK))
    assert read(cache, promoted[0], bytes(CHUNK))
    assert all(digest in cache for digest in promoted)


def test_forget_drops_a_chunk_from_either_segment():
    cache = ChunkCache(10 * CHUNK)
    read(cache, key("once"), b"1" * 100)
    read(cache, key("twice"), b"2" * 200)
    read(cache, key("twice"), b"2" * 200)
    cache.forget(key("once"))
    cache.forget(key("twice"))
    cache.forget(key("never"))
    assert len(cache) == 0 and cache.bytes_used == 0


def test_the_hot_set_keeps_over_90_percent_while_150_mb_objects_stream():
    """The issue's trace on the policy alone, in a 64 MiB cache: 100 small images read at random
    while 150 MB objects stream two at a time (four objects, each downloaded twice), eight
    stream chunks per hot read."""
    cache = ChunkCache(64 * MiB)
    rng = random.Random(7)
    hot = [(key("hot", i), bytes(rng.randint(30, 250) * KiB)) for i in range(100)]
    big = 150_000_000
    downloads = [[key("big", n, i) for i in range(big // CHUNK + 1)] for n in (0, 0, 1, 1, 2, 2, 3, 3)]
    stream = [
        digest
        for a, b in zip(downloads[::2], downloads[1::2], strict=True)
        for pair in zip(a, b, strict=True)
        for digest in pair
    ]
    seen, hits, reads, chunk = set(), 0, 0, bytes(CHUNK)
    for start in range(0, len(stream), 8):
        digest, data = rng.choice(hot)
        hit = read(cache, digest, data, len(data))
        if digest in seen:  # the first read of each image is a miss whatever the policy
            reads, hits = reads + 1, hits + hit
        seen.add(digest)
        for step in stream[start : start + 8]:
            read(cache, step, chunk, big)
        assert cache.bytes_used <= sum(len(d) for _, d in hot)  # nothing of the big objects
    assert reads > 400 and hits / reads >= 0.9, hits / reads
    assert cache.bypassed == len(stream)


def test_threads_sharing_the_cache_keep_it_consistent():
    cache = ChunkCache(20 * CHUNK)
    lengths = {key(i): (i % 17 + 1) * 1000 for i in range(200)}
    errors = []

    lookups = []

    def worker(seed: int):
        rng = random.Random(seed)
        done = 0
        try:
            for _ in range(5000):
                digest = key(rng.randrange(200))
                if rng.random() < 0.05:
                    cache.forget(digest)
                else:
                    done += 1
                    data = cache.get(digest, lengths[digest])
                    if data is None:
                        cache.put(digest, bytes(lengths[digest]), lengths[digest])
                    elif len(data) != lengths[digest]:
                        errors.append(f"{digest} served {len(data)} bytes")
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(repr(err))
        lookups.append(done)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    held = sum(length for digest, length in lengths.items() if digest in cache)
    assert cache.bytes_used == held <= 20 * CHUNK
    assert cache.hits + cache.misses == sum(lookups) and cache.bypassed == 0


def test_the_gate_is_read_from_the_environment():
    base = {"IMAGEREPO_ENV": "test", "IMAGEREPO_JWT_SECRET": "x" * 40}
    assert Config.from_env(base).cache_max_object_bytes is None  # 1/8 of the cache
    assert Config.from_env({**base, "IMAGEREPO_CACHE_MAX_OBJECT_BYTES": "1048576"}).cache_max_object_bytes == MiB
    with pytest.raises(ConfigError, match="IMAGEREPO_CACHE_MAX_OBJECT_BYTES"):
        Config.from_env({**base, "IMAGEREPO_CACHE_MAX_OBJECT_BYTES": "-1"})


def test_the_policy_comparison_runs_and_the_shipped_policy_holds_on_its_traces(tmp_path, capsys):
    """bench/cachesim.py (how the policy was chosen) on its quick traces, in a 64 MiB cache."""
    import json

    from bench import cachesim

    assert cachesim.main(["--quick", "--json", str(tmp_path / "sim.json")]) == 0
    results = {(r["trace"].split()[0], r["policy"]): r for r in json.loads((tmp_path / "sim.json").read_text())}
    shipped, before = "SLRU + size gate (ChunkCache)", "LRU (before)"
    assert results["stream", shipped]["hot_hit_rate"] >= 0.9 and results["stream", shipped]["big_peak_MiB"] == 0
    assert results["stream", before]["hot_hit_rate"] < 0.9 and results["stream", before]["big_peak_MiB"] > 32
    assert results["crawl", shipped]["hot_hit_rate"] > results["crawl", before]["hot_hit_rate"] + 0.1
    assert results["mixed", shipped]["big_peak_MiB"] == 0
    assert "| stream R=4 | 64 MiB | SLRU + size gate (ChunkCache) |" in capsys.readouterr().out
