"""The SQL on `share_links`. A link is live while it is neither expired nor revoked, its image's
owner is enabled and the owner's plan still gives that kind of link (checked on every use, so a
plan change ends links at once even before `end_links_not_allowed` marks them)."""

from __future__ import annotations

LINK_COLUMNS = "l.id, l.image_id, l.nonce, l.height, l.format, l.created_at, l.expires_at"

# What the owner's plan must give for the link (l) to serve: expiring links at all, and its
# height among the plan's thumbnail heights, or the original (full size, any format).
_PLAN_ALLOWS = (
    "p.expiring_links AND (CASE WHEN l.height IS NULL THEN p.original_via_links"
    " ELSE l.height = ANY (p.thumbnail_heights) END)"
)
_LIVE = "l.revoked_at IS NULL AND l.expires_at > now()"


def insert_link(
    conn, token_hash: bytes, nonce: bytes, image_id: int, height: int | None, fmt: str | None, seconds: int
):
    return conn.execute(
        "INSERT INTO share_links (token_hash, nonce, image_id, height, format, expires_at)"
        " VALUES (%s, %s, %s, %s, %s, now() + make_interval(secs => %s))"
        " RETURNING id, image_id, nonce, height, format, created_at, expires_at",
        (token_hash, nonce, image_id, height, fmt, seconds),
    ).fetchone()


def live_links(conn, image_ids: list[int]) -> list[dict]:
    """The live links of these images, oldest first."""
    return conn.execute(
        f"SELECT {LINK_COLUMNS} FROM share_links l WHERE l.image_id = ANY (%s) AND {_LIVE}"
        " ORDER BY l.image_id, l.created_at, l.id",
        (image_ids,),
    ).fetchall()


def resolve(conn, token_hash: bytes):
    """The live link with this token hash, with its image's row and the seconds it has left;
    None for anything else (unknown, expired, revoked, image gone, plan no longer allows)."""
    return conn.execute(
        f"SELECT {LINK_COLUMNS}, extract(epoch FROM l.expires_at - now())::float8 AS seconds_left"
        " FROM share_links l JOIN images i ON i.id = l.image_id JOIN users u ON u.id = i.owner_id"
        f" JOIN plans p ON p.id = u.plan_id WHERE l.token_hash = %s AND {_LIVE} AND NOT u.is_disabled"
        f" AND {_PLAN_ALLOWS}",
        (token_hash,),
    ).fetchone()


def revoke(conn, image_id: int, link_id: int) -> bool:
    if not 0 < link_id < 2**63:
        return False
    return (
        conn.execute(
            f"UPDATE share_links l SET revoked_at = now() WHERE l.id = %s AND l.image_id = %s AND {_LIVE}"
            " RETURNING l.id",
            (link_id, image_id),
        ).fetchone()
        is not None
    )


def end_links_of_image(conn, image_id: int) -> None:
    conn.execute(f"UPDATE share_links l SET revoked_at = now() WHERE l.image_id = %s AND {_LIVE}", (image_id,))


def end_links_not_allowed(conn, user_id: int | None = None, plan_id: int | None = None) -> int:
    """Revoke the live links the owners' plans no longer give (after a plan is changed or
    assigned): of one account, or of every account on one plan."""
    return conn.execute(
        "UPDATE share_links l SET revoked_at = now() FROM images i, users u, plans p"
        f" WHERE i.id = l.image_id AND u.id = i.owner_id AND p.id = u.plan_id AND {_LIVE}"
        " AND (%(user)s::bigint IS NULL OR u.id = %(user)s) AND (%(plan)s::bigint IS NULL OR p.id = %(plan)s)"
        f" AND NOT ({_PLAN_ALLOWS})",
        {"user": user_id, "plan": plan_id},
    ).rowcount


def prune(conn) -> int:
    """Delete links that expired or were revoked (the collector's sweep): nothing can use them."""
    return conn.execute("DELETE FROM share_links WHERE expires_at <= now() OR revoked_at IS NOT NULL").rowcount
