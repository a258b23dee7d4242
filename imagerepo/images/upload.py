"""Receiving uploads: the multipart file part, the raw body and each part of a batch are all
streamed into the blob store's stager as they arrive (never held in memory) and end in one
path, `store_upload`: finish staging, create the image, drop whatever is still staged.

The size limit is enforced while bytes arrive; a refused or failed upload leaves nothing behind.
"""

from __future__ import annotations

import functools
from typing import IO, Protocol

from flask import g, request

from ..blobstore import EmptyUpload, StagedObject, UploadTooLarge
from ..blobstore.staging import Stager
from ..context import services
from ..errors import ApiError
from .service import create_image

MAX_BATCH_FILES = 100
# The whole body of a batch; every file in it is also held to IMAGEREPO_MAX_UPLOAD_BYTES.
MAX_BATCH_BYTES = 1024**3


class UploadFields(Protocol):
    """The metadata every upload form carries (UploadForm, RawUploadQuery, BatchForm)."""

    description: str
    isPrivate: bool
    accessKey: str | None
    tags: list[str]


def too_large() -> ApiError:
    limit = services().config.max_upload_bytes
    return ApiError(413, "too_large", f"the image is larger than the limit of {limit} bytes")


class StagingSink:
    """A stager as the target werkzeug writes a file part into; `close()` drops what it staged."""

    def __init__(self) -> None:
        self.stager = services().blobs.stager()

    def write(self, data: bytes) -> int:
        try:
            return self.stager.write(data)
        except UploadTooLarge:
            raise too_large() from None

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.stager.seek(offset, whence)

    def close(self) -> None:
        self.stager.abort()


class BatchSink(StagingSink):
    """One file of a batch. Past the size limit it is marked too large and the rest of its bytes
    are dropped, so the parser reads on to the next file instead of failing the whole batch."""

    def __init__(self) -> None:
        g.batch_files = g.get("batch_files", 0) + 1
        if g.batch_files > MAX_BATCH_FILES:
            raise ApiError(413, "too_many_files", f"a batch holds at most {MAX_BATCH_FILES} files")
        super().__init__()
        self.too_large = False

    def write(self, data: bytes) -> int:
        if not self.too_large:
            try:
                self.stager.write(data)
            except UploadTooLarge:
                self.too_large = True  # the stager has dropped what it staged
        return len(data)


def batch_body_limit(view):
    """A batch may be larger than one upload: raise the body limit for this request only."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        request.max_content_length = max(MAX_BATCH_BYTES, services().config.max_upload_bytes + 1024**2)
        return view(*args, **kwargs)

    return wrapper


def _finish(stager: Stager) -> StagedObject:
    try:
        return stager.finish()
    except EmptyUpload:
        raise ApiError(400, "empty_upload", "the file is empty") from None


def store_upload(owner_id: int, stager: Stager, filename: str | None, fields: UploadFields):
    """Record a fully received upload as an image of `owner_id`. Whatever happens, the upload's
    staging area is gone afterwards: committed chunks were moved out of it, the rest is
    leftovers."""
    try:
        staged = _finish(stager)
        return create_image(
            owner_id, staged, filename, fields.description, fields.isPrivate, fields.accessKey, fields.tags
        )
    finally:
        stager.abort()


def store_raw_body(owner_id: int, body: IO[bytes], filename: str, fields: UploadFields):
    """Stage a raw request body as it arrives, then store it."""
    stager = services().blobs.stager()
    try:
        stager.stage_stream(body)
    except UploadTooLarge:
        raise too_large() from None  # the stager has already dropped what it staged
    except BaseException:
        stager.abort()  # e.g. the client went away mid-body
        raise
    return store_upload(owner_id, stager, filename, fields)


def store_batch_part(owner_id: int, part, fields: UploadFields):
    """Store one file of a batch (its sink has staged it, or marked it too large)."""
    if part.stream.too_large:
        raise too_large()
    return store_upload(owner_id, part.stream.stager, part.filename, fields)
