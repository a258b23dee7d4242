"""Administration: list users, disable/enable an account, storage statistics.

Admin rights are read from the database on every call (not from a token claim), so revoking
them takes effect at once."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import pydantic
from flask import Blueprint
from flask_jwt_extended import jwt_required

from .auth import current_user_id, get_user
from .context import services
from .errors import ApiError
from .pagination import decode_time_cursor, encode_time_cursor
from .validation import Schema, api

bp = Blueprint("admin", __name__, url_prefix="/admin")


def require_admin() -> dict:
    viewer = get_user(services().db, current_user_id())
    if viewer is None or not viewer["is_admin"]:
        raise ApiError(403, "forbidden", "administrators only")
    return viewer


class UsersQuery(Schema):
    limit: Annotated[int, pydantic.Field(ge=1, le=100)] = 50
    cursor: str | None = None


class AdminUserOut(Schema):
    id: int
    name: str
    email: str
    isAdmin: bool
    isDisabled: bool
    images: int
    createdAt: dt.datetime


class UsersPageOut(Schema):
    users: list[AdminUserOut]
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


def _user_out(row) -> AdminUserOut:
    return AdminUserOut(
        id=row["id"],
        name=row["name"],
        email=row["email"],
        isAdmin=row["is_admin"],
        isDisabled=row["is_disabled"],
        images=row["images"],
        createdAt=row["created_at"],
    )


_ADMIN_USER_SQL = (
    "SELECT u.id, u.name, u.email, u.is_admin, u.is_disabled, u.created_at,"
    " (SELECT count(*) FROM images i WHERE i.owner_id = u.id)::int AS images FROM users u"
)


@bp.get("/users")
@jwt_required()
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
    with services().db.transaction() as conn:
        rows = conn.execute(
            f"{_ADMIN_USER_SQL} WHERE {where} ORDER BY u.created_at DESC, u.id DESC LIMIT %s",
            (*params, query.limit + 1),
        ).fetchall()
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return UsersPageOut(
        users=[_user_out(r) for r in rows],
        nextCursor=encode_time_cursor(rows[-1]["created_at"], rows[-1]["id"]) if more and rows else None,
    )


def set_disabled(user_id: int, disabled: bool, acting_admin_id: int) -> AdminUserOut:
    if user_id == acting_admin_id and disabled:
        raise ApiError(409, "conflict", "an administrator cannot disable their own account")
    with services().db.transaction() as conn:
        updated = conn.execute(
            "UPDATE users SET is_disabled = %s WHERE id = %s RETURNING id", (disabled, user_id)
        ).fetchone()
        if updated is None:
            raise ApiError(404, "not_found", "no such user")
        row = conn.execute(f"{_ADMIN_USER_SQL} WHERE u.id = %s", (user_id,)).fetchone()
    return _user_out(row)


@bp.post("/users/<int:user_id>/disable")
@jwt_required()
@api(
    response=AdminUserOut,
    responses={403: "", 404: "", 409: "Cannot disable yourself"},
    summary="Disable an account: its tokens stop working at once (admins only)",
)
def disable(user_id: int):
    admin = require_admin()
    return set_disabled(user_id, True, admin["id"])


@bp.post("/users/<int:user_id>/enable")
@jwt_required()
@api(response=AdminUserOut, responses={403: "", 404: ""}, summary="Enable an account (admins only)")
def enable(user_id: int):
    admin = require_admin()
    return set_disabled(user_id, False, admin["id"])


@bp.get("/stats")
@jwt_required()
@api(response=StatsOut, responses={403: ""}, summary="Storage statistics (admins only)")
def stats():
    require_admin()
    svc = services()
    blob_stats = svc.blobs.stats()
    with svc.db.transaction() as conn:
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
