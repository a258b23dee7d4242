"""User names: which characters a name may hold, and the canonical key that makes look-alike
names one name.

A name is shown as its owner wrote it, but compared by its key, NFKC(casefold(NFKD(name))):
"Alice", "alice", a fullwidth "ａｌｉｃｅ" and the NFD and NFC spellings of "é" share one key, so
they are one account and every spelling logs in to it. The database computes the same key
(`user_name_key` in schema/006_accounts_and_probing.sql) into `users.name_key`, which is unique.

Refused outright, because they make different names look alike or hide what a name says:
control characters (Cc), invisible format characters such as the zero-width space and the
right-to-left override (Cf), surrogates, private-use and unassigned code points (Cs, Co, Cn),
every kind of space and line separator (Z*), the other code points Unicode marks as ignorable
(variation selectors, Hangul fillers, the combining grapheme joiner), the blank Braille
pattern, and a name that starts with a combining mark. Letters of different scripts that look
alike (Latin "a" and Cyrillic "а") are not caught: that needs Unicode's confusables table.
"""

from __future__ import annotations

import unicodedata

MAX_NAME_CHARS = 64

_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"}
# Default_Ignorable_Code_Point (DerivedCoreProperties.txt) outside the categories above: they
# render as nothing, so "alice" plus one of them looks like "alice".
_IGNORABLE_RANGES = (
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x115F, 0x1160),  # Hangul choseong/jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian free variation selectors
    (0x2800, 0x2800),  # Braille pattern blank (not ignorable, but blank)
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xE0100, 0xE01EF),  # variation selectors supplement
)


def name_key(name: str) -> str:
    """The canonical form names are compared by (the database's `user_name_key`)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKD", name).casefold())


def login_key(login: str) -> str:
    """A login as typed (a name or an email), made canonical, for counting failed logins: every
    spelling of one name, and an email in any case, count as one."""
    return name_key(login.strip())


def _refused(ch: str) -> bool:
    code = ord(ch)
    return unicodedata.category(ch) in _REFUSED_CATEGORIES or any(lo <= code <= hi for lo, hi in _IGNORABLE_RANGES)


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a user name, or None when it can."""
    if not name:
        return "a name needs at least one character"
    # The key is checked too: compatibility forms can unfold into spaces or '@' ("¨" is " ̈").
    key = name_key(name)
    if len(name) > MAX_NAME_CHARS or len(key) > MAX_NAME_CHARS:
        return f"a name has at most {MAX_NAME_CHARS} characters"
    for ch in name + key:
        if ch.isspace() or ch == "@":
            return "a name cannot contain spaces or '@' (an '@' means an email at login)"
        if _refused(ch):
            return (
                f"a name cannot contain U+{ord(ch):04X} ({unicodedata.name(ch, 'unnamed')}): control, "
                "invisible, unassigned and private-use characters make names that look alike"
            )
    if unicodedata.category(name[0]).startswith("M"):
        return "a name cannot start with a combining mark"
    return None


# -- names that collided before keys existed ------------------------------------------------
class NameRefused(ValueError):
    """A new name is invalid or taken (by another account's spelling of it)."""


_COLLISIONS_SQL = (
    "SELECT c.name_key, u.id, u.name, u.email, u.created_at, u.name_collision"
    " FROM user_name_collisions c JOIN users u ON u.id = ANY (c.user_ids) ORDER BY c.name_key, u.id"
)


def name_collisions(db) -> list[dict]:
    """Accounts whose names collided when schema 006 made names compare by key: one entry per
    shared key, the oldest account first (it keeps the name at login; the others are reached by
    their exact spelling or email until renamed)."""
    groups: dict[str, dict] = {}
    with db.read() as conn:
        for row in conn.execute(_COLLISIONS_SQL):
            group = groups.setdefault(row["name_key"], {"key": row["name_key"], "accounts": []})
            group["accounts"].append(
                {
                    "id": row["id"],
                    "name": row["name"],
                    "email": row["email"],
                    "createdAt": row["created_at"].isoformat(),
                    "holdsName": row["name_collision"] == 0,
                }
            )
    return list(groups.values())


def rename_user(db, user_id: int, new_name: str) -> dict:
    """Give an account a new name (an operator resolving a collision). When the account held a
    shared key, the oldest remaining account of that key takes it over, so the key stays taken."""
    import psycopg

    new_name = new_name.strip()
    problem = name_problem(new_name)
    if problem:
        raise NameRefused(problem)
    with db.transaction() as conn:
        old = conn.execute("SELECT name_key FROM users WHERE id = %s FOR UPDATE", (user_id,)).fetchone()
        if old is None:
            raise NameRefused(f"no account with id {user_id}")
        # Every account of the old key, locked in id order (as the migration ranked them).
        conn.execute("SELECT id FROM users WHERE name_key = %s ORDER BY id FOR UPDATE", (old["name_key"],))
        try:
            with conn.transaction():
                row = conn.execute(
                    "UPDATE users SET name = %s, name_collision = 0 WHERE id = %s RETURNING id, name, name_key",
                    (new_name, user_id),
                ).fetchone()
        except psycopg.errors.UniqueViolation:
            raise NameRefused(f"the name {new_name!r} is taken (by another spelling of it)") from None
        conn.execute(
            "UPDATE users SET name_collision = 0 WHERE id = (SELECT min(id) FROM users WHERE name_key = %(key)s)"
            " AND NOT EXISTS (SELECT 1 FROM users WHERE name_key = %(key)s AND name_collision = 0)",
            {"key": old["name_key"]},
        )
    return row
