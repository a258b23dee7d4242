"""Keyset pages for every listing (images by date or by search rank, tags, audit records, admin
users): one page size limit, one way to cut a page and make the next cursor, and opaque cursors
(the sort key of a page's last row, base64url-encoded), so a cursor a client did not get from us
is always the same InvalidCursor (400 `invalid_cursor`)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Annotated, TypeVar

import pydantic

_MAX_ID = 2**63

MAX_PAGE_SIZE = 100
# The `limit` query parameter of every listing; each gives its own default.
PageSize = Annotated[int, pydantic.Field(ge=1, le=MAX_PAGE_SIZE)]
# The `cursor` query parameter of every listing. The document states the alphabet cursors are
# made of; anything else, of that alphabet or not, is the same 400 `invalid_cursor`.
Cursor = Annotated[
    str,
    pydantic.Field(max_length=200),
    pydantic.WithJsonSchema(
        {
            "type": "string",
            "maxLength": 200,
            "pattern": "^[A-Za-z0-9_-]*$",
            "description": "nextCursor of the previous page (opaque: any other value is 400 invalid_cursor)",
        }
    ),
]

Row = TypeVar("Row")


def page(rows: Sequence[Row], limit: int, cursor_of: Callable[[Row], str]) -> tuple[list[Row], str | None]:
    """Cut a page from `rows`, fetched with LIMIT limit + 1: the first `limit` rows, and the
    cursor of the next page (made from the last row shown) when the extra row says there is one."""
    shown = list(rows[:limit])
    return shown, (cursor_of(shown[-1]) if len(rows) > limit and shown else None)


class InvalidCursor(Exception):
    """A cursor this service did not hand out."""

    def __init__(self) -> None:
        super().__init__("the cursor is not one this service handed out")


def encode_cursor(*parts) -> str:
    raw = "|".join(str(part) for part in parts).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_parts(cursor: str, count: int) -> list[str]:
    """The `count` parts of a cursor made by `encode_cursor`; InvalidCursor for anything else."""
    try:
        parts = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("|")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor() from None
    if len(parts) != count:
        raise InvalidCursor()
    return parts


def row_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InvalidCursor() from None
    if not 0 < value < _MAX_ID:
        raise InvalidCursor()
    return value


def encode_time_cursor(created_at: dt.datetime, last_id: int) -> str:
    return encode_cursor(created_at.isoformat(), last_id)


def decode_time_cursor(cursor: str) -> tuple[dt.datetime, int]:
    """(created_at, id) of a newest-first listing's last row."""
    stamp, last_id = decode_parts(cursor, 2)
    try:
        created_at = dt.datetime.fromisoformat(stamp)
    except ValueError:
        raise InvalidCursor() from None
    if created_at.tzinfo is None:
        raise InvalidCursor()
    return created_at, row_id(last_id)


def encode_class_cursor(search_class: int, created_at: dt.datetime, last_id: int) -> str:
    return encode_cursor("class", search_class, created_at.isoformat(), last_id)


def decode_class_cursor(cursor: str) -> tuple[int, dt.datetime, int]:
    """(class, created_at, id) of a search listing's last row (images.queries.SEARCH_CLASSES)."""
    kind, search_class, stamp, last_id = decode_parts(cursor, 4)
    if kind != "class" or search_class not in ("1", "2", "3"):
        raise InvalidCursor()
    created_at, _ = decode_time_cursor(encode_cursor(stamp, last_id))
    return int(search_class), created_at, row_id(last_id)
