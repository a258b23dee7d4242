"""The image listing: a page of what a viewer may see (their own and public images), filtered,
searched and ordered, with the cursor of the next page. GET /images and GET /tags/<name>/images
both answer with it."""

from __future__ import annotations

from ..context import services
from ..pagination import decode_class_cursor, decode_time_cursor, encode_class_cursor, encode_time_cursor, page
from ..plans import view as plan_view
from ..tags import queries as tag_queries
from ..variants.images import thumbnail_url
from . import queries
from .errors import LoginRequired
from .schemas import ImageFilters, ImageListOut, ListQuery, image_out

# The error answers of a listing, for the OpenAPI document of every route that answers with one.
LIST_ERRORS = {400: "Invalid cursor", 422: "Invalid limit, mine or filter value"}


def _resolve(conn, filters: ImageFilters) -> queries.Filters | None:
    """Names to ids; None when a named tag or owner does not exist (nothing can match)."""
    where = queries.Filters(
        search=queries.search_query(filters.q) if filters.q else None,
        created_after=filters.created_after,
        created_before=filters.created_before,
        content_type=filters.type,
    )
    if filters.tag:
        ids = tag_queries.tag_ids(conn, filters.tag)
        if ids is None:
            return None
        where.tag_ids = ids
    if filters.owner is not None:
        owner_id = queries.user_id_by_name(conn, filters.owner)
        if owner_id is None:
            return None
        where.owner_id = owner_id
    return where


def list_images(viewer: int | None, mine: bool, limit: int, cursor: str | None, filters: ImageFilters):
    """A page of what `viewer` may see (own and public images, or only own with `mine`), each
    row with its tags, and the cursor of the next page."""
    ranked = bool(filters.q)
    position = (decode_class_cursor(cursor) if ranked else decode_time_cursor(cursor)) if cursor else None
    with services().db.transaction() as conn:
        where = _resolve(conn, filters)
        if where is None:
            return [], None
        rows, next_cursor = page(
            queries.page_rows(conn, *queries.list_query(viewer, mine, limit, position, where)),
            limit,
            (lambda r: encode_class_cursor(r["class"], r["created_at"], r["id"]))
            if ranked
            else (lambda r: encode_time_cursor(r["created_at"], r["id"])),
        )
        return plan_view.attach(conn, tag_queries.attach_tags(conn, rows), viewer), next_cursor


def listing(viewer: int | None, query: ListQuery) -> ImageListOut:
    if query.mine and viewer is None:
        raise LoginRequired("mine=1 needs a bearer token")
    rows, next_cursor = list_images(viewer, query.mine, query.limit, query.cursor, query)
    if query.thumbnail is None:
        return ImageListOut(images=[image_out(r, viewer) for r in rows], nextCursor=next_cursor)
    return ImageListOut(
        images=[image_out(r, viewer, thumbnailUrl=thumbnail_url(r, viewer, query.thumbnail)) for r in rows],
        nextCursor=next_cursor,
    )
