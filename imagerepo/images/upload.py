"""Receiving uploads: the multipart file part, the raw body and each part of a batch are all
streamed into the blob store's stager as they arrive (never held in memory) and end in one
path, `store_upload`: finish staging, create the image, drop whatever is still staged.

The size limit is enforced while bytes arrive (UploadTooLarge); a refused or failed upload
leaves nothing behind.
"""

from __future__ import annotations

import functools
from typing import IO, Protocol, cast

from flask import g, request
from werkzeug.datastructures import FileStorage

from ..blobstore import UploadTooLarge
from ..blobstore.staging import Stager
from ..context import services
from .errors import TooManyFiles
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


class StagingSink:
    """A stager as the target werkzeug writes a file part into; `close()` drops what it staged."""

    def __init__(self) -> None:
        self.stager = services().blobs.stager()

    def write(self, data: bytes) -> int:
        return self.stager.write(data)  # UploadTooLarge past the limit (nothing left staged)

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
            raise TooManyFiles(MAX_BATCH_FILES)
        super().__init__()
        self.too_large: UploadTooLarge | None = None

    def write(self, data: bytes) -> int:
        if self.too_large is None:
            try:
                self.stager.write(data)
            except UploadTooLarge as err:
                self.too_large = err  # the stager has dropped what it staged
        return len(data)


def batch_body_limit(view):
    """A batch may be larger than one upload: raise the body limit for this request only."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        request.max_content_length = max(MAX_BATCH_BYTES, services().config.max_upload_bytes + 1024**2)
        return view(*args, **kwargs)

    return wrapper


def store_upload(owner_id: int, stager: Stager, filename: str | None, fields: UploadFields):
    """Record a fully received upload as an image of `owner_id`. Whatever happens, the upload's
    staging area is gone afterwards: committed chunks were moved out of it, the rest is
    leftovers."""
    try:
        staged = stager.finish()  # EmptyUpload when there is nothing
        return create_image(
            owner_id, staged, filename, fields.description, fields.isPrivate, fields.accessKey, fields.tags
        )
    finally:
        stager.abort()


def sink_of(part: FileStorage) -> StagingSink:
    """The sink werkzeug streamed a file part into (made by @api's `file_sink`)."""
    return cast(StagingSink, part.stream)


def store_raw_body(owner_id: int, body: IO[bytes], filename: str, fields: UploadFields):
    """Stage a raw request body as it arrives, then store it."""
    stager = services().blobs.stager()
    try:
        stager.stage_stream(body)
    except BaseException:
        stager.abort()  # too large, or the client went away mid-body
        raise
    return store_upload(owner_id, stager, filename, fields)


def store_batch_part(owner_id: int, part: FileStorage, fields: UploadFields):
    """Store one file of a batch (its sink has staged it, or kept why it was refused)."""
    sink = cast(BatchSink, sink_of(part))
    if sink.too_large:
        raise sink.too_large
    return store_upload(owner_id, sink.stager, part.filename, fields)
