"""Quotas, enforced by reservation: the image service charges an upload to its owner inside
the transaction that inserts the image, and refunds it inside the one that deletes it. A failed
upload rolls its charge back with everything else; concurrent uploads of one account queue on
the account's row (queries.reserve), so together they cannot pass a quota.

Sizes are logical (what the uploader sent): deduplication saves storage, never quota, so a
quota never tells one user what another stored.
"""

from __future__ import annotations

from ..accounts import AccountGone
from . import queries
from .errors import ImageQuotaExceeded, QuotaExceeded, StorageQuotaExceeded, UploadQuotaExceeded


def refusal(plan, size: int) -> QuotaExceeded | None:
    """Which quota an upload of `size` bytes would pass on `plan` (a user_plan row), if any."""
    if plan is None:
        return None
    if plan["max_upload_bytes"] is not None and size > plan["max_upload_bytes"]:
        return UploadQuotaExceeded(plan["name"], plan["max_upload_bytes"], "bytes per upload")
    if plan["max_images"] is not None and plan["used_images"] + 1 > plan["max_images"]:
        return ImageQuotaExceeded(plan["name"], plan["max_images"], "images")
    if plan["max_stored_bytes"] is not None and plan["used_bytes"] + size > plan["max_stored_bytes"]:
        return StorageQuotaExceeded(plan["name"], plan["max_stored_bytes"], "stored bytes")
    return None


def precheck(conn, owner_id: int, size: int) -> None:
    """Refuse early, before the upload's chunks are committed, when it cannot fit anyway."""
    problem = refusal(queries.user_plan(conn, owner_id), size)
    if problem is not None:
        raise problem


def charge(conn, owner_id: int, size: int) -> None:
    """Count the upload against the owner's quotas in the caller's transaction, or raise the
    quota it would pass (the caller's transaction then rolls back)."""
    if not queries.reserve(conn, owner_id, size):
        # Read after the refusal: what the concurrent uploads that won committed.
        # No refusal at all: the account itself is gone (deleted while uploading).
        raise refusal(queries.user_plan(conn, owner_id), size) or AccountGone()


def refund(conn, owner_id: int, size: int) -> None:
    queries.release(conn, owner_id, size)
