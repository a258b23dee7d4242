"""A cache of verified chunk bytes, bounded in bytes, safe across threads, that a stream of big
objects or a one-time scan cannot flush.

Chunks are immutable and named by their digest, so entries never need invalidating and the
cache may hold private content: access is checked before any chunk is read. The cache is
never asked whether a chunk exists; the manifests in PostgreSQL decide that.

The policy (chosen by replaying traces against LRU, SLRU and W-TinyLFU, each with and without a
size gate: `python -m bench.cachesim`, README "Storage design"):

- size gate: chunks of an object larger than `max_object_bytes` (1/8 of the cache by default)
  are read past the cache and never admitted, so a 150 MB download costs a worker no memory and
  evicts nothing; a lookup still serves such a chunk if another object put it there;
- segmented LRU: an admitted chunk goes on probation; a second hit moves it to the protected
  segment (80% of the bytes), whose oldest entries fall back to probation when it is full.
  Eviction takes probation's oldest, so chunks read once (a crawler, an export) replace each
  other and never the ones read again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

PROTECTED_FRACTION = 0.8


class ChunkCache:
    def __init__(self, max_bytes: int, max_object_bytes: int | None = None):
        self.max_bytes = max_bytes
        self.max_object_bytes = max_bytes // 8 if max_object_bytes is None else max_object_bytes
        self._protected_max = int(max_bytes * PROTECTED_FRACTION)
        self._probation: OrderedDict[str, bytes] = OrderedDict()  # oldest first
        self._protected: OrderedDict[str, bytes] = OrderedDict()
        self._probation_bytes = 0
        self._protected_bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0  # lookups of admissible chunks that were not cached
        self.bypassed = 0  # lookups of chunks of objects over the size gate, not cached

    def admits(self, object_size: int | None) -> bool:
        """Whether chunks of an object of this size may be cached (None: size unknown, yes)."""
        return object_size is None or object_size <= self.max_object_bytes

    def get(self, digest: str, object_size: int | None = None) -> bytes | None:
        """The chunk's bytes if cached. `object_size` (of the object being read) only decides
        whether a miss counts as a miss or as a read past the cache."""
        with self._lock:
            data = self._protected.get(digest)
            if data is not None:
                self._protected.move_to_end(digest)
                self.hits += 1
                return data
            data = self._probation.pop(digest, None)
            if data is None:
                if self.admits(object_size):
                    self.misses += 1
                else:
                    self.bypassed += 1
                return None
            self.hits += 1
            self._promote(digest, data)
            return data

    def put(self, digest: str, data: bytes, object_size: int | None = None) -> None:
        """Offer a verified chunk of an object of `object_size` bytes; the size gate decides."""
        if len(data) > self.max_bytes or not self.admits(object_size):
            return  # a big object's chunk, larger than the whole cache, or the cache is off
        with self._lock:
            if digest in self._protected or digest in self._probation:
                return  # two threads missed the same chunk at once
            self._probation[digest] = data
            self._probation_bytes += len(data)
            self._evict()

    def forget(self, digest: str) -> None:
        with self._lock:
            data = self._probation.pop(digest, None)
            if data is not None:
                self._probation_bytes -= len(data)
            data = self._protected.pop(digest, None)
            if data is not None:
                self._protected_bytes -= len(data)

    def _promote(self, digest: str, data: bytes) -> None:
        self._probation_bytes -= len(data)
        self._protected[digest] = data
        self._protected_bytes += len(data)
        while self._protected_bytes > self._protected_max:
            demoted, demoted_data = self._protected.popitem(last=False)
            self._protected_bytes -= len(demoted_data)
            self._probation[demoted] = demoted_data  # newest end of probation: another chance
            self._probation_bytes += len(demoted_data)

    def _evict(self) -> None:
        # The protected segment never exceeds 80% of the bytes, so probation is not empty here.
        while self._probation_bytes + self._protected_bytes > self.max_bytes:
            _, data = self._probation.popitem(last=False)
            self._probation_bytes -= len(data)

    @property
    def bytes_used(self) -> int:
        with self._lock:
            return self._probation_bytes + self._protected_bytes

    def __contains__(self, digest: str) -> bool:
        """Whether the chunk is cached, without counting a lookup or refreshing it."""
        with self._lock:
            return digest in self._protected or digest in self._probation

    def __len__(self) -> int:
        with self._lock:
            return len(self._probation) + len(self._protected)
