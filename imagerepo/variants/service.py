"""Getting a variant: find it, or make it once across every worker and store it like an upload.

`variant_for(source_digest, source_type, transform)` is the whole protocol:

1. Look the (source object, transform key) row up; found, done (one indexed read).
2. Otherwise take a transaction-scoped PostgreSQL advisory lock on the pair, so of ten workers
   asking at once one makes it and nine wait; look again (a waiter finds the row the maker
   committed and returns it, having rendered nothing).
3. The maker checks the limits (a per-source cap on variants made on request, a rate limit on
   off-grid sizes), share-locks the source object's row (the collector skips locked rows, so the
   source is not freed while it is read), renders the variant from the stored source straight
   into a blob store stager, commits the staged object (one reference, chunks deduplicated like
   any upload's) and inserts the row, all in that one transaction. A failure leaves nothing: the
   rollback drops the reference and the row, and the stager's leftovers are removed.

Lock order: advisory lock, source object row, derived object row, chunk rows. The collector
takes source rows, then chunk rows, then (through the variants trigger) derived object rows; a
maker that holds a source row is skipped by it, so the two never wait on each other in a cycle.

Rendering holds a pooled connection (idle in its transaction) for the time of one render; the
waiters hold one each too, which the pool (IMAGEREPO_DB_POOL_MAX) bounds.

Pure domain code: nothing here knows HTTP. Callers outside a request (the background worker)
pass their own `Services`.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import BinaryIO, cast

from ..blobstore import ObjectNotFound
from ..context import Services, services
from . import pipeline, queries
from .errors import VariantLimitReached, VariantRateLimited, VariantSourceGone
from .source import ObjectFile
from .transform import Transform

log = logging.getLogger(__name__)

RATE_WINDOW_SECONDS = 3600


@dataclasses.dataclass(frozen=True)
class Variant:
    """A stored variant: its derived object and what it is."""

    digest: str
    size: int
    chunk_size: int
    content_type: str
    width: int
    height: int
    transform: Transform


def _variant(row, transform: Transform) -> Variant:
    return Variant(
        bytes(row["object_digest"]).hex(),
        row["size"],
        row["chunk_size"],
        row["content_type"],
        row["width"],
        row["height"],
        transform,
    )


def find_variant(source_digest: str, transform: Transform, svc: Services | None = None) -> Variant | None:
    """The stored variant, or None when it has not been made."""
    svc = svc or services()
    with svc.db.read() as conn:
        row = queries.find(conn, source_digest, transform.key)
    return _variant(row, transform) if row else None


def existing_variants(source_digest: str, svc: Services | None = None) -> list[Variant]:
    """Every stored variant of the source, oldest first."""
    svc = svc or services()
    with svc.db.read() as conn:
        rows = queries.of_source(conn, source_digest)
    return [_variant(row, Transform.from_key(row["transform"])) for row in rows]


def variant_for(
    source_digest: str,
    source_type: str,
    transform: Transform,
    *,
    made_by: str = "request",
    off_grid: bool = False,
    svc: Services | None = None,
) -> Variant:
    """The variant `transform` of the source object, made and stored if it does not exist yet.

    `made_by` is "request" (counts against the per-source cap) or "worker" (background jobs:
    no limits); `off_grid` marks a side outside the size grid (rate limited). Raises
    VariantUnsupported, VariantTooLarge (the pipeline), VariantLimitReached, VariantRateLimited,
    VariantSourceGone."""
    svc = svc or services()
    found = find_variant(source_digest, transform, svc)
    if found is not None:
        return found
    key = transform.key
    # The source's manifest is read now, on a connection of its own that goes back to the pool:
    # under the lock below a thread holds exactly one connection, so waiters and the maker can
    # never exhaust the pool between them.
    try:
        source = ObjectFile(svc.blobs, source_digest)
    except ObjectNotFound:
        raise VariantSourceGone("the image's content is gone") from None
    with svc.db.transaction() as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (queries.lock_key(source_digest, key),))
        row = queries.find(conn, source_digest, key)
        if row is not None:  # made by whoever held the lock before us
            return _variant(row, transform)
        if made_by == "request":
            _check_limits(conn, svc, source_digest, off_grid)
        if not queries.lock_source(conn, source_digest):
            raise VariantSourceGone("the image's content is gone")
        _make(conn, svc, source, source_digest, source_type, transform, made_by, off_grid)
        row = queries.find(conn, source_digest, key)
    log.info("variant %s of %s made (%s)", key, source_digest[:12], made_by)
    return _variant(row, transform)


def get_or_create_variant(source_digest: str, source_type: str, transform: Transform, **options) -> str:
    """The agreed entry point for other features (share links of a variant): the derived
    object's digest, made if needed. Same options and errors as `variant_for`."""
    return variant_for(source_digest, source_type, transform, **options).digest


def _check_limits(conn, svc: Services, source_digest: str, off_grid: bool) -> None:
    requested, recent_off_grid = queries.counts(conn, source_digest, RATE_WINDOW_SECONDS)
    cap = svc.config.variant_max_per_image
    if requested >= cap:
        raise VariantLimitReached(
            f"this image has {requested} variants made on request, the limit is {cap};"
            " ask for one of its existing variants (listed in the image's JSON)"
        )
    per_hour = svc.config.variant_off_grid_per_hour
    if off_grid and recent_off_grid >= per_hour:
        raise VariantRateLimited(
            f"at most {per_hour} sizes outside the size grid per image per hour; use a grid size",
            retry_after=RATE_WINDOW_SECONDS // 6,
        )


def _make(
    conn,
    svc: Services,
    source: ObjectFile,
    source_digest: str,
    source_type: str,
    transform: Transform,
    made_by: str,
    off_grid: bool,
) -> None:
    stager = svc.blobs.stager()
    try:
        info = pipeline.render(cast(BinaryIO, source), source_type, transform, stager)
        staged = stager.finish()
        # Bytes identical to the source (a re-encode that changed nothing) take no reference:
        # a source holding itself would never be collected.
        if staged.digest != source_digest:
            svc.blobs.commit(conn, staged)
        queries.insert(
            conn,
            source_digest,
            transform.key,
            staged.digest,
            info.content_type,
            info.width,
            info.height,
            made_by,
            off_grid,
        )
    finally:
        stager.abort()
