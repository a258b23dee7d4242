"""Background variants: the job an upload enqueues, and what the worker does with it.

An upload that stored new content enqueues one job, inside the upload's own transaction (a
committed upload never loses its job; a rolled-back one leaves none). The job makes
`transform.background_transforms(type)`: seed 003's 200 and 400 px thumbnail heights and seed
002's PNG <-> JPEG twin, through the same `variant_for` as a request, so a job that runs twice
or races a request for the same variant makes it once. Requests stay the fallback for a job
that has not run yet.

The queue is procrastinate's (migrations/008_procrastinate.sql): PostgreSQL only, no broker.
Two procrastinate Apps share the task's name: this module's, on a sync connector that is never
opened, only defers on a connection it is given (deferring without one fails, so no job can be
enqueued outside a transaction by mistake); the worker's (imagerepo/worker.py) runs the task
on procrastinate's async connector. See the package docstring for why not one App.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from . import transform
from .errors import VariantError
from .service import variant_for

if TYPE_CHECKING:
    import procrastinate

    from ..context import Services

log = logging.getLogger(__name__)

QUEUE = "variants"
TASK_NAME = "imagerepo.variants.make_background"


@functools.cache
def _deferring_app() -> procrastinate.App:
    # Imported here: procrastinate is only needed by a process that enqueues or works.
    import procrastinate

    return procrastinate.App(connector=procrastinate.SyncPsycopgConnector())


def enqueue(conn, source_digest: str, source_type: str) -> None:
    """Enqueue the background variants of a source, on `conn` inside the caller's transaction."""
    if not transform.background_transforms(source_type):
        return
    _deferring_app().configure_task(TASK_NAME, queue=QUEUE, connection=conn).defer(
        source_digest=source_digest, source_type=source_type
    )


def make_background(svc: Services, source_digest: str, source_type: str) -> int:
    """The job: make each background variant the source does not have yet; how many were made.
    A variant this source cannot have (an undecodable image, DICOM without decodable pixels,
    too many pixels) or a source deleted since is logged and skipped, not retried: retrying
    would fail the same way."""
    made = 0
    for wanted in transform.background_transforms(source_type):
        try:
            variant_for(source_digest, source_type, wanted, made_by="worker", svc=svc)
            made += 1
        except VariantError as err:
            log.info("background variant %s of %s skipped: %s", wanted.key, source_digest[:12], err)
    return made
