"""Every request body is read through one checked stream, with a limit chosen per route.

What arrives is compared with what was announced. Under gunicorn a body simply ends early when
the client half-closes or drops the connection (gunicorn sets `wsgi.input_terminated`, so
werkzeug does not count bytes against Content-Length), and a broken chunked body raises
gunicorn's own parse errors, which used to surface as 500s. `CheckedInput` turns all of that
into the domain errors below, which `errors.py` maps to HTTP:

  * fewer bytes than Content-Length, or a chunked body that stops before its last chunk:
    `BodyIncomplete` (400);
  * a malformed chunked body (bad chunk size, missing CRLF, bad extension): `BodyMalformed` (400);
  * no byte for the server's read timeout (see `imagerepo.serving`): `BodyStalled` (408);
  * a chunked body past the route's limit: `BodyTooLarge` (413; with Content-Length, werkzeug
    refuses it from the header alone).

A body longer than its Content-Length cannot be seen here: HTTP/1.1 framing ends the body at
Content-Length, and whatever follows on the connection is the next request. The stream never
reads past Content-Length, so those bytes are never part of this request's body.

Limits: every route takes a body of at most `JSON_BODY_LIMIT` (the JSON routes), refused with
413 before it is parsed (at once when Content-Length says so; as soon as the limit is crossed
for a chunked body). Routes that declare a file body in their `@api` spec (a multipart form or a
binary request body) take up to the upload limit; the batch route raises its own further.
"""

from __future__ import annotations

from flask import Flask, request

KiB = 1024
MiB = 1024 * KiB
# Largest body of a route without a file: the JSON routes' bodies are a few hundred bytes.
JSON_BODY_LIMIT = 64 * KiB
# Multipart framing around a file part: boundaries, part headers and the small text fields.
MULTIPART_SLACK = 1 * MiB


class BodyError(Exception):
    """The request body could not be read as announced; the client's fault, never a 500."""


class BodyIncomplete(BodyError):
    pass


class BodyMalformed(BodyError):
    pass


class BodyStalled(BodyError):
    pass


class BodyTooLarge(BodyError):
    pass


class CheckedInput:
    """`wsgi.input` for one request: never reads past Content-Length, raises `BodyIncomplete`
    when the stream ends before it, and turns the server's read errors into `BodyError`s."""

    def __init__(self, stream, announced: int | None, limit=lambda: None):
        self._stream = stream
        self._announced = announced
        # The route's body limit, asked when needed (a view may still raise it before reading).
        self._limit = limit
        self.received = 0

    def _bounded(self, size: int | None) -> int | None:
        """`size` cut to what is still announced (None/-1: all of it)."""
        if self._announced is None:
            return size
        remaining = self._announced - self.received
        return remaining if size is None or size < 0 else min(size, remaining)

    def _counted(self, data: bytes, asked: int | None) -> bytes:
        self.received += len(data)
        if self._announced is not None:
            if not data and asked != 0 and self.received < self._announced:
                raise BodyIncomplete(
                    f"the request body ended after {self.received} of the {self._announced} bytes"
                    " its Content-Length announced"
                )
        elif data:
            self._check_limit()
        return data

    def _check_limit(self) -> None:
        """A body without Content-Length (chunked) past the route's limit is a 413. werkzeug's own
        cap stops reading *at* the limit and hands the truncated body on as if it were whole,
        so at the limit one more byte is asked for: if there is one, the body is too large."""
        limit = self._limit()
        if limit is None or self.received < limit:
            return
        if self.received > limit or self._call(self._stream.read, 1):
            raise BodyTooLarge(f"the request body is larger than this route's limit of {limit} bytes")

    def _call(self, method, size):
        try:
            return method() if size is None else method(size)
        except BodyError:
            raise
        except TimeoutError:
            raise BodyStalled("no part of the request body arrived within the read timeout") from None
        except Exception as err:  # noqa: BLE001 - whatever the server's stream raises is about the body
            # gunicorn: NoMoreData (body cut short), InvalidChunkSize, ChunkMissingTerminator,
            # InvalidChunkExtension, connection resets; werkzeug's dev server: OSError/ValueError.
            raise _classified(err) from None

    def read(self, size: int | None = -1) -> bytes:
        size = self._bounded(size)
        if size == 0:
            return b""
        return self._counted(self._call(self._stream.read, size), size)

    def readline(self, size: int | None = -1) -> bytes:
        size = self._bounded(size)
        if size == 0:
            return b""
        return self._counted(self._call(self._stream.readline, size), size)

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines = []
        for line in self:
            lines.append(line)
            if 0 < hint <= sum(map(len, lines)):
                break
        return lines

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


def _classified(err: Exception) -> BodyError:
    name = type(err).__name__
    if name == "NoMoreData" or isinstance(err, (ConnectionError, EOFError)):
        return BodyIncomplete("the request body was cut short")
    return BodyMalformed(f"the request body is malformed ({name})")


def _announced_length(environ) -> int | None:
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None  # the server decodes the chunks and ends the stream after the last one
    raw = environ.get("CONTENT_LENGTH", "")
    try:
        return max(int(raw), 0) if raw.strip() else None
    except ValueError:
        return None  # servers refuse such requests before the application sees them


def takes_file_body(view) -> bool:
    """Whether a view declares a file body (multipart form or raw bytes) in its `@api` spec."""
    spec = getattr(view, "openapi", None) or {}
    return spec.get("form") is not None or spec.get("request_doc") is not None


def install(app: Flask, max_upload_bytes: int) -> None:
    """Check every request's body and give each route its body limit."""
    app.config["MAX_CONTENT_LENGTH"] = JSON_BODY_LIMIT
    upload_limit = max_upload_bytes + MULTIPART_SLACK
    inner = app.wsgi_app

    def checked_body(environ, start_response):
        environ["wsgi.input"] = CheckedInput(
            environ["wsgi.input"], _announced_length(environ), lambda: request.max_content_length
        )
        return inner(environ, start_response)

    app.wsgi_app = checked_body  # type: ignore[method-assign]  # Flask documents wrapping it

    @app.before_request
    def _route_body_limit():
        if request.endpoint and takes_file_body(app.view_functions.get(request.endpoint)):
            request.max_content_length = upload_limit
