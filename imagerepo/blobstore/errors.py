"""What the blob store raises. Plain exceptions with no HTTP meaning: imagerepo/errors.py decides
what a client sees for each."""

from __future__ import annotations


class BlobError(Exception):
    """Base of the blob store's errors."""


class UploadTooLarge(BlobError):
    """More bytes arrived than the store accepts for one object."""

    def __init__(self, limit: int):
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


class EmptyUpload(BlobError):
    """An upload with no bytes: there is nothing to store."""

    def __init__(self) -> None:
        super().__init__("no bytes")


class ObjectNotFound(BlobError, KeyError):
    """No object has this digest (never stored, or freed). A KeyError, as a lookup miss."""


class ChunkCorrupt(BlobError):
    """A chunk's bytes on disk do not match its digest (or the file is missing)."""


class ChunkLost(ChunkCorrupt):
    """A chunk's file is missing."""


class StoreUnavailable(BlobError):
    """The chunk store (an S3 bucket) could not be reached, timed out, or answered with an
    error. The operation did not happen, or its outcome is unknown; retrying later may
    succeed. An upload that meets it is not committed: nothing refers to what it stored."""


class ChunkFreed(ChunkLost):
    """A chunk's file is gone because nothing references it any more: every object holding it
    was released and collected while it was being read (an image deleted mid-download)."""
