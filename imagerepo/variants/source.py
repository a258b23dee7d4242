"""A stored object as a seekable read-only file, for the pipeline to read a source from.

Reads go through the blob store's reader (verified chunks, the chunk cache), one chunk held at
a time: libvips asks for a few KiB per read and seeks while it sniffs, so keeping the current
chunk saves re-reading it for every read, and the source is never held whole in memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..blobstore.chunkfile import ChunkedFile

if TYPE_CHECKING:
    from ..blobstore import BlobStore


class ObjectFile(ChunkedFile):
    def __init__(self, blobs: BlobStore, digest: str, chunk_size: int | None = None):
        self._manifest, _ = blobs.manifest(digest, chunk_size)  # ObjectNotFound when it is gone
        super().__init__(self._manifest.size, self._manifest.chunk_size)
        self._read_chunk = blobs.reader.read_chunk
        self._index = -1
        self._data = b""

    def _read_at(self, index: int, offset: int, count: int) -> bytes:
        if index != self._index:
            # ChunkLost / ChunkCorrupt propagate: wrong bytes must never become a variant.
            self._data = self._read_chunk(self._manifest.chunks[index], self._manifest.size)
            self._index = index
        return self._data[offset : offset + count]
