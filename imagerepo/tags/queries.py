"""The SQL on `tags` and `image_tags`: set an image's tags, read them for a page of images,
resolve names to ids, and count the images each tag has that a viewer may see."""

from __future__ import annotations

from ..context import services


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
    with services().db.read() as conn:
        return conn.execute(
            "SELECT t.name, count(*) AS images FROM tags t"
            " JOIN image_tags it ON it.tag_id = t.id JOIN images i ON i.id = it.image_id"
            " WHERE (NOT i.is_private OR i.owner_id = %(viewer)s)"
            "   AND (%(contains)s::text IS NULL OR strpos(t.name, %(contains)s) > 0)"
            "   AND (%(after)s::text IS NULL OR t.name > %(after)s)"
            " GROUP BY t.name ORDER BY t.name LIMIT %(n)s",
            {"viewer": viewer, "contains": contains, "after": after, "n": limit + 1},
        ).fetchall()
