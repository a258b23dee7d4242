"""Read-ahead for remote chunk stores: while one chunk is sent, the next few are fetched.

On a local disk this was measured slower (README, "Performance"): the read is a page-cache copy
and the extra thread only competes for the cores. Against S3 a chunk read is a network round
trip (1-2 ms on loopback, 10-50 ms on AWS), so a cold download that reads chunk after chunk is
bound by latency, not bandwidth; keeping `depth` GETs in flight hides it. A store opts in with
a `read_ahead` attribute (S3ChunkStore: 4); the reader asks for it.
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """Per process (threads do not survive gunicorn's fork); bounded, shared by every download."""
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():
        with _pool_lock:
            if _pool is None or _pool_pid != os.getpid():
                _pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="imagerepo-readahead")
                _pool_pid = os.getpid()
    return _pool


def prefetched(read: Callable[[str], bytes], digests: Iterable[str], depth: int) -> Iterator[bytes]:
    """read(digest) for each digest, in order, with up to `depth` reads in flight. A read's
    error is raised when its turn comes; closing the iterator (a client gone) cancels the rest."""
    pending: collections.deque[Future] = collections.deque()
    remaining = iter(digests)
    try:
        for digest in remaining:
            pending.append(_executor().submit(read, digest))
            if len(pending) >= depth:
                break
        while pending:
            data = pending.popleft().result()
            for digest in remaining:
                pending.append(_executor().submit(read, digest))
                break
            yield data
    finally:
        for future in pending:
            future.cancel()
