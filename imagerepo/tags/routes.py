"""The /tags routes: tags with the number of images the caller can see carrying each, and the
images of one tag (the image listing with that tag as a filter)."""

from __future__ import annotations

from typing import Annotated

import pydantic
from flask import Blueprint

from .. import access
from ..images.listing import LIST_ERRORS, listing
from ..images.schemas import ImageListOut, ListQuery
from ..pagination import Cursor, InvalidCursor, PageSize, decode_parts, encode_cursor, page
from ..validation import Schema, api
from .names import MAX_TAG_LENGTH, TagNotFound, name_fragment, normalise_tag
from .queries import visible_tag_counts

bp = Blueprint("tags", __name__)


class TagsQuery(Schema):
    name: Annotated[str, pydantic.StringConstraints(max_length=MAX_TAG_LENGTH, pattern=r"^[^\x00]*$")] | None = (
        pydantic.Field(None, description="Only tags whose name contains this (case-insensitive)")
    )
    limit: PageSize = 50
    cursor: Cursor | None = None


class TagOut(Schema):
    name: str
    images: int = pydantic.Field(description="Images carrying this tag that the caller can see")


class TagListOut(Schema):
    tags: list[TagOut]
    nextCursor: str | None


def _tag_after(cursor: str) -> str:
    (name,) = decode_parts(cursor, 1)
    try:
        return normalise_tag(name)
    except ValueError:
        raise InvalidCursor() from None


@bp.get("/tags")
@api(
    query=TagsQuery,
    response=TagListOut,
    auth="optional",
    responses={400: "Invalid cursor", 422: ""},
    summary="Tags in name order, with how many images the caller can see carrying each",
)
def list_tags(query: TagsQuery):
    viewer = access.caller_id(optional=True)
    contains = name_fragment(query.name) if query.name else None
    after = _tag_after(query.cursor) if query.cursor else None
    rows, next_cursor = page(
        visible_tag_counts(viewer, contains or None, after, query.limit),
        query.limit,
        lambda r: encode_cursor(r["name"]),
    )
    return TagListOut(tags=[TagOut(name=r["name"], images=r["images"]) for r in rows], nextCursor=next_cursor)


@bp.get("/tags/<name>/images")
@api(
    query=ListQuery,
    response=ImageListOut,
    auth="optional",
    responses={**LIST_ERRORS, 404: "Not a valid tag name"},
    summary="Images carrying this tag: GET /images?tag=<name>, with the same filters, pages and access rules",
)
def tag_images_route(name: str, query: ListQuery):
    try:
        tag = normalise_tag(name)
    except ValueError:
        raise TagNotFound() from None
    query.tag = [tag] + [t for t in query.tag if t != tag]
    return listing(access.caller_id(optional=True), query)
