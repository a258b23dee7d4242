"""Operational routes: /healthz and /metrics (Prometheus text format)."""

from __future__ import annotations

import hmac
import tempfile

from flask import Blueprint, Response, current_app, request
from flask_jwt_extended import verify_jwt_in_request

from .context import services
from .errors import ApiError
from .validation import Schema, api

bp = Blueprint("health", __name__)


class HealthOut(Schema):
    status: str
    database: str
    blobStore: str


@bp.get("/healthz")
@api(
    response=HealthOut,
    auth=False,
    responses={503: "Database or chunk store unavailable"},
    summary="Liveness: the database answers and the chunk store is writable",
)
def healthz():
    svc = services()
    problems = {}
    try:
        with svc.db.read() as conn:
            conn.execute("SELECT 1")
    except Exception as err:  # any failure means unhealthy, whatever its type
        problems["database"] = type(err).__name__
    try:
        svc.config.blob_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=svc.config.blob_dir, prefix=".healthz-"):
            pass
    except OSError as err:
        problems["blobStore"] = err.strerror or type(err).__name__
    if problems:
        raise ApiError(503, "unhealthy", "; ".join(f"{k}: {v}" for k, v in problems.items()))
    return HealthOut(status="ok", database="ok", blobStore="ok")


def _require_metrics_reader() -> None:
    """The scraper's IMAGEREPO_METRICS_TOKEN, or an administrator's access token.

    Not public: the upload counters would tell anyone whether bytes they upload were already
    stored by someone else (a dedup oracle for private content)."""
    svc = services()
    sent = request.headers.get("Authorization", "")
    if (
        svc.config.metrics_token
        and sent.startswith("Bearer ")
        and hmac.compare_digest(sent[len("Bearer ") :].encode(), svc.config.metrics_token.encode())
    ):
        return
    from .admin import require_admin

    verify_jwt_in_request()
    require_admin()


@bp.get("/metrics")
@api(
    auth="view",
    summary="Prometheus metrics of every worker (IMAGEREPO_METRICS_TOKEN or an admin token)",
    responses={403: "Not an administrator"},
    response_doc={"content": {"text/plain": {"schema": {"type": "string"}}}},
)
def metrics():
    _require_metrics_reader()
    from .metrics import CONTENT_TYPE, scrape

    return Response(scrape(current_app), content_type=CONTENT_TYPE)
