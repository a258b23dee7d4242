"""Keyset pages for every listing (images by date or by search rank, tags, audit records, admin
users): one page size limit, one way to cut a page and make the next cursor, and opaque cursors
(the sort key of a page's last row, base64url-encoded), so a cursor a client did not get from us
is always the same InvalidCursor (400 `invalid_cursor`)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
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


def encode_rank_cursor(rank: float, last_id: int) -> str:
    return encode_cursor("rank", repr(rank), last_id)


def decode_rank_cursor(cursor: str) -> tuple[float, int]:
    """(rank, id) of a search listing's last row."""
    kind, rank, last_id = decode_parts(cursor, 3)
    try:
        value = float(rank)
    except ValueError:
        raise InvalidCursor() from None
    if kind != "rank" or not math.isfinite(value):
        raise InvalidCursor()
    return value, row_id(last_id)
