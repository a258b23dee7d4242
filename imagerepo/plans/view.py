"""What the owner's image JSON shows of the plan: the thumbnail URLs of the plan's heights,
the original's URL if the plan gives it, and the image's live share links. Others see none of
it. A listing attaches it to all its rows in two queries (`attach`); a single image gets it
from `owner_fields` on its own."""

from __future__ import annotations

import urllib.parse

from ..context import services
from . import link_queries, queries
from .links import link_url
from .schemas import LinkOut, VariantIn

_KEY = "plan_view"


def link_out(row, with_url: bool = True) -> LinkOut:
    variant = None
    if row["height"] is not None or row["format"] is not None:
        variant = VariantIn(height=row["height"], format=row["format"])
    return LinkOut(
        id=row["id"],
        url=link_url(row) if with_url else None,
        expiresAt=row["expires_at"],
        createdAt=row["created_at"],
        variant=variant,
    )


def attach(conn, rows: list[dict], viewer: int | None) -> list[dict]:
    """Give each of `viewer`'s own rows its plan view (others' rows are left alone)."""
    own = [r for r in rows if r["owner_id"] == viewer]
    if viewer is None or not own:
        return rows
    plan = queries.user_plan(conn, viewer)
    links: dict[int, list] = {}
    for link in link_queries.live_links(conn, [r["id"] for r in own]):
        links.setdefault(link["image_id"], []).append(link)
    for row in own:
        row[_KEY] = (plan, links.get(row["id"], []))
    return rows


def owner_fields(row) -> dict:
    """The ImageOut fields the owner sees of their plan for this image row."""
    if _KEY not in row:
        with services().db.transaction() as conn:
            attach(conn, [row], row["owner_id"])
    plan, links = row[_KEY]
    if plan is None:
        return {}
    base = f"/images/{row['id']}/content"
    key = (
        f"accesskey={urllib.parse.quote(row['access_key'], safe='')}" if row["is_private"] and row["access_key"] else ""
    )
    return {
        "thumbnails": [
            {"height": height, "url": f"{base}?height={height}" + (f"&{key}" if key else "")}
            for height in plan["thumbnail_heights"]
        ],
        "originalUrl": (base + (f"?{key}" if key else "")) if plan["original_via_links"] else None,
        "shareLinks": [link_out(link) for link in links],
    }
