"""The chunk-store contract: what the blob store needs from wherever chunk bytes live.

Small role interfaces, one per job (after perkeep's blobserver), combined into `ChunkStore`:

    ChunkWriter.put(digest, data) -> bool     store bytes (or a staged file) under their digest;
                                              False if the digest was present already
    ChunkReader.get(digest) -> bytes          raise ChunkMissing when absent; no verification here
    ChunkReader.exists(digest) -> bool
    ChunkStatter.stat(digest) -> ChunkFile    size and time without reading; ChunkMissing when absent
    ChunkRemover.delete(digest) -> bool       False if it was already gone
    ChunkEnumerator.iterate() -> ChunkFile... every stored chunk (digest, size, mtime)
    ChunkStager.new_staging_area()            a private place for one upload's chunks before commit
    ChunkStager.sweep_staging(seconds) -> int remove what dead uploads left, older than `seconds`
    ChunkQuarantiner.quarantine(digest, size) optional: move a wrong file aside (fsck --repair)

Digests are lowercase SHA-256 hex. Each part of the blob store is typed against the roles it
uses, so a new backend (S3) knows exactly what it must provide. Every implementation passes
tests/test_chunkstore_contract.py (add a factory to STORE_FACTORIES), and is checked against
`ChunkStore` statically, as `LocalChunkStore` is at the bottom of local.py.

This module must never import an implementation, nor know about PostgreSQL or HTTP.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable


class ChunkMissing(LookupError):
    """The store holds no chunk with this digest."""


@dataclasses.dataclass(frozen=True)
class ChunkFile:
    digest: str
    size: int
    mtime: float


class StagingArea(Protocol):
    """One upload's private staging place: local files until the upload commits."""

    def new_file(self) -> tuple[BinaryIO, Path]: ...
    def remove(self) -> None: ...


class ChunkWriter(Protocol):
    def put(self, digest: str, data: bytes | Path) -> bool: ...


class ChunkReader(Protocol):
    def get(self, digest: str) -> bytes: ...
    def exists(self, digest: str) -> bool: ...


class ChunkStatter(Protocol):
    def stat(self, digest: str) -> ChunkFile: ...


class ChunkRemover(Protocol):
    def delete(self, digest: str) -> bool: ...


class ChunkEnumerator(Protocol):
    def iterate(self) -> Iterator[ChunkFile]: ...


class ChunkStager(Protocol):
    def new_staging_area(self) -> StagingArea: ...
    def sweep_staging(self, older_than_seconds: float) -> int: ...


@runtime_checkable
class ChunkQuarantiner(Protocol):
    """Optional role: move the file at `digest` aside if it does not hold the `size` bytes it
    names, so it reads as missing and the next upload of those bytes writes it again."""

    def quarantine(self, digest: str, size: int) -> bool: ...


class ChunkStore(ChunkWriter, ChunkReader, ChunkStatter, ChunkRemover, ChunkEnumerator, ChunkStager, Protocol):
    """Everything the blob store needs from a backend."""
