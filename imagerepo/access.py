"""Who may see and change an image, and the limit on guessing access keys.

Rules:
  * the owner always;
  * anyone (anonymous too) for a public image;
  * someone else's private image only with its access key (`?accesskey=` or `X-Access-Key`),
    compared in constant time. No key -> ImageNotFound (404), so its existence is not revealed;
    a wrong key -> WrongAccessKey, answered (404), counted and limited exactly like a key for an
    id that does not exist (same status, body and statements), so probing ids with keys tells
    nothing; more than `access_key_max_failures` wrong keys for one id from one client address
    within `access_key_window_seconds` -> TooManyAttempts (429, even for the right key, until the
    window passes).
  * changes and deletes: the owner only; others get NotOwner (403) for an image they can see
    (public) and ImageNotFound (404) for one they cannot (private).

Rules depend on image rows (imagerepo.images.queries), never on the image routes.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Literal, overload

from flask import current_app, request
from flask_jwt_extended import get_jwt, verify_jwt_in_request

from .context import services
from .images.errors import ImageNotFound, NotOwner, TooManyAttempts, WrongAccessKey
from .images.queries import find_image
from .login_limits import client_key
from .statecache import StateCache

# Stands in for the stored key of an id that has none, so the comparison still runs.
_NO_KEY = secrets.token_urlsafe(24)


@overload
def caller_id(optional: Literal[False] = False) -> int: ...
@overload
def caller_id(optional: bool) -> int | None: ...


def caller_id(optional: bool = False) -> int | None:
    """The caller's user id; None for an anonymous caller when `optional`. A token that is sent
    but invalid, expired or revoked is a 401 either way."""
    # Verified once per request: each verification is a revocation query to PostgreSQL, and
    # @api's auth check has usually done it already.
    try:
        claims = get_jwt()  # {} when verified as optional and no token was sent
    except RuntimeError:  # not verified yet in this request
        claims = None
    if claims is None or (not claims and not optional):
        verify_jwt_in_request(optional=optional)
        claims = get_jwt()
    identity = claims.get("sub")
    return int(identity) if identity is not None else None


def state_cache() -> StateCache:
    return current_app.extensions["imagerepo_state"]


def presented_key(query_key: str | None) -> str | None:
    key = request.headers.get("X-Access-Key") or query_key
    return key or None


def _client() -> str:
    return client_key(request.remote_addr)


def visible_image(image_id: int, viewer: int | None, key: str | None):
    """The image row if `viewer` (None: anonymous) with `key` may see it; else the error."""
    db = services().db

    def load():
        with db.read() as conn:
            return find_image(conn, image_id)

    # The common case (public, or the owner) is decided from the worker's state cache (kept
    # true by LISTEN/NOTIFY within its bound, see statecache.py), else from this one statement.
    # A copy: the caller may add to its row, the cache's stays as read.
    cached = state_cache().cached("image", image_id, load) if 0 < image_id < 2**63 else None
    row = dict(cached) if cached is not None else None
    if row is not None and (not row["is_private"] or row["owner_id"] == viewer):
        return row
    if key is None:
        raise ImageNotFound()
    # Absent, or someone else's private image: a key is checked and counted the same way for
    # both (same statements, same answer), so a key tells nothing about which ids exist.
    with db.transaction() as conn:
        key_ok = check_key(conn, image_id, row["access_key"] if row else None, key)
    # Raised after the transaction has committed, so the recorded failure is kept.
    if not key_ok:
        raise WrongAccessKey()
    return row


def check_key(conn, image_id: int, stored: str | None, key: str) -> bool:
    """Compare the key with `stored` (None: the id has no image, or no key) in constant time,
    counting failures per id and client. Runs under a transaction-scoped advisory lock per
    client, so concurrent guesses from several workers cannot slip past the limit together.
    Returns False (failure recorded) for a wrong key; raises TooManyAttempts past the limit."""
    config = services().config
    client = _client()
    # Ids past bigint cannot exist and cannot be stored: counted together under 0.
    counted_id = image_id if 0 < image_id < 2**63 else 0
    # One lock per client: its guesses on every image are counted one at a time.
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"access-key:{client}",))
    failures = conn.execute(
        "SELECT count(*) FILTER (WHERE image_id = %s) AS here, count(*) AS everywhere FROM access_key_failures"
        " WHERE client = %s AND failed_at > now() - make_interval(secs => %s)",
        (counted_id, client, config.access_key_window_seconds),
    ).fetchone()
    if (
        failures["here"] >= config.access_key_max_failures
        or failures["everywhere"] >= config.access_key_max_failures_per_client
    ):
        raise TooManyAttempts(config.access_key_window_seconds)
    # Compared even when there is nothing to compare with, so both cases do the same work.
    matches = hmac.compare_digest((stored or _NO_KEY).encode(), key.encode())
    if matches and stored:
        return True
    # Old failures are useless once out of the window; drop them as new ones come in.
    conn.execute(
        "DELETE FROM access_key_failures WHERE client = %s AND failed_at <= now() - make_interval(secs => %s)",
        (client, config.access_key_window_seconds),
    )
    conn.execute("INSERT INTO access_key_failures (image_id, client) VALUES (%s, %s)", (counted_id, client))
    return False


def owned_image(conn, image_id: int, owner: int):
    """The image row, locked for change, if `owner` owns it; NotOwner if it is someone else's
    public image, ImageNotFound if it is absent or someone else's private one."""
    row = find_image(conn, image_id, lock=True)
    if row is None or (row["owner_id"] != owner and row["is_private"]):
        raise ImageNotFound()
    if row["owner_id"] != owner:
        raise NotOwner()
    return row
