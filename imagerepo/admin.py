"""Administration: list users, disable/enable an account, storage statistics.

Admin rights are read from the database on every call (not from a token claim), so revoking
them takes effect at once."""

from __future__ import annotations

from flask import Blueprint

from .accounts import AdminOnly, CannotDisableSelf, UserNotFound
from .auth import UserOut, current_user_id, get_user, user_out
from .context import services
from .pagination import Cursor, PageSize, decode_time_cursor, encode_time_cursor, page
from .validation import Schema, api

bp = Blueprint("admin", __name__, url_prefix="/admin")


def require_admin() -> dict:
    viewer = get_user(services().db, current_user_id())
    if viewer is None or not viewer["is_admin"]:
        raise AdminOnly()
    return viewer


class UsersQuery(Schema):
    limit: PageSize = 50
    cursor: Cursor | None = None


class UsersPageOut(Schema):
    users: list[UserOut]
    nextCursor: str | None


class StatsOut(Schema):
    users: int
    images: int
    objects: int
    chunks: int
    logicalBytes: int
    storedBytes: int
    dedupRatio: float | None
    cacheHits: int
    cacheMisses: int
    cacheBypassed: int
    cacheHitRate: float | None


_ADMIN_USER_SQL = (
    "SELECT u.id, u.name, u.email, u.is_admin, u.is_disabled, u.created_at,"
    " (SELECT count(*) FROM images i WHERE i.owner_id = u.id)::int AS images FROM users u"
)


@bp.get("/users")
@api(
    query=UsersQuery,
    response=UsersPageOut,
    responses={400: "Bad cursor", 403: "", 422: ""},
    summary="Every account, newest first (admins only)",
)
def users(query: UsersQuery):
    require_admin()
    params: list = []
    where = "true"
    if query.cursor:
        created_at, user_id = decode_time_cursor(query.cursor)
        where = "(u.created_at, u.id) < (%s, %s)"
        params = [created_at, user_id]
    with services().db.read() as conn:
        rows = conn.execute(
            f"{_ADMIN_USER_SQL} WHERE {where} ORDER BY u.created_at DESC, u.id DESC LIMIT %s",
            (*params, query.limit + 1),
        ).fetchall()
    rows, next_cursor = page(rows, query.limit, lambda r: encode_time_cursor(r["created_at"], r["id"]))
    return UsersPageOut(users=[user_out(r) for r in rows], nextCursor=next_cursor)


def set_disabled(user_id: int, disabled: bool, acting_admin_id: int) -> UserOut:
    if user_id == acting_admin_id and disabled:
        raise CannotDisableSelf()
    with services().db.transaction() as conn:
        updated = conn.execute(
            "UPDATE users SET is_disabled = %s WHERE id = %s RETURNING id", (disabled, user_id)
        ).fetchone()
        if updated is None:
            raise UserNotFound()
        row = conn.execute(f"{_ADMIN_USER_SQL} WHERE u.id = %s", (user_id,)).fetchone()
    return user_out(row)


@bp.post("/users/<int:user_id>/disable")
@api(
    response=UserOut,
    responses={403: "", 404: "", 409: "Cannot disable yourself"},
    summary="Disable an account: its tokens stop working at once (admins only)",
)
def disable(user_id: int):
    admin = require_admin()
    return set_disabled(user_id, True, admin["id"])


@bp.post("/users/<int:user_id>/enable")
@api(response=UserOut, responses={403: "", 404: ""}, summary="Enable an account (admins only)")
def enable(user_id: int):
    admin = require_admin()
    return set_disabled(user_id, False, admin["id"])


@bp.get("/stats")
@api(response=StatsOut, responses={403: ""}, summary="Storage statistics (admins only)")
def stats():
    require_admin()
    svc = services()
    blob_stats = svc.blobs.stats()
    with svc.db.read() as conn:
        users_count = conn.execute("SELECT count(*) AS n FROM users").fetchone()["n"]
    cache = svc.blobs.cache
    lookups = cache.hits + cache.misses
    return StatsOut(
        users=users_count,
        images=blob_stats["references"] or 0,
        objects=blob_stats["objects"],
        chunks=blob_stats["chunks"],
        logicalBytes=blob_stats["logical_bytes"],
        storedBytes=blob_stats["stored_bytes"],
        dedupRatio=blob_stats["dedup_ratio"],
        cacheHits=cache.hits,
        cacheMisses=cache.misses,
        cacheBypassed=cache.bypassed,
        cacheHitRate=round(cache.hits / lookups, 4) if lookups else None,
    )
