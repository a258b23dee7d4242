"""The SQL on `plans`, `plan_settings` and the usage counters on `users` (used_bytes,
used_images). Rows are dicts (psycopg's dict_row)."""

from __future__ import annotations

PLAN_COLUMNS = (
    "p.id, p.name, p.thumbnail_heights, p.original_via_links, p.expiring_links,"
    " p.max_stored_bytes, p.max_images, p.max_upload_bytes, p.created_at, p.updated_at"
)
# The fields an administrator sets, in the order of the INSERT and UPDATE below.
SETTABLE = (
    "thumbnail_heights",
    "original_via_links",
    "expiring_links",
    "max_stored_bytes",
    "max_images",
    "max_upload_bytes",
)


def install(conn, default_plan: str) -> bool:
    """Put back missing shipped plans and make `default_plan` the one new accounts get; False
    when no plan has that name."""
    conn.execute("SELECT plans_install_shipped()")
    row = conn.execute("SELECT id FROM plans WHERE lower(name) = lower(%s)", (default_plan,)).fetchone()
    if row is None:
        return False
    conn.execute(
        "INSERT INTO plan_settings (default_plan_id) VALUES (%s)"
        " ON CONFLICT (singleton) DO UPDATE SET default_plan_id = EXCLUDED.default_plan_id"
        " WHERE plan_settings.default_plan_id IS DISTINCT FROM EXCLUDED.default_plan_id",
        (row["id"],),
    )
    return True


def all_plans(conn) -> list[dict]:
    return conn.execute(f"SELECT {PLAN_COLUMNS} FROM plans p ORDER BY p.id").fetchall()


def plan_by_name(conn, name: str, lock: bool = False):
    return conn.execute(
        f"SELECT {PLAN_COLUMNS} FROM plans p WHERE lower(p.name) = lower(%s)" + (" FOR UPDATE" if lock else ""),
        (name,),
    ).fetchone()


def insert_plan(conn, name: str, fields: dict):
    return conn.execute(
        f"INSERT INTO plans (name, {', '.join(SETTABLE)}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT ((lower(name))) DO NOTHING RETURNING id",
        (name, *(fields[f] for f in SETTABLE)),
    ).fetchone()


def update_plan(conn, plan_id: int, fields: dict) -> None:
    conn.execute(
        f"UPDATE plans SET {', '.join(f'{f} = %s' for f in SETTABLE)}, updated_at = now() WHERE id = %s",
        (*(fields[f] for f in SETTABLE), plan_id),
    )


def user_plan(conn, user_id: int):
    """The account's plan, with its usage (used_bytes, used_images), or None."""
    return conn.execute(
        f"SELECT {PLAN_COLUMNS}, u.used_bytes, u.used_images FROM users u JOIN plans p ON p.id = u.plan_id"
        " WHERE u.id = %s",
        (user_id,),
    ).fetchone()


def assign_plan(conn, user_id: int, plan_id: int) -> bool:
    return (
        conn.execute("UPDATE users SET plan_id = %s WHERE id = %s RETURNING id", (plan_id, user_id)).fetchone()
        is not None
    )


# -- usage ----------------------------------------------------------------------------------
def reserve(conn, user_id: int, size: int) -> bool:
    """Count one image of `size` bytes against the account, only if its plan's quotas allow it
    (else nothing changes and False). One statement: the row lock makes concurrent uploads of
    one account wait here, and each re-checks the quota against the count the one before it
    committed (PostgreSQL re-evaluates the WHERE on the updated row), so none can overshoot."""
    return (
        conn.execute(
            "UPDATE users u SET used_bytes = u.used_bytes + %(size)s, used_images = u.used_images + 1"
            " FROM plans p WHERE u.id = %(user)s AND p.id = u.plan_id"
            " AND (p.max_upload_bytes IS NULL OR %(size)s <= p.max_upload_bytes)"
            " AND (p.max_stored_bytes IS NULL OR u.used_bytes + %(size)s <= p.max_stored_bytes)"
            " AND (p.max_images IS NULL OR u.used_images + 1 <= p.max_images)"
            " RETURNING u.id",
            {"user": user_id, "size": size},
        ).fetchone()
        is not None
    )


def release(conn, user_id: int, size: int) -> None:
    conn.execute(
        "UPDATE users SET used_bytes = greatest(used_bytes - %s, 0), used_images = greatest(used_images - 1, 0)"
        " WHERE id = %s",
        (size, user_id),
    )


def recount(conn) -> int:
    """Recompute every account's usage from its images (a repair; the counters are kept in
    step transactionally). Returns the number of accounts whose counts changed."""
    return conn.execute(
        "UPDATE users u SET used_bytes = s.bytes, used_images = s.images"
        " FROM (SELECT u2.id, coalesce(sum(o.size), 0)::bigint AS bytes, count(i.id) AS images"
        "         FROM users u2 LEFT JOIN images i ON i.owner_id = u2.id"
        "         LEFT JOIN objects o ON o.digest = i.object_digest GROUP BY u2.id) s"
        " WHERE s.id = u.id AND (u.used_bytes, u.used_images) IS DISTINCT FROM (s.bytes, s.images)"
    ).rowcount
