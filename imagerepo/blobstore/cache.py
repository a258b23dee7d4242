"""An LRU cache of verified chunk bytes, bounded in bytes, safe across threads.

Chunks are immutable and named by their digest, so entries never need invalidating and the
cache may hold private content: access is checked before any chunk is read. The cache is
never asked whether a chunk exists; the manifests in PostgreSQL decide that.
"""

from __future__ import annotations

import threading

from cachetools import LRUCache


class ChunkCache:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._lru: LRUCache[str, bytes] = LRUCache(maxsize=max(max_bytes, 1), getsizeof=len)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, digest: str) -> bytes | None:
        with self._lock:
            data = self._lru.get(digest)
            if data is None:
                self.misses += 1
            else:
                self.hits += 1
            return data

    def put(self, digest: str, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return  # larger than the whole cache (or the cache is off)
        with self._lock:
            self._lru[digest] = data

    def forget(self, digest: str) -> None:
        with self._lock:
            self._lru.pop(digest, None)

    @property
    def bytes_used(self) -> int:
        with self._lock:
            return int(self._lru.currsize)

    def __len__(self) -> int:
        with self._lock:
            return len(self._lru)
