"""The audit trail and the admin routes."""

import psycopg
import pytest

from conftest import assert_error, auth_header, login


def _flush(app):
    app.extensions["imagerepo_audit"].flush()


def _make_admin(config, name):
    with psycopg.connect(config.database_url) as conn:
        conn.execute("UPDATE users SET is_admin = true WHERE name = %s", (name,))


def test_reads_and_mutations_are_recorded_with_secrets_redacted(app, client, alice):
    client.get("/me?accesskey=supersecret&x=1", headers=alice["headers"])
    client.post("/logout", headers=alice["headers"])  # a mutation, written synchronously
    fresh = login(client, "alice")["access_token"]
    _flush(app)
    records = client.get("/audit", headers=auth_header(fresh)).get_json()["records"]
    by_path = {r["path"]: r for r in records}
    assert by_path["/me"]["query"] == "accesskey=%5Bredacted%5D&x=1"
    assert "supersecret" not in str(records)
    assert by_path["/me"]["status"] == 200 and by_path["/me"]["method"] == "GET"
    assert by_path["/logout"]["method"] == "POST" and by_path["/logout"]["userId"] == alice["user"]["id"]
    assert all(r["durationMs"] >= 0 and r["client"] == "127.0.0.1" for r in records)


def test_mutation_record_is_written_before_the_response(app, client, alice, config):
    client.post("/logout", headers=alice["headers"])
    # no flush: the record must already be in the table
    with psycopg.connect(config.database_url) as conn:
        count = conn.execute("SELECT count(*) FROM audit_log WHERE path = '/logout'").fetchone()[0]
    assert count == 1


def test_unauthenticated_requests_are_not_recorded(app, client, config):
    client.get("/healthz")
    client.get("/me")  # 401: no identity
    _flush(app)
    with psycopg.connect(config.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 0


def test_users_see_only_their_own_records_admins_everyones(app, client, alice, bob, config):
    client.get("/me", headers=alice["headers"])
    client.get("/me", headers=bob["headers"])
    _flush(app)
    mine = client.get("/audit", headers=bob["headers"]).get_json()["records"]
    assert mine and {r["userId"] for r in mine} == {bob["user"]["id"]}
    assert_error(client.get(f"/audit?user={alice['user']['id']}", headers=bob["headers"]), 403)
    _make_admin(config, "bob")
    _flush(app)
    everyone = client.get("/audit?limit=100", headers=bob["headers"]).get_json()["records"]
    assert {alice["user"]["id"], bob["user"]["id"]} <= {r["userId"] for r in everyone}
    only_alice = client.get(f"/audit?user={alice['user']['id']}", headers=bob["headers"]).get_json()["records"]
    assert only_alice and {r["userId"] for r in only_alice} == {alice["user"]["id"]}


def test_audit_filters_and_pagination(app, client, alice):
    for _ in range(5):
        client.get("/me", headers=alice["headers"])
    client.get("/nope", headers=alice["headers"])
    _flush(app)
    page1 = client.get("/audit?limit=2&method=GET&path=/me", headers=alice["headers"]).get_json()
    assert len(page1["records"]) == 2 and page1["nextCursor"]
    seen = [r["id"] for r in page1["records"]]
    cursor = page1["nextCursor"]
    while cursor:
        page = client.get(f"/audit?limit=2&method=GET&path=/me&cursor={cursor}", headers=alice["headers"]).get_json()
        seen += [r["id"] for r in page["records"]]
        cursor = page["nextCursor"]
    assert len(seen) == len(set(seen)) == 5
    assert seen == sorted(seen, reverse=True)
    assert (
        client.get("/audit?status=404", headers=alice["headers"]).get_json()["records"] == []
    )  # /nope was not authenticated
    future = client.get("/audit?from=2999-01-01T00:00:00Z", headers=alice["headers"]).get_json()
    assert future["records"] == []


@pytest.mark.parametrize(
    "query, status",
    [
        ("limit=0", 422),
        ("limit=abc", 422),
        ("method=BREW", 422),
        ("status=99", 422),
        ("from=yesterday", 422),
        ("cursor=%%%", 400),
        ("cursor=bm90LWEtY3Vyc29y", 400),
        ("unknown=1", 422),
    ],
)
def test_audit_bad_queries(client, alice, query, status):
    assert_error(client.get(f"/audit?{query}", headers=alice["headers"]), status)


def test_admin_routes_refused_to_non_admins(client, alice, bob):
    for method, path in [
        ("GET", "/admin/users"),
        ("GET", "/admin/stats"),
        ("POST", f"/admin/users/{bob['user']['id']}/disable"),
        ("POST", f"/admin/users/{bob['user']['id']}/enable"),
    ]:
        assert_error(client.open(path, method=method, headers=alice["headers"]), 403, "forbidden")
        assert_error(client.open(path, method=method), 401)


def test_admin_lists_disables_and_enables_users(client, alice, bob, config):
    _make_admin(config, "alice")
    users = client.get("/admin/users", headers=alice["headers"]).get_json()["users"]
    assert [u["name"] for u in users] == ["bob", "alice"]
    assert users[1]["isAdmin"] is True and users[0]["images"] == 0

    disabled = client.post(f"/admin/users/{bob['user']['id']}/disable", headers=alice["headers"])
    assert disabled.status_code == 200 and disabled.get_json()["isDisabled"] is True
    assert_error(client.get("/me", headers=bob["headers"]), 401)  # existing token stops working
    assert_error(client.post("/login", json={"username": "bob", "password": "correct horse battery"}), 403)

    assert client.post(f"/admin/users/{bob['user']['id']}/enable", headers=alice["headers"]).status_code == 200
    assert client.get("/me", headers=bob["headers"]).status_code == 200

    assert_error(client.post("/admin/users/99999/disable", headers=alice["headers"]), 404)
    assert_error(client.post(f"/admin/users/{alice['user']['id']}/disable", headers=alice["headers"]), 409)
    assert_error(client.post("/admin/users/abc/disable", headers=alice["headers"]), 404)


def test_admin_stats(client, alice, config):
    _make_admin(config, "alice")
    stats = client.get("/admin/stats", headers=alice["headers"]).get_json()
    assert stats["users"] == 1 and stats["images"] == 0 and stats["storedBytes"] == 0


def test_create_admin_cli(config):
    import os
    import subprocess
    import sys

    env = {**os.environ, "DATABASE_URL": config.database_url, "IMAGEREPO_BLOB_DIR": str(config.blob_dir)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "imagerepo",
            "create-admin",
            "--name",
            "root",
            "--email",
            "root@example.com",
            "--password",
            "long enough",
        ],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    with psycopg.connect(config.database_url) as conn:
        assert conn.execute("SELECT is_admin FROM users WHERE name = 'root'").fetchone()[0] is True
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "imagerepo",
            "create-admin",
            "--name",
            "root",
            "--email",
            "other@example.com",
            "--password",
            "long enough",
        ],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert again.returncode == 1 and "already registered" in again.stderr


def test_create_admin_reads_a_piped_password(config):
    """As the client's login does: a script pipes the password instead of putting it in `ps`."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "DATABASE_URL": config.database_url, "IMAGEREPO_BLOB_DIR": str(config.blob_dir)}
    command = [sys.executable, "-m", "imagerepo", "create-admin", "--name", "piped", "--email", "piped@example.com"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, input="long enough secret\n")
    assert done.returncode == 0, done.stderr
    with psycopg.connect(config.database_url) as conn:
        row = conn.execute("SELECT is_admin, password_hash FROM users WHERE name = 'piped'").fetchone()
    from werkzeug.security import check_password_hash

    assert row[0] is True and check_password_hash(row[1], "long enough secret")
    empty = subprocess.run(command, env=env, capture_output=True, text=True, input="")
    assert empty.returncode == 2 and "piped on stdin" in empty.stderr


def test_requests_refused_by_validation_are_still_recorded(app, client, alice):
    """Routes where a token is optional check it before validating, so the refusal is audited."""
    assert client.get("/images?limit=1000", headers=alice["headers"]).status_code == 422
    _flush(app)
    records = client.get("/audit?path=/images", headers=alice["headers"]).get_json()["records"]
    assert [(r["path"], r["status"], r["query"]) for r in records] == [("/images", 422, "limit=1000")]
