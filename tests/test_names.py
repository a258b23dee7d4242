"""User names: look-alike spellings are one account, invisible and control characters are
refused, the display form is kept, and migration 006 reports names that already collided."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import unicodedata
import uuid
from pathlib import Path

import psycopg
import pytest
from conftest import assert_error, auth_header, login, register
from psycopg import conninfo, sql

from imagerepo.db import MIGRATIONS, apply_schema, migration_files
from imagerepo.names import name_collisions, name_key, rename_user

PROJECT_ROOT = Path(__file__).resolve().parent.parent

PASSWORD = "correct horse battery"


def _post_register(client, name, email=None):
    return client.post(
        "/register", json={"name": name, "email": email or f"{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}
    )


@pytest.mark.parametrize(
    "look_alike",
    [
        "Alice",
        "ALICE",
        "\uff41\uff4c\uff49\uff43\uff45",  # fullwidth
        "\uff21lice",
        "alic\u212f",  # SCRIPT SMALL E folds to e under NFKC
    ],
    ids=["capital", "upper", "fullwidth", "fullwidth-capital", "script-e"],
)
def test_look_alike_names_are_the_same_account(client, look_alike):
    register(client, "alice")
    assert_error(_post_register(client, look_alike), 409, "conflict")


def test_nfd_and_nfc_spellings_are_one_name(client):
    register(client, unicodedata.normalize("NFC", "jos\u00e9"))
    assert_error(_post_register(client, "jose\u0301"), 409, "conflict")
    assert_error(_post_register(client, "JOSE\u0301"), 409, "conflict")


@pytest.mark.parametrize(
    "name",
    [
        "alice\u200b",  # zero-width space
        "\u200balice",
        "ali\u200dce",  # zero-width joiner
        "\u202eecila",  # right-to-left override
        "alice\u2066",  # left-to-right isolate
        "ali\u00adce",  # soft hyphen
        "alice\x07",  # bell
        "ali\x1bce",  # escape
        "ali\u0085ce",  # next line (Cc)
        "alice\ufe0f",  # variation selector
        "alice\u3164",  # Hangul filler
        "alice\u2800",  # Braille blank
        "\u0301alice",  # starts with a combining mark
        "alice\ue000",  # private use
        "alice\u00a0bob",  # no-break space
        "ali\u3000ce",  # ideographic space
        "al\uff20ice",  # fullwidth @ becomes '@'
        "a@b",
        "a\u00a8b",  # diaeresis: NFKC turns it into a space + combining mark
    ],
)
def test_control_and_invisible_characters_are_refused(client, name):
    body = assert_error(_post_register(client, name), 422, "validation_failed")
    assert body["error"]["message"].startswith("invalid body: name: ")


def test_display_form_is_kept_and_every_spelling_logs_in(client):
    user = register(client, "\u00c9lodie", email="elodie@example.com")  # É, NFC
    assert user["name"] == "\u00c9lodie"
    for spelling in ("\u00c9lodie", "\u00e9lodie", "E\u0301LODIE", "\uff25\u0301lodie", "elodie@example.com"):
        tokens = login(client, spelling, PASSWORD)
        me = client.get("/me", headers=auth_header(tokens["access_token"])).get_json()
        assert me["id"] == user["id"] and me["name"] == "\u00c9lodie"


def test_names_in_other_scripts_are_welcome(client):
    for name in ("\u5c71\u7530", "\u0639\u0644\u064a", "\u0394\u03b7\u03bc\u03ae\u03c4\u03c1\u03b7\u03c2", "o'brien"):
        assert _post_register(client, name).status_code == 201, name


def test_the_database_key_is_the_python_key_for_every_code_point(database_url):
    """The key exists twice (SQL for the unique index, Python for counting failed logins);
    they must agree on every assigned code point, alone and after a letter."""
    chars = [
        chr(cp)
        for cp in range(1, 0x110000)
        if not 0xD800 <= cp < 0xE000 and unicodedata.category(chr(cp)) not in ("Cn", "Co")
    ]
    with psycopg.connect(database_url) as conn:
        for start in range(0, len(chars), 20000):
            batch = chars[start : start + 20000]
            inputs = [c for c in batch] + ["A" + c + "\u00df" for c in batch[:2000]]
            got = conn.execute(
                "SELECT user_name_key(x) FROM unnest(%s::text[]) WITH ORDINALITY AS t(x, i) ORDER BY i", (inputs,)
            ).fetchall()
            wrong = [
                (hex(ord(s[0])), s, g[0], name_key(s)) for s, g in zip(inputs, got, strict=True) if g[0] != name_key(s)
            ]
            assert not wrong, wrong[:10]


# -- migration 006 on a database whose names already collide --------------------------------
@contextlib.contextmanager
def _scratch_database(database_url: str):
    name = f"imagerepo_names_{uuid.uuid4().hex[:10]}"
    admin = conninfo.make_conninfo(database_url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield conninfo.make_conninfo(database_url, dbname=name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _apply_up_to(url: str, last: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((MIGRATIONS / "000_schema_migrations.sql").read_text())
        for path in migration_files():
            if path.name.startswith("000_") or path.name > last:
                continue
            with conn.transaction():
                conn.execute(path.read_text())
                conn.execute("INSERT INTO schema_migrations (filename) VALUES (%s)", (path.name,))


OLD_ACCOUNTS = [
    ("alice", "alice@example.com"),
    ("Alice", "alice2@example.com"),
    ("\uff41\uff4c\uff49\uff43\uff45", "alice3@example.com"),
    ("bob", "bob@example.com"),
    ("jos\u00e9", "jose1@example.com"),
    ("jose\u0301", "jose2@example.com"),
]


@pytest.fixture
def collided_database(database_url):
    """A database at schema 005 with accounts that collide under 006's keys."""
    from werkzeug.security import generate_password_hash

    with _scratch_database(database_url) as url:
        _apply_up_to(url, "005_")
        password_hash = generate_password_hash(PASSWORD, method="scrypt")
        with psycopg.connect(url) as conn:
            for name, email in OLD_ACCOUNTS:
                conn.execute(
                    "INSERT INTO users (name, email, password_hash) VALUES (%s, %s, %s)", (name, email, password_hash)
                )
        yield url


def test_migration_reports_collisions_instead_of_failing(collided_database, caplog):
    with caplog.at_level(logging.WARNING, logger="imagerepo.db"):
        applied = apply_schema(collided_database)
    assert any(name.startswith("006_") for name in applied)
    assert "2 user name(s) are shared" in caplog.text
    with psycopg.connect(collided_database) as conn:
        view = conn.execute("SELECT name_key, user_ids FROM user_name_collisions ORDER BY name_key").fetchall()
        assert view == [("alice", [1, 2, 3]), ("jos\u00e9", [5, 6])]
        # every account is still there, shown as it was written
        names = [r[0] for r in conn.execute("SELECT name FROM users ORDER BY id")]
        assert names == [name for name, _ in OLD_ACCOUNTS]
        # and no new spelling of a taken key gets in
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO users (name, email, password_hash) VALUES ('ALICE', 'a4@example.com', 'x')")


def test_collided_accounts_keep_logging_in_until_renamed(collided_database, config, tmp_path):
    from conftest import with_changes

    from imagerepo import create_app

    apply_schema(collided_database)
    app = create_app(with_changes(config, database_url=collided_database))
    try:
        client = app.test_client()

        def who(login_name):
            tokens = login(client, login_name, PASSWORD)
            return client.get("/me", headers=auth_header(tokens["access_token"])).get_json()["id"]

        # the exact spelling reaches each account; another spelling reaches the oldest
        assert [who(name) for name, _ in OLD_ACCOUNTS] == [1, 2, 3, 4, 5, 6]
        assert who("ALICE") == 1 and who("alice3@example.com") == 3
        assert_error(_post_register(client, "aLiCe"), 409, "conflict")

        # the operator's view, through the CLI as an operator runs it
        env = {"DATABASE_URL": collided_database, "IMAGEREPO_JWT_SECRET": "x" * 40, "PATH": "/usr/bin:/bin"}
        listed = subprocess.run(
            [sys.executable, "-m", "imagerepo", "name-collisions"],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            check=False,
        )
        assert listed.returncode == 1, listed.stderr
        groups = json.loads(listed.stdout)
        assert [[a["id"] for a in g["accounts"]] for g in groups] == [[1, 2, 3], [5, 6]]
        assert [a["holdsName"] for a in groups[0]["accounts"]] == [True, False, False]

        renamed = subprocess.run(
            [sys.executable, "-m", "imagerepo", "rename-user", "2", "alice-two"],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert renamed.returncode == 0, renamed.stderr
        taken = subprocess.run(
            [sys.executable, "-m", "imagerepo", "rename-user", "3", "BOB"],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert taken.returncode == 1 and "taken" in taken.stderr
        assert who("Alice-Two") == 2

        # renaming the account that holds a shared name hands the name to the next one
        db = app.extensions["imagerepo"].db
        rename_user(db, 1, "alice-one")
        assert who("alice") == 3 and who("alice-one") == 1
        assert_error(_post_register(client, "ALICE"), 409, "conflict")
        rename_user(db, 6, "jose-two")
        assert name_collisions(db) == []
        ok = subprocess.run(
            [sys.executable, "-m", "imagerepo", "name-collisions"], cwd=PROJECT_ROOT, env=env, check=False
        )
        assert ok.returncode == 0
    finally:
        app.extensions["imagerepo_audit"].flush()
        app.extensions["imagerepo"].db.close()
