"""The one error shape, {"error": {"code": "...", "message": "..."}} with the right status, and
the one place that decides it.

Domain code raises its own exceptions (the blob store's, UnsupportedImage, InvalidCursor,
NameTaken, ImageNotFound, ...), which know nothing of HTTP; `DOMAIN_ERRORS` below maps each class
to its status and code. `ApiError` is for the HTTP layer itself (request parsing, health).
Anything else is a 500 `internal_error`, logged, with nothing of it shown to the client.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
from collections.abc import Callable
from typing import Any

import psycopg
from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from .accounts import (
    AccountDisabled,
    AccountGone,
    AdminOnly,
    CannotDisableSelf,
    InvalidCredentials,
    NameTaken,
    UserNotFound,
)
from .blobstore.errors import ChunkCorrupt, EmptyUpload, ObjectNotFound, StoreUnavailable, UploadTooLarge
from .images.errors import (
    ImageNotFound,
    LoginRequired,
    NotOwner,
    RangeNotSatisfiable,
    TooManyAttempts,
    TooManyFiles,
    WrongAccessKey,
)
from .imagetypes import TooManyPixels, UnsupportedImage
from .login_limits import TooManyLogins
from .pagination import InvalidCursor
from .plans.errors import (
    ImageQuotaExceeded,
    InvalidLifetime,
    LinkNotFound,
    PlanForbids,
    PlanNameTaken,
    PlanNotFound,
    StorageQuotaExceeded,
    UploadQuotaExceeded,
)
from .request_body import BodyIncomplete, BodyMalformed, BodyStalled, BodyTooLarge
from .tags.names import TagNotFound
from .variants.errors import (
    VariantLimitReached,
    VariantRateLimited,
    VariantSourceGone,
    VariantTooLarge,
    VariantUnsupported,
)
from .variants.transform import BadTransform

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer decided by the HTTP layer itself (a malformed request, an unhealthy service)."""

    def __init__(self, status: int, code: str, message: str, details=None, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


@dataclasses.dataclass(frozen=True)
class Answer:
    """How a domain error is answered: status and code; the message is the error's own text
    unless `message` words it for clients; `headers` adds headers from the error's data."""

    status: int
    code: str
    message: Callable[[Any], str] = str
    headers: Callable[[Any], dict[str, str]] | None = None


DOMAIN_ERRORS: dict[type[Exception], Answer] = {
    InvalidCursor: Answer(400, "invalid_cursor"),
    EmptyUpload: Answer(400, "empty_upload", lambda err: "the file is empty"),
    InvalidCredentials: Answer(401, "invalid_credentials"),
    AccountGone: Answer(401, "unauthorized"),
    LoginRequired: Answer(401, "unauthorized", headers=lambda err: {"WWW-Authenticate": "Bearer"}),
    AccountDisabled: Answer(403, "account_disabled"),
    AdminOnly: Answer(403, "forbidden"),
    NotOwner: Answer(403, "forbidden"),
    ImageNotFound: Answer(404, "not_found"),
    WrongAccessKey: Answer(404, "not_found"),
    ObjectNotFound: Answer(404, "not_found", lambda err: "no such image"),
    TagNotFound: Answer(404, "not_found"),
    UserNotFound: Answer(404, "not_found"),
    NameTaken: Answer(409, "conflict"),
    # Plans, quotas and share links (imagerepo/plans): the code names the quota passed.
    StorageQuotaExceeded: Answer(403, "quota_bytes"),
    ImageQuotaExceeded: Answer(403, "quota_images"),
    UploadQuotaExceeded: Answer(413, "quota_upload_bytes"),
    PlanForbids: Answer(403, "plan_forbids"),
    PlanNotFound: Answer(404, "not_found"),
    LinkNotFound: Answer(404, "not_found"),
    PlanNameTaken: Answer(409, "conflict"),
    InvalidLifetime: Answer(422, "validation_failed"),
    CannotDisableSelf: Answer(409, "conflict"),
    UploadTooLarge: Answer(413, "too_large", lambda err: f"the image is larger than the limit of {err.limit} bytes"),
    TooManyFiles: Answer(413, "too_many_files"),
    UnsupportedImage: Answer(415, "unsupported_media_type"),
    RangeNotSatisfiable: Answer(
        416, "range_not_satisfiable", headers=lambda err: {"Content-Range": f"bytes */{err.size}"}
    ),
    TooManyPixels: Answer(422, "image_too_large"),
    VariantSourceGone: Answer(404, "not_found"),
    VariantUnsupported: Answer(415, "unsupported_media_type"),
    BadTransform: Answer(422, "invalid_transform"),
    VariantTooLarge: Answer(422, "image_too_large"),
    VariantLimitReached: Answer(422, "variant_limit"),
    VariantRateLimited: Answer(429, "too_many_variants", headers=lambda err: {"Retry-After": str(err.retry_after)}),
    TooManyAttempts: Answer(429, "too_many_attempts", headers=lambda err: {"Retry-After": str(err.retry_after)}),
    TooManyLogins: Answer(429, "too_many_attempts", headers=lambda err: {"Retry-After": str(err.retry_after)}),
    ChunkCorrupt: Answer(
        500, "storage_corrupt", lambda err: "the stored content failed verification; the operator has been told"
    ),
    # The chunk store (S3) did not answer, or answered with an error, within its retries and
    # timeouts: nothing was committed (an upload refers to no chunk it did not store).
    StoreUnavailable: Answer(
        503,
        "storage_unavailable",
        lambda err: "the storage backend is unavailable; try again later",
        headers=lambda err: {"Retry-After": "5"},
    ),
    # The request layer's errors: the client sent a body that cannot be read as announced.
    BodyIncomplete: Answer(400, "incomplete_body"),
    BodyMalformed: Answer(400, "malformed_body"),
    BodyStalled: Answer(408, "request_timeout"),
    BodyTooLarge: Answer(413, "too_large"),
}


@dataclasses.dataclass(frozen=True)
class Problem:
    """What the client is told about an error."""

    status: int
    code: str
    message: str
    details: Any = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


def describe(err: BaseException) -> Problem | None:
    """The answer for `err`, or None when it is not an error we answer for (a bug: 500)."""
    if isinstance(err, ApiError):
        return Problem(err.status, err.code, err.message, err.details, err.headers)
    for cls in type(err).__mro__:
        answer = DOMAIN_ERRORS.get(cls)
        if answer is not None:
            headers = answer.headers(err) if answer.headers else {}
            return Problem(answer.status, answer.code, answer.message(err), headers=headers)
    return None


def error_response(status: int, code: str, message: str, details=None, headers=None) -> Response:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if details is not None:
        body["error"]["details"] = details
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


# Werkzeug's exception names, as snake_case codes clients can switch on.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    411: "length_required",
    413: "too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    422: "validation_failed",
    429: "too_many_requests",
}


def is_disk_full(err: BaseException) -> bool:
    """The chunk store's filesystem (ENOSPC, or a quota) or PostgreSQL's disk is full."""
    if isinstance(err, psycopg.errors.DiskFull):
        return True
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)


def register_error_handlers(app: Flask) -> None:
    def _answer(err: Exception) -> Response:
        problem = describe(err)
        assert problem is not None  # registered only for the classes describe() knows
        return error_response(problem.status, problem.code, problem.message, problem.details, problem.headers)

    answered: tuple[type[Exception], ...] = (ApiError, *DOMAIN_ERRORS)
    for cls in answered:
        app.register_error_handler(cls, _answer)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        status = err.code or 500
        headers = {}
        if isinstance(err, MethodNotAllowed) and err.valid_methods:
            headers["Allow"] = ", ".join(err.valid_methods)
        message = err.description or err.name
        if status == 413:
            message = "request body too large"
        return error_response(status, _HTTP_CODES.get(status, "http_error"), message, headers=headers)

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        if is_disk_full(err):
            # Not a bug: what was staged for the request has been dropped on the way out.
            log.error("storage full: %s", err)
            return error_response(507, "insufficient_storage", "the server has no room to store this request")
        if isinstance(err, psycopg.OperationalError):
            # PostgreSQL could not be reached or dropped the connection (a restart, a failover,
            # no free connection): not the client's fault and not a bug; the pool replaces the
            # broken connection, so trying again shortly works.
            log.error("database unavailable: %s", err)
            return error_response(
                503,
                "database_unavailable",
                "the database is unavailable; try again later",
                headers={"Retry-After": "5"},
            )
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal server error")
