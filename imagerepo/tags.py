"""Tags: the `tags` and `image_tags` tables, tag names, and the /tags routes.

A tag name is normalised before anything else sees it: Unicode NFKC, whitespace trimmed and
collapsed to single spaces, lower case. The result must be 1-50 characters of letters, digits,
marks, spaces and `- _ . + # & '`. Commas separate tags in form fields and query parameters, and
`/` would break `/tags/<name>/images`, so neither is allowed. Because names are stored normalised,
"Sunset", " sunset " and "SUNSET" are one tag, shown as "sunset".

Counts and listings only ever include images the caller may see (public ones, and the caller's
own): a tag carried only by someone else's private images does not appear at all.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

import pydantic
from flask import Blueprint

from . import access
from .context import services
from .errors import ApiError
from .pagination import decode_parts, encode_cursor
from .validation import Schema, api

bp = Blueprint("tags", __name__)

MAX_TAG_LENGTH = 50
MAX_TAGS_PER_IMAGE = 30
MAX_LIST_LIMIT = 100
_PUNCTUATION = set(" -_.+#&'")


def normalise_tag(raw: str) -> str:
    """The stored form of a tag name; ValueError (with a message for the client) if invalid."""
    name = " ".join(unicodedata.normalize("NFKC", raw).split()).lower()
    if not name:
        raise ValueError("a tag cannot be empty")
    if len(name) > MAX_TAG_LENGTH:
        raise ValueError(f"a tag is at most {MAX_TAG_LENGTH} characters")
    bad = sorted({ch for ch in name if ch not in _PUNCTUATION and unicodedata.category(ch)[0] not in "LMN"})
    if bad:
        raise ValueError(f"a tag may hold letters, digits, spaces and - _ . + # & ' only, not {''.join(bad)!r}")
    return name


def _unique(names) -> list[str]:
    return list(dict.fromkeys(names))


def split_tags(values: list[str]) -> list[str]:
    """Form fields and query parameters: repeatable, each comma-separated; empty pieces ignored."""
    pieces = [piece for value in values for piece in value.split(",") if piece.strip()]
    names = _unique(normalise_tag(piece) for piece in pieces)
    if len(names) > MAX_TAGS_PER_IMAGE:
        raise ValueError(f"at most {MAX_TAGS_PER_IMAGE} tags")
    return names


# A JSON list of names (PUT /images/<id>/tags): every element must be a valid name.
TagName = Annotated[str, pydantic.AfterValidator(normalise_tag)]
TagNames = Annotated[list[TagName], pydantic.Field(max_length=MAX_TAGS_PER_IMAGE), pydantic.AfterValidator(_unique)]
# Repeatable and/or comma-separated text (multipart fields, query parameters).
TagFields = Annotated[
    list[Annotated[str, pydantic.StringConstraints(max_length=2000)]],
    pydantic.Field(
        max_length=MAX_TAGS_PER_IMAGE, description="Tag names: repeat the field and/or separate names with commas"
    ),
    pydantic.AfterValidator(split_tags),
]


# -- storage --------------------------------------------------------------------------------
def set_image_tags(conn, image_id: int, names: list[str]) -> None:
    """Make `names` (normalised) the image's tags, creating the tags that do not exist yet.
    The image's search vector follows by trigger (schema/004_catalog.sql)."""
    if names:
        # Sorted, so two uploads creating the same new tags take the index locks in one order.
        conn.execute(
            "INSERT INTO tags (name) SELECT unnest(%s::text[]) ORDER BY 1 ON CONFLICT (name) DO NOTHING",
            (sorted(names),),
        )
    conn.execute(
        "DELETE FROM image_tags WHERE image_id = %s"
        " AND tag_id NOT IN (SELECT id FROM tags WHERE name = ANY(%s::text[]))",
        (image_id, names),
    )
    if names:
        conn.execute(
            "INSERT INTO image_tags (image_id, tag_id) SELECT %s, id FROM tags WHERE name = ANY(%s::text[])"
            " ORDER BY id ON CONFLICT DO NOTHING",
            (image_id, names),
        )


def attach_tags(conn, rows: list[dict]) -> list[dict]:
    """Put each image row's sorted tag names in row["tags"]: one query for the whole page."""
    if not rows:
        return rows
    found = {
        r["image_id"]: r["names"]
        for r in conn.execute(
            "SELECT it.image_id, array_agg(t.name ORDER BY t.name) AS names"
            " FROM image_tags it JOIN tags t ON t.id = it.tag_id"
            " WHERE it.image_id = ANY(%s::bigint[]) GROUP BY it.image_id",
            ([r["id"] for r in rows],),
        )
    }
    for row in rows:
        row["tags"] = found.get(row["id"], [])
    return rows


def tag_ids(conn, names: list[str]) -> list[int] | None:
    """The ids of these tags, or None when one of them does not exist (nothing can match)."""
    rows = conn.execute("SELECT id FROM tags WHERE name = ANY(%s::text[])", (names,)).fetchall()
    return [r["id"] for r in rows] if len(rows) == len(set(names)) else None


def visible_tag_counts(viewer: int | None, contains: str | None, after: str | None, limit: int):
    """Tags in name order with the number of images `viewer` may see (public + own); tags with
    none are left out. One more row than `limit`, to tell whether there is a next page."""
    with services().db.transaction() as conn:
        return conn.execute(
            "SELECT t.name, count(*) AS images FROM tags t"
            " JOIN image_tags it ON it.tag_id = t.id JOIN images i ON i.id = it.image_id"
            " WHERE (NOT i.is_private OR i.owner_id = %(viewer)s)"
            "   AND (%(contains)s::text IS NULL OR strpos(t.name, %(contains)s) > 0)"
            "   AND (%(after)s::text IS NULL OR t.name > %(after)s)"
            " GROUP BY t.name ORDER BY t.name LIMIT %(n)s",
            {"viewer": viewer, "contains": contains, "after": after, "n": limit + 1},
        ).fetchall()


# -- routes ---------------------------------------------------------------------------------
def _name_fragment(raw: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", raw).split()).lower()


class TagsQuery(Schema):
    name: Annotated[str, pydantic.StringConstraints(max_length=MAX_TAG_LENGTH, pattern=r"^[^\x00]*$")] | None = (
        pydantic.Field(None, description="Only tags whose name contains this (case-insensitive)")
    )
    limit: int = pydantic.Field(50, ge=1, le=MAX_LIST_LIMIT)
    cursor: str | None = pydantic.Field(None, max_length=200, description="nextCursor of the previous page")


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
        raise ApiError(400, "invalid_cursor", "the cursor is not one this service handed out") from None


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
    contains = _name_fragment(query.name) if query.name else None
    after = _tag_after(query.cursor) if query.cursor else None
    rows = visible_tag_counts(viewer, contains or None, after, query.limit)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return TagListOut(
        tags=[TagOut(name=r["name"], images=r["images"]) for r in rows],
        nextCursor=encode_cursor(rows[-1]["name"]) if more else None,
    )


# GET /tags/<name>/images is defined in imagerepo/images.py, next to the listing it shares.
