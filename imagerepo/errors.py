"""The one error shape: {"error": {"code": "...", "message": "..."}} with the right status."""

from __future__ import annotations

import errno
import logging

import psycopg
from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from .request_body import BodyError, BodyIncomplete, BodyMalformed, BodyStalled, BodyTooLarge

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details=None, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, details=None, headers=None):
    body = {"error": {"code": code, "message": message}}
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

# The request layer's errors: the client sent a body that cannot be read as announced.
_BODY_ERRORS = {
    BodyIncomplete: (400, "incomplete_body"),
    BodyMalformed: (400, "malformed_body"),
    BodyStalled: (408, "request_timeout"),
    BodyTooLarge: (413, "too_large"),
}


def is_disk_full(err: BaseException) -> bool:
    """The chunk store's filesystem (ENOSPC, or a quota) or PostgreSQL's disk is full."""
    if isinstance(err, psycopg.errors.DiskFull):
        return True
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(err: ApiError):
        return error_response(err.status, err.code, err.message, err.details, err.headers)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        status = err.code or 500
        headers = {}
        if status == 405 and err.valid_methods:
            headers["Allow"] = ", ".join(err.valid_methods)
        message = err.description or err.name
        if status == 413:
            message = "request body too large"
        return error_response(status, _HTTP_CODES.get(status, "http_error"), message, headers=headers)

    @app.errorhandler(BodyError)
    def _body_error(err: BodyError):
        status, code = _BODY_ERRORS.get(type(err), (400, "bad_request"))
        log.info("request body refused: %s", err)
        return error_response(status, code, str(err))

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        if is_disk_full(err):
            # Not a bug: what was staged for the request has been dropped on the way out.
            log.error("storage full: %s", err)
            return error_response(507, "insufficient_storage", "the server has no room to store this request")
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal server error")
