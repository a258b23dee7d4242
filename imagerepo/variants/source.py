"""A stored object as a seekable read-only file, for the pipeline to read a source from.

Reads go through the blob store's reader (verified chunks, the chunk cache), one chunk held at
a time: libvips asks for a few KiB per read and seeks while it sniffs, so keeping the current
chunk saves re-reading it for every read, and the source is never held whole in memory.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..blobstore import BlobStore


class ObjectFile(io.RawIOBase):
    def __init__(self, blobs: BlobStore, digest: str, chunk_size: int | None = None):
        self._manifest, _ = blobs.manifest(digest, chunk_size)  # ObjectNotFound when it is gone
        self._read_chunk = blobs.reader.read_chunk
        self._pos = 0
        self._index = -1
        self._data = b""

    @property
    def size(self) -> int:
        return self._manifest.size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._manifest.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        if self._pos >= self._manifest.size:
            return 0
        index, offset = divmod(self._pos, self._manifest.chunk_size)
        if index != self._index:
            # ChunkLost / ChunkCorrupt propagate: wrong bytes must never become a variant.
            self._data = self._read_chunk(self._manifest.chunks[index], self._manifest.size)
            self._index = index
        count = min(len(buffer), len(self._data) - offset)
        buffer[:count] = self._data[offset : offset + count]
        self._pos += count
        return count
