"""Variants of an image, as the image API asks for them: which transform a request names (the
owner may use any size, others the grid), and the stored variant for it.

Access to the image is decided before anything here runs (imagerepo.access): a variant is
shown to exactly those who may see the original. Image rows are the dicts of images/queries.py.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import pipeline, transform
from .service import Variant, variant_for


def requested(row, viewer_id: int | None, args: Iterable[tuple[str, str]]) -> transform.Transform | None:
    """The transform the query parameters ask for, or None for the original. Raises
    BadTransform (422)."""
    return transform.parse(
        args,
        row["content_type"],
        any_size=viewer_id is not None and viewer_id == row["owner_id"],
        formats=pipeline.supported_formats(),
    )


def off_grid(wanted: transform.Transform) -> bool:
    return any(side and side not in transform.SIZES for side in (wanted.width, wanted.height))


def variant_of(row, wanted: transform.Transform) -> Variant:
    """The stored variant of the image's content, made now if it does not exist."""
    return variant_for(bytes(row["object_digest"]).hex(), row["content_type"], wanted, off_grid=off_grid(wanted))
