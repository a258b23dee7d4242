"""A content cut into equal chunks, read as one seekable read-only file.

Both the staged upload (before commit: its chunk files in the staging area) and a stored
object (after: verified chunks through the reader) are read this way, by the type sniffer and
by libvips; a subclass says only how to read from one chunk.
"""

from __future__ import annotations

import io


class ChunkedFile(io.RawIOBase):
    def __init__(self, size: int, chunk_size: int):
        self._size = size
        self._chunk_size = chunk_size
        self._pos = 0

    @property
    def size(self) -> int:
        return self._size

    def _read_at(self, index: int, offset: int, count: int) -> bytes:
        """Up to `count` bytes of chunk `index` from `offset` (at least one byte)."""
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        if self._pos >= self._size:
            return 0
        index, offset = divmod(self._pos, self._chunk_size)
        data = self._read_at(index, offset, len(buffer))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)
