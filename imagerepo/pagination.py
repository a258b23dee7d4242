"""Opaque keyset cursors over (created_at, id), newest first."""
from __future__ import annotations

import base64
import datetime as dt

from .errors import ApiError


def encode_cursor(created_at: dt.datetime, row_id: int) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, row_id = raw.rsplit("|", 1)
        created_at = dt.datetime.fromisoformat(stamp)
        if created_at.tzinfo is None:
            raise ValueError("naive timestamp")
        return created_at, int(row_id)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_cursor", "cursor is not one this service returned") from None
