"""Serving an image's bytes: ETag and conditional requests (If-None-Match, If-Range), one byte
range (Range, 206/416), Content-Disposition with the original name (RFC 6266), caching headers,
HEAD without reading a chunk. Access has been decided before anything here runs.
"""

from __future__ import annotations

import re
import urllib.parse

from flask import Response, request

from ..context import services
from ..imagetypes import download_name
from ..stack.accel import accel_response
from ..variants.service import Variant
from .errors import RangeNotSatisfiable


def content_disposition(kind: str, name: str) -> str:
    """RFC 6266: an ASCII fallback name plus the exact UTF-8 name in filename*."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\%' else "_" for ch in name) or "image"
    encoded = urllib.parse.quote(name, safe="!#$&+-.^_`|~")
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


CONTENT_POLICY = "default-src 'none'; sandbox; frame-ancestors 'none'"

_RANGE = re.compile(r"^\s*bytes\s*=\s*([0-9]*)\s*-\s*([0-9]*)\s*$", re.ASCII | re.IGNORECASE)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The single byte range (first, last inclusive) a Range header asks for, or None for the
    whole content: no header, a malformed one (RFC 9110 says ignore it) or several ranges (we
    answer those with the whole content rather than multipart/byteranges). RangeNotSatisfiable
    when it starts at or past the end."""
    if not header:
        return None
    match = _RANGE.match(header)
    if not match:
        return None
    # A position longer than any file is just "past the end" (int() refuses > 4300 digits).
    first, last = (part if len(part) <= 18 else "9" * 18 for part in match.groups())
    if first == "" and last == "":
        return None
    if first == "":
        suffix = int(last)
        if suffix == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - suffix), size - 1
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(size)
    return start, min(int(last) if last else size - 1, size - 1)


def content_response(row, download: bool) -> Response:
    """The answer to GET or HEAD of the image in `row`, for the current request's headers."""
    digest, size = bytes(row["object_digest"]).hex(), row["size"]
    etag = f'"{digest}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        # Private bytes must not sit in shared caches; public ones may, but are revalidated each
        # time because the owner can make them private at any moment.
        "Cache-Control": "private, no-store" if row["is_private"] else "public, no-cache",
        "Vary": "Authorization, X-Access-Key",
        "Content-Disposition": content_disposition(
            "attachment" if download else "inline", download_name(row["filename"], row["content_type"])
        ),
        # Opened directly, the bytes are a picture, never a page: no script, no framing.
        "Content-Security-Policy": CONTENT_POLICY,
    }
    if request.if_none_match.contains_weak(digest):
        return Response(status=304, headers=headers)

    span = None
    if_range = request.headers.get("If-Range")
    if if_range is None or if_range.strip() == etag:
        span = byte_range(request.headers.get("Range"), size)
    start, end = span if span else (0, size - 1)
    if span:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    status = 206 if span else 200

    # Behind the stack, nginx may send a verified one-chunk object itself (stack/accel.py).
    accel = accel_response(digest, row, headers) if not span else None
    if accel is not None:
        return accel
    # A missing object (ObjectNotFound) or a corrupt first chunk (ChunkCorrupt) raises here,
    # before the answer starts; a later corrupt chunk cuts the body short.
    body = iter(()) if request.method == "HEAD" else services().blobs.open(digest, start, end, row["chunk_size"])
    response = Response(body, status=status, headers=headers, mimetype=row["content_type"], direct_passthrough=True)
    response.headers["Content-Type"] = row["content_type"]
    return response


def variant_row(row, variant: Variant) -> dict:
    """The image row with the variant's object in place of the original's, for
    `content_response`: its digest (the ETag), size, type, and the name with its extension."""
    stem = row["filename"].rsplit(".", 1)[0] if "." in row["filename"].lstrip(".") else row["filename"]
    return {
        **row,
        "object_digest": bytes.fromhex(variant.digest),
        "size": variant.size,
        "chunk_size": variant.chunk_size,
        "content_type": variant.content_type,
        "filename": f"{stem}.{variant.transform.extension}",
    }
