"""python -m bench.cachesim [--quick] [--json PATH]

Chunk-cache policies replayed on synthetic traces of what a worker's chunk cache sees, to choose
the policy (README, "Storage design"). Each trace is a sequence of chunk reads, each tagged with
the size of the object it belongs to (what the blob store can tell the cache):

  stream  a hot set of 100 small images (30-250 KiB) read at random while 150 MB objects stream,
          two different ones at a time, each downloaded twice; R stream chunks per hot read
          (R = 1, 4, 16)
  crawl   the same hot set while 20,000 other small images are each read once (a crawler, a
          backup, an export), R crawl reads per hot read
  mixed   40,000 requests, Zipf(0.9) over 4,000 images of a plausible size mix (most under
          1 MiB, some 1-40 MiB, 1% of 150 MB), each request reading its object whole

Measured per policy and cache size (256 and 64 MiB): the hot set's hit rate (its first read of
each image, a compulsory miss, left out), the peak bytes held for the 150 MB objects (what a big
download costs a worker in memory), the byte hit rate over all reads, and microseconds per
operation (lookup, plus the insert after a miss) in this process: the other candidates take no
lock, ChunkCache does, so its figure is the conservative one. --quick: one small trace of each
kind, 64 MiB only (a smoke test).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections import OrderedDict
from pathlib import Path

from cachetools import LRUCache

from imagerepo.blobstore.cache import ChunkCache

MiB = 1024 * 1024
KiB = 1024
CHUNK = 256 * KiB
BIG = 150_000_000
BIG_CLASS = 32 * MiB  # "held for 150 MB objects" counts chunks of objects over this size


# -- the candidates -----------------------------------------------------------------------------
# Each has get(digest, object_size) -> bytes | None and put(digest, data, object_size), the
# interface the blob store calls; ChunkCache (what ships) is replayed beside them.


class Lru:
    """The cache before this change: one LRU bounded in bytes (cachetools), admits everything."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._lru = LRUCache(maxsize=max_bytes, getsizeof=len)

    def get(self, digest, object_size=None):
        return self._lru.get(digest)

    def put(self, digest, data, object_size=None):
        if len(data) <= self.max_bytes:
            self._lru[digest] = data

    def __contains__(self, digest):
        return digest in self._lru


class SizeGate:
    """Any policy, with objects over `limit` bytes read past the cache and never admitted."""

    def __init__(self, inner, limit: int):
        self.inner, self.limit = inner, limit

    def get(self, digest, object_size=None):
        return self.inner.get(digest, object_size)

    def put(self, digest, data, object_size=None):
        if object_size is None or object_size <= self.limit:
            self.inner.put(digest, data, object_size)

    def __contains__(self, digest):
        return digest in self.inner


class FrequencySketch:
    """Count-min sketch of 4-bit counters, 4 rows, halved every `sample` increments (TinyLFU's
    aging). Keys are SHA-256 hex digests, already uniform: the rows index by slices of it."""

    HALF = bytes(i >> 1 for i in range(256))

    def __init__(self, entries: int):
        width = 1 << max(8, (entries - 1).bit_length())
        self.mask = width - 1
        self.rows = [bytearray(width) for _ in range(4)]
        self.sample, self.added = 10 * entries, 0

    def _slots(self, digest: str):
        h = int(digest[:16], 16)
        return [(row, (h >> (16 * i)) & self.mask) for i, row in enumerate(self.rows)]

    def add(self, digest: str) -> None:
        for row, slot in self._slots(digest):
            if row[slot] < 15:
                row[slot] += 1
        self.added += 1
        if self.added >= self.sample:
            self.rows = [row.translate(self.HALF) for row in self.rows]
            self.added //= 2

    def frequency(self, digest: str) -> int:
        return min(row[slot] for row, slot in self._slots(digest))


class WTinyLfu:
    """W-TinyLFU (Caffeine's policy), weighted by bytes: a 1% LRU window admits everything; what
    leaves it enters the SLRU main space only if its estimated frequency beats the victim's."""

    def __init__(self, max_bytes: int, window_fraction: float = 0.01):
        self.window_max = max(int(max_bytes * window_fraction), CHUNK)
        self.window: OrderedDict = OrderedDict()
        self.window_bytes = 0
        # The main space is the shipped segmented LRU with its gate open; the admission filter
        # below reaches into its segments (a measuring harness may; the server does not).
        self.main = ChunkCache(max(max_bytes - self.window_max, 0), max_object_bytes=sys.maxsize)
        # Sized for the entries the cache can hold when they are small (64 KiB), as Caffeine
        # sizes its sketch to the maximum number of entries.
        self.sketch = FrequencySketch(max(max_bytes // (64 * KiB), 16))

    def get(self, digest, object_size=None):
        self.sketch.add(digest)
        data = self.window.get(digest)
        if data is not None:
            self.window.move_to_end(digest)
            return data
        return self.main.get(digest)

    def put(self, digest, data, object_size=None):
        if digest in self.window or digest in self.main:
            return
        self.window[digest] = data
        self.window_bytes += len(data)
        while self.window_bytes > self.window_max:
            candidate, candidate_data = self.window.popitem(last=False)
            self.window_bytes -= len(candidate_data)
            self._admit(candidate, candidate_data)

    def _admit(self, candidate: str, data: bytes) -> None:
        main = self.main
        if len(data) > main.max_bytes:
            return
        wanted = self.sketch.frequency(candidate)
        while main.bytes_used + len(data) > main.max_bytes:
            segment = main._probation if main._probation else main._protected
            victim = next(iter(segment))
            if wanted <= self.sketch.frequency(victim):
                return  # the candidate loses: dropped, the main space untouched
            victim_data = segment.pop(victim)
            if segment is main._probation:
                main._probation_bytes -= len(victim_data)
            else:
                main._protected_bytes -= len(victim_data)
        main._probation[candidate] = data
        main._probation_bytes += len(data)

    def __contains__(self, digest):
        return digest in self.window or digest in self.main


def candidates(max_bytes: int) -> dict:
    limit = max_bytes // 8  # the size gate's default in ChunkCache
    return {
        "LRU (before)": Lru(max_bytes),
        "LRU + size gate": SizeGate(Lru(max_bytes), limit),
        "SLRU": ChunkCache(max_bytes, max_object_bytes=sys.maxsize),  # the shipped class, gate open
        "W-TinyLFU": WTinyLfu(max_bytes),
        "W-TinyLFU + size gate": SizeGate(WTinyLfu(max_bytes), limit),
        "SLRU + size gate (ChunkCache)": ChunkCache(max_bytes, max_object_bytes=limit),
    }


# -- the traces -----------------------------------------------------------------------------------
# A trace is a list of (digest, chunk length, object size, tag); tag "hot" marks hot-set reads.


def _digest(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _object_chunks(name: str, size: int) -> list[tuple[str, int]]:
    return [(_digest(name, i), min(CHUNK, size - i * CHUNK)) for i in range((size + CHUNK - 1) // CHUNK)]


def _small_size(rng: random.Random) -> int:
    return rng.randint(30, 250) * KiB  # whole KiB: the replay allocates one payload per length


def _hot_set(rng: random.Random) -> list[tuple[str, int]]:
    return [(_digest("hot", i), _small_size(rng)) for i in range(100)]


def stream_trace(ratio: int, bigs: int, seed: int = 1) -> list:
    rng = random.Random(seed)
    hot = _hot_set(rng)
    # Two big downloads in flight at any time; each of `bigs` objects downloaded twice, the
    # second time after the others (so a cache that kept it would serve it hot).
    downloads = [_object_chunks(f"big{i}", BIG) for _ in range(2) for i in range(bigs)]
    trace, active = [], []
    while downloads or active:
        while len(active) < 2 and downloads:
            active.append(iter(downloads.pop(0)))
        digest, size = rng.choice(hot)
        trace.append((digest, size, size, "hot"))
        for _ in range(ratio):
            if not active:
                break
            stream = active[rng.randrange(len(active))]
            step = next(stream, None)
            if step is None:
                active.remove(stream)
                continue
            trace.append((step[0], step[1], BIG, "big"))
    return trace


def crawl_trace(ratio: int, crawled: int, seed: int = 2) -> list:
    rng = random.Random(seed)
    hot = _hot_set(rng)
    trace = []
    for i in range(crawled):
        if i % ratio == 0:
            digest, size = rng.choice(hot)
            trace.append((digest, size, size, "hot"))
        size = _small_size(rng)
        trace.append((_digest("crawl", i), size, size, "crawl"))
    return trace


def mixed_trace(requests: int, objects: int, seed: int = 3) -> list:
    rng = random.Random(seed)
    sizes = []
    for _ in range(objects):
        roll = rng.random()
        if roll < 0.70:
            sizes.append(rng.randint(50, 1024) * KiB)
        elif roll < 0.95:
            sizes.append(rng.randint(1024, 10 * 1024) * KiB)
        elif roll < 0.99:
            sizes.append(rng.randint(10 * 1024, 40 * 1024) * KiB)
        else:
            sizes.append(BIG)
    weights = [1 / (rank + 1) ** 0.9 for rank in range(objects)]
    order = list(range(objects))
    rng.shuffle(order)  # popularity independent of size
    chunks = {}
    trace = []
    for index in rng.choices(order, weights, k=requests):
        if index not in chunks:
            chunks[index] = _object_chunks(f"obj{index}", sizes[index])
        trace += [(digest, length, sizes[index], "mixed") for digest, length in chunks[index]]
    return trace


# -- the replay ------------------------------------------------------------------------------------
SAMPLE_EVERY = 512  # ops between two samples of the bytes held for big objects


def replay(cache, trace: list) -> dict:
    """Run the trace through `cache` as the blob store would (lookup; on a miss, read and put)."""
    payloads = {length: bytes(length) for length in {step[1] for step in trace}}
    seen_hot: set = set()
    hot_hits = hot_reads = hit_bytes = read_bytes = 0
    big_chunks: dict[str, int] = {}
    big_peak = 0
    sampling = 0.0
    start = time.perf_counter()
    for n, (digest, length, object_size, tag) in enumerate(trace, 1):
        data = cache.get(digest, object_size)
        hit = data is not None
        if not hit:
            data = payloads[length]
            cache.put(digest, data, object_size)
        if tag == "hot":
            if digest in seen_hot:
                hot_reads += 1
                hot_hits += hit
            seen_hot.add(digest)
        read_bytes += length
        hit_bytes += length if hit else 0
        if object_size > BIG_CLASS:
            big_chunks[digest] = length
        if n % SAMPLE_EVERY == 0 and big_chunks:
            began = time.perf_counter()
            big_peak = max(big_peak, _held(cache, big_chunks))
            sampling += time.perf_counter() - began
    seconds = time.perf_counter() - start - sampling
    big_peak = max(big_peak, _held(cache, big_chunks))
    return {
        "hot_hit_rate": hot_hits / hot_reads if hot_reads else None,
        "byte_hit_rate": hit_bytes / read_bytes,
        "big_peak_MiB": big_peak / MiB,
        "us_per_op": seconds / len(trace) * 1e6,
    }


def _held(cache, chunks: dict[str, int]) -> int:
    return sum(length for digest, length in chunks.items() if digest in cache)


def workloads(quick: bool) -> list[tuple[str, list]]:
    bigs = 2
    out = [(f"stream R={r}", stream_trace(r, bigs)) for r in ((4,) if quick else (1, 4, 16))]
    out += [(f"crawl R={r}", crawl_trace(r, 2_000 if quick else 20_000)) for r in ((4,) if quick else (1, 4))]
    out.append(("mixed", mixed_trace(2_000 if quick else 40_000, 400 if quick else 4_000)))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cachesim", description=__doc__.split("\n\n")[1])
    parser.add_argument("--quick", action="store_true", help="small traces, one cache size")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    sizes = (64 * MiB,) if args.quick else (256 * MiB, 64 * MiB)
    results = []
    for name, trace in workloads(args.quick):
        print(f"[bench.cachesim] {name}: {len(trace):,} chunk reads", file=sys.stderr, flush=True)
        for max_bytes in sizes:
            for policy, cache in candidates(max_bytes).items():
                figures = replay(cache, trace)
                results.append({"trace": name, "cache_MiB": max_bytes // MiB, "policy": policy, **figures})
    print("| trace | cache | policy | hot-set hit rate | held for 150 MB objects | byte hit rate | us/op |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        hot = "-" if r["hot_hit_rate"] is None else f"{r['hot_hit_rate']:.1%}"
        print(
            f"| {r['trace']} | {r['cache_MiB']} MiB | {r['policy']} | {hot} | {r['big_peak_MiB']:.0f} MiB"
            f" | {r['byte_hit_rate']:.1%} | {r['us_per_op']:.2f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
