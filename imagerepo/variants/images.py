"""Variants of an image, as the image API asks for them: which transform a request names (the
owner may use any size, others the grid), and the stored variant for it.

Access to the image is decided before anything here runs (imagerepo.access): a variant is
shown to exactly those who may see the original. Image rows are the dicts of images/queries.py.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable

from . import pipeline, transform
from .service import Variant, existing_variants, variant_for


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


# -- variants as the image JSON shows them -----------------------------------------------------
def url(row, wanted: transform.Transform, viewer_id: int | None) -> str:
    """The content path asking for `wanted`: only the parameters that differ from the defaults,
    which parse back to the same key. The owner's view of a private image carries its access
    key, so the URL works where no Authorization header is sent (an <img> tag); nobody else
    ever gets one."""
    params = []
    if wanted.width:
        params.append(f"width={wanted.width}")
    if wanted.height:
        params.append(f"height={wanted.height}")
    if wanted.fit != "inside":
        params.append(f"fit={wanted.fit}")
    if wanted.format != transform.default_format(row["content_type"]):
        params.append(f"format={wanted.format}")
    if wanted.quality and wanted.quality != transform.DEFAULT_QUALITY:
        params.append(f"quality={wanted.quality}")
    if row["is_private"] and viewer_id is not None and viewer_id == row["owner_id"] and row["access_key"]:
        params.append("accesskey=" + urllib.parse.quote(row["access_key"], safe=""))
    return f"/images/{row['id']}/content?" + "&".join(params)


def predicted_size(row, wanted: transform.Transform) -> tuple[int | None, int | None]:
    """The size a variant not made yet will have (never enlarged), from the image's own."""
    width, height = row["width"], row["height"]
    if not width or not height:
        return None, None
    if wanted.fit == "cover":
        return min(wanted.width, width), min(wanted.height, height)
    scale = min(
        wanted.width / width if wanted.width else 1.0,
        wanted.height / height if wanted.height else 1.0,
        1.0,
    )
    return max(1, round(width * scale)), max(1, round(height * scale))


def listed(row, viewer_id: int | None) -> list[dict]:
    """The variants of the image a viewer may ask for: those that exist (off-grid ones for the
    owner only, the only one who may ask for them), then those the background worker makes."""
    owner = viewer_id is not None and viewer_id == row["owner_id"]
    shown: dict[str, dict] = {}
    for made in existing_variants(bytes(row["object_digest"]).hex()):
        if owner or not off_grid(made.transform):
            shown[made.transform.key] = {
                "width": made.width,
                "height": made.height,
                "format": made.transform.format,
                "url": url(row, made.transform, viewer_id),
                "exists": True,
            }
    for planned in transform.background_transforms(row["content_type"]):
        if planned.key not in shown:
            width, height = predicted_size(row, planned)
            shown[planned.key] = {
                "width": width,
                "height": height,
                "format": planned.format,
                "url": url(row, planned, viewer_id),
                "exists": False,
            }
    return list(shown.values())


def thumbnail_url(row, viewer_id: int | None, height: int) -> str:
    return url(
        row, transform.normalise(0, height, "inside", transform.default_format(row["content_type"]), 80), viewer_id
    )
