"""Per-process thread pools for blocking file work: fsyncs at publish (writer.py, durable.py)
and reading ahead the next chunk of a download (reader.py). Per process because threads do not
survive fork, and gunicorn forks its workers; one pool per job so a burst of fsyncs cannot
hold up the downloads' reads."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

_pools: dict[str, tuple[int, ThreadPoolExecutor]] = {}
_lock = threading.Lock()


def pool(name: str, workers: int) -> ThreadPoolExecutor:
    """This process's pool called `name` (made on first use, with `workers` threads)."""
    found = _pools.get(name)
    if found is None or found[0] != os.getpid():
        with _lock:
            found = _pools.get(name)
            if found is None or found[0] != os.getpid():
                found = _pools[name] = (
                    os.getpid(),
                    ThreadPoolExecutor(workers, thread_name_prefix=f"imagerepo-{name}"),
                )
    return found[1]
