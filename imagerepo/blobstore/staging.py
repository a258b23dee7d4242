"""Receiving bytes: cut a stream into chunks as it arrives, hash it on the way, and stage each
distinct chunk to a file in the upload's own staging area, before any database work.

Memory stays at about one chunk whatever the size. Nothing is visible to readers until the
writer commits the staged object (writer.py); whatever is still staged afterwards is dropped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path
from typing import IO

from .chunkfile import ChunkedFile
from .errors import EmptyUpload, UploadTooLarge
from .interface import ChunkStager, StagingArea

HEAD_BYTES = 64 * 1024


@dataclasses.dataclass(frozen=True)
class StagedChunk:
    digest: str
    size: int
    path: Path


class StagedObject:
    """A fully received upload sitting in the staging area, not yet committed."""

    def __init__(
        self,
        digest: str,
        size: int,
        chunk_size: int,
        chunks: list[StagedChunk],
        head: bytes,
        area: StagingArea | None,
    ):
        self._area = area
        self.digest = digest
        self.size = size
        self.chunk_size = chunk_size
        self.chunks = chunks  # in order; a repeated chunk appears again with the same path
        self.head = head  # the first bytes, for type sniffing without touching disk

    def reader(self) -> io.BufferedReader:
        """A seekable file over the staged bytes (e.g. for an image parser)."""
        return io.BufferedReader(_StagedReader(self), buffer_size=64 * 1024)

    def discard(self) -> None:
        """Remove what is still staged (files already moved into place are gone) and release
        the staging area's lock. Safe to call more than once."""
        if self._area is not None:
            self._area.remove()


class _StagedReader(ChunkedFile):
    def __init__(self, staged: StagedObject):
        super().__init__(staged.size, staged.chunk_size)
        self._staged = staged

    def _read_at(self, index: int, offset: int, count: int) -> bytes:
        chunk = self._staged.chunks[index]
        with open(chunk.path, "rb") as handle:
            handle.seek(offset)
            return handle.read(min(count, chunk.size - offset))


class Stager:
    """A write-only sink that cuts what it is given into chunks, hashing on the way and
    staging each distinct chunk to a temp file. Memory stays at about one chunk.

    It has `write` and `seek` so it can be werkzeug's multipart stream factory target."""

    def __init__(self, store: ChunkStager, chunk_size: int, max_bytes: int | None):
        self._store = store
        self._chunk_size = chunk_size
        self._max_bytes = max_bytes
        self._buffer = bytearray()
        self._whole = hashlib.sha256()
        self._size = 0
        self._head = bytearray()
        self._chunks: list[StagedChunk] = []
        self._by_digest: dict[str, StagedChunk] = {}
        self._area: StagingArea | None = None

    def write(self, data: bytes) -> int:
        self._size += len(data)
        if self._max_bytes is not None and self._size > self._max_bytes:
            self.abort()
            raise UploadTooLarge(self._max_bytes)
        self._whole.update(data)
        if len(self._head) < HEAD_BYTES:
            self._head += data[: HEAD_BYTES - len(self._head)]
        self._buffer += data
        if len(self._buffer) >= self._chunk_size:
            view = memoryview(self._buffer)
            cut = 0
            while len(self._buffer) - cut >= self._chunk_size:
                self._stage(view[cut : cut + self._chunk_size])
                cut += self._chunk_size
            view.release()
            del self._buffer[:cut]
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._size  # werkzeug rewinds a finished part; there is nothing to rewind

    def _stage(self, data) -> None:
        digest = hashlib.sha256(data).hexdigest()
        known = self._by_digest.get(digest)
        if known is None:
            if self._area is None:
                self._area = self._store.new_staging_area()
            handle, path = self._area.new_file()
            with handle:
                handle.write(data)
            known = self._by_digest[digest] = StagedChunk(digest, len(data), path)
        self._chunks.append(known)

    def stage_stream(self, stream: IO[bytes], piece: int = 1024 * 1024) -> Stager:
        while True:
            data = stream.read(piece)
            if not data:
                return self
            self.write(data)

    def finish(self) -> StagedObject:
        if self._size == 0:
            raise EmptyUpload()
        if self._buffer:
            self._stage(memoryview(self._buffer))
            self._buffer = bytearray()
        return StagedObject(
            self._whole.hexdigest(),
            self._size,
            self._chunk_size,
            self._chunks,
            bytes(self._head),
            self._area,
        )

    def abort(self) -> None:
        """Throw away everything staged so far (a failed or refused upload)."""
        if self._area is not None:
            self._area.remove()
        self._by_digest.clear()
        self._chunks.clear()
