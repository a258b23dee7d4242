"""X-Accel-Redirect: behind `imagerepo serve`, nginx sends a small image's bytes from its chunk
file, after the app has authorised the request and vouched for the file.

Which answers: a GET (HEAD reads nothing anyway) with no Range and no If-Range header (nginx would
apply those to the file by its own rules), of an object of exactly one chunk (the common image
under the chunk size, 256 KiB by default: a file nginx can send whole) in the local chunk store.
Everything else, and every answer when IMAGEREPO_ACCEL_REDIRECT is off (the default), is sent by
the app, each byte verified as it goes.

The verification rule: every byte the app sends is checked against its chunk's SHA-256 as it is
read. nginx checks nothing, so it may send a chunk file only when this worker has read that very
file and found that it hashes to its name within the last `accel_verified_seconds` (default
300 s): "that very file" is the same inode, size and modification time as when it was verified
(chunk files are written once and replaced only by a rename, which changes the inode). A file
not verified, or verified too long ago, is read and hashed here first (then sent by nginx); one
that fails is left to the app's own read, which answers 500 `storage_corrupt` and counts it. What
this gives up: damage to a verified file's bytes in place (a disk error that changes neither
inode, size nor mtime) can reach clients for up to that long; `imagerepo fsck --verify-content`
finds it.

Off unless IMAGEREPO_ACCEL_REDIRECT=1: measured through the stack (bench/stack.py), with nginx's
proxy buffers sized for images, it saved no CPU per answer and no throughput (16-250 KiB), so by
default the per-read guarantee is kept.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from typing import TYPE_CHECKING

from cachetools import LRUCache
from flask import Response, current_app, request

from ..blobstore import LocalChunkStore
from ..context import services

if TYPE_CHECKING:
    from ..context import Services

# nginx's internal location (nginx.conf.j2): only an X-Accel-Redirect from the app reaches it.
INTERNAL_PREFIX = "/_imagerepo_chunks/"
# The object's size, for the download counter (imagerepo/metrics.py); nginx drops it.
SIZE_HEADER = "X-ImageRepo-Size"
_MARKS = 65536  # chunk files remembered as verified, per worker (~100 bytes each)


class VerifiedFiles:
    """Chunk files this worker hashed and found right: digest -> (inode, size, mtime, when)."""

    def __init__(self, lifetime_seconds: float):
        self.lifetime = lifetime_seconds
        self._marks: LRUCache[str, tuple[int, int, int, float]] = LRUCache(_MARKS)
        self._lock = threading.Lock()

    def vouch(self, store: LocalChunkStore, digest: str) -> str | None:
        """The file's path relative to the store, if it may be sent unverified; else None."""
        path = store.path_for(digest)
        try:
            st = os.stat(path)
        except OSError:
            return None
        now = time.monotonic()
        with self._lock:
            mark = self._marks.get(digest)
        if mark is None or mark[:3] != (st.st_ino, st.st_size, st.st_mtime_ns) or now - mark[3] > self.lifetime:
            try:
                with open(path, "rb") as handle:
                    if hashlib.file_digest(handle, "sha256").hexdigest() != digest:
                        return None
                    st = os.fstat(handle.fileno())  # what was hashed is this inode
            except OSError:
                return None
            with self._lock:
                self._marks[digest] = (st.st_ino, st.st_size, st.st_mtime_ns, now)
        return os.path.relpath(path, store.root)


def _verified_files(svc: Services) -> VerifiedFiles:
    found = current_app.extensions.get("imagerepo.accel")
    if found is None:  # one per app, made on first use (a race makes two; either is right)
        found = current_app.extensions["imagerepo.accel"] = VerifiedFiles(svc.config.accel_verified_seconds)
    return found


def accel_response(digest: str, row, headers: dict) -> Response | None:
    """An answer whose bytes nginx sends (see the module's rule), or None: the app sends them."""
    svc = services()
    if not svc.config.accel_redirect or request.method != "GET":
        return None
    if "Range" in request.headers or "If-Range" in request.headers:
        return None
    store = svc.blobs.store
    if not isinstance(store, LocalChunkStore):
        return None
    manifest, _ = svc.blobs.manifest(digest, row["chunk_size"])
    if len(manifest.chunks) != 1:
        return None
    relative = _verified_files(svc).vouch(store, manifest.chunks[0])
    if relative is None:
        return None
    # No Content-Length: this answer has no body (nginx sends the file's length).
    kept = {name: value for name, value in headers.items() if name != "Content-Length"}
    response = Response(status=200, headers=kept, mimetype=row["content_type"])
    response.headers["Content-Type"] = row["content_type"]
    response.headers["X-Accel-Redirect"] = INTERNAL_PREFIX + relative
    response.headers[SIZE_HEADER] = str(row["size"])
    return response
