"""Share links against the real server: made by the owner as the plan permits, open to anyone
without a token or key, with content's HTTP semantics, and dead (404 JSON) once expired,
revoked, made private, deleted, or no longer given by the plan; forged tokens are 404s."""

from __future__ import annotations

import re
import time

import psycopg
import pytest
import requests
from http_helpers import signup
from live_server import live_server
from plan_helpers import assign, error_code, make_admin, png, upload, user_id


@pytest.fixture
def fast_links(config, tmp_path):
    """A server whose links may live 1 second."""
    with live_server(
        config.database_url, tmp_path / "blobs-l", extra_env={"IMAGEREPO_LINK_MIN_SECONDS": "1"}
    ) as server:
        yield server


def make_link(base, headers, image_id, seconds=300, **extra):
    return requests.post(
        f"{base}/images/{image_id}/links", json={"expiresIn": seconds, **extra}, headers=headers, timeout=30
    )


def assert_dead(base, url, **headers):
    for method in ("GET", "HEAD"):
        response = requests.request(method, base + url, headers=headers, timeout=30)
        assert response.status_code == 404, (method, response.status_code)
        assert "max-age" not in response.headers.get("Cache-Control", "")
    assert error_code(requests.get(base + url, headers=headers, timeout=30)) == "not_found"


def test_a_link_serves_anyone_with_content_semantics(server):
    alice = signup(server.url, "alice")
    data = png(1, size=(120, 80))
    image = upload(server.url, alice, data, private=True).json()
    made = make_link(server.url, alice, image["id"])
    assert made.status_code == 201, made.text
    link = made.json()
    assert set(link) == {"id", "url", "expiresAt", "createdAt", "variant"} and link["variant"] is None
    assert re.fullmatch(r"/s/[A-Za-z0-9_-]{43}", link["url"]), link["url"]
    assert "/images/" not in link["url"]  # the URL names neither the image nor the owner

    got = requests.get(server.url + link["url"], timeout=30)  # no token, no key
    assert got.status_code == 200 and got.content == data
    assert got.headers["Content-Type"] == "image/png" and got.headers["ETag"] == f'"{image["sha256"]}"'
    cache = got.headers["Cache-Control"]
    assert cache.startswith("private, max-age=") and 290 <= int(cache.split("=")[1]) <= 300
    head = requests.head(server.url + link["url"], timeout=30)
    assert head.status_code == 200 and head.content == b"" and head.headers["Content-Length"] == str(len(data))
    part = requests.get(server.url + link["url"], headers={"Range": "bytes=2-9"}, timeout=30)
    assert part.status_code == 206 and part.content == data[2:10]
    assert part.headers["Content-Range"] == f"bytes 2-9/{len(data)}"
    same = requests.get(server.url + link["url"], headers={"If-None-Match": got.headers["ETag"]}, timeout=30)
    assert same.status_code == 304 and same.headers["Cache-Control"].startswith("private, max-age=")
    bad_range = requests.get(server.url + link["url"], headers={"Range": f"bytes={len(data)}-"}, timeout=30)
    assert bad_range.status_code == 416

    listed = requests.get(f"{server.url}/images/{image['id']}/links", headers=alice, timeout=30).json()["links"]
    assert [(x["id"], x["url"]) for x in listed] == [(link["id"], link["url"])]


def test_a_link_stops_at_expiry(fast_links):
    base = fast_links.url
    alice = signup(base, "alice")
    image = upload(base, alice, png(2)).json()
    link = make_link(base, alice, image["id"], seconds=2).json()
    first = requests.get(base + link["url"], timeout=30)
    assert first.status_code == 200 and int(first.headers["Cache-Control"].split("=")[1]) <= 2
    etag = first.headers["ETag"]
    time.sleep(2.2)
    # Dead, also for a client that holds the bytes and asks whether they are still good.
    assert_dead(base, link["url"])
    assert_dead(base, link["url"], **{"If-None-Match": etag})
    assert requests.get(f"{base}/images/{image['id']}/links", headers=alice, timeout=30).json()["links"] == []


def test_revoke_private_and_delete_end_links(server):
    alice, bob = signup(server.url, "alice"), signup(server.url, "bob")
    image = upload(server.url, alice, png(3)).json()
    one, two, three = (make_link(server.url, alice, image["id"]).json() for _ in range(3))
    for link in (one, two, three):
        assert requests.get(server.url + link["url"], timeout=30).status_code == 200

    path = f"{server.url}/images/{image['id']}/links/{one['id']}"
    assert requests.delete(path, headers=bob, timeout=30).status_code == 403  # public image, not his
    assert requests.delete(path, headers=alice, timeout=30).status_code == 204
    assert_dead(server.url, one["url"])
    assert requests.delete(path, headers=alice, timeout=30).status_code == 404
    assert requests.get(server.url + two["url"], timeout=30).status_code == 200

    made_private = requests.patch(
        f"{server.url}/images/{image['id']}", json={"isPrivate": True}, headers=alice, timeout=30
    )
    assert made_private.status_code == 200
    assert_dead(server.url, two["url"])
    assert_dead(server.url, three["url"])
    # Made public again, the ended links stay ended.
    requests.patch(f"{server.url}/images/{image['id']}", json={"isPrivate": False}, headers=alice, timeout=30)
    assert_dead(server.url, two["url"])

    four = make_link(server.url, alice, image["id"]).json()
    assert requests.get(server.url + four["url"], timeout=30).status_code == 200
    assert requests.delete(f"{server.url}/images/{image['id']}", headers=alice, timeout=30).status_code == 202
    assert_dead(server.url, four["url"])


def test_forged_and_altered_tokens_are_404(server):
    alice = signup(server.url, "alice")
    image = upload(server.url, alice, png(4)).json()
    url = make_link(server.url, alice, image["id"]).json()["url"]
    token = url.removeprefix("/s/")
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    for forged in (flipped, token[:-1], token + "x", "A" * 43, "x" * 500, "%00", "%2F", token.upper()):
        assert_dead(server.url, "/s/" + forged)
    assert requests.get(server.url + url, timeout=30).status_code == 200


def test_who_may_make_links_and_with_what(server, config):
    admin = make_admin(config.database_url, server.url)
    alice, bob = signup(server.url, "alice"), signup(server.url, "bob")
    public = upload(server.url, alice, png(5)).json()
    private = upload(server.url, alice, png(6), private=True).json()
    assert (
        requests.post(f"{server.url}/images/{public['id']}/links", json={"expiresIn": 300}, timeout=30).status_code
        == 401
    )
    refused = make_link(server.url, bob, public["id"])
    assert refused.status_code == 403 and error_code(refused) == "forbidden"
    assert make_link(server.url, bob, private["id"]).status_code == 404
    assert requests.get(f"{server.url}/images/{private['id']}/links", headers=bob, timeout=30).status_code == 404
    assert make_link(server.url, alice, 987654).status_code == 404
    for seconds in (299, 30001, -5):
        response = make_link(server.url, alice, public["id"], seconds=seconds)
        assert response.status_code == 422, response.text
    for body in ({}, {"expiresIn": "soon"}, {"expiresIn": 300, "variant": {}}, {"expiresIn": 300, "format": "bmp"}):
        response = requests.post(f"{server.url}/images/{public['id']}/links", json=body, headers=alice, timeout=30)
        assert response.status_code == 422, (body, response.text)

    # Basic and Premium give no expiring links; Enterprise does.
    uid = user_id(server.url, alice)
    for plan in ("Basic", "Premium"):
        assign(server.url, admin, uid, plan)
        response = make_link(server.url, alice, public["id"])
        assert response.status_code == 403 and error_code(response) == "plan_forbids", response.text
    assign(server.url, admin, uid, "Enterprise")
    assert make_link(server.url, alice, public["id"]).status_code == 201


def test_a_plan_change_that_removes_the_right_ends_links(server, config):
    admin = make_admin(config.database_url, server.url)
    alice, bob = signup(server.url, "alice"), signup(server.url, "bob")
    a = make_link(server.url, alice, upload(server.url, alice, png(7)).json()["id"]).json()
    b = make_link(server.url, bob, upload(server.url, bob, png(8)).json()["id"]).json()
    # Another plan that still allows it leaves it alone; one that does not ends it.
    assign(server.url, admin, user_id(server.url, alice), "Enterprise")
    assert requests.get(server.url + a["url"], timeout=30).status_code == 200
    assign(server.url, admin, user_id(server.url, alice), "Basic")
    assert_dead(server.url, a["url"])
    assign(server.url, admin, user_id(server.url, alice), "Enterprise")
    assert_dead(server.url, a["url"])  # ended for good, not merely hidden
    # Changing the plan itself ends the links of everyone on it.
    changed = requests.patch(
        server.url + "/admin/plans/Unlimited", json={"originalViaLinks": False}, headers=admin, timeout=30
    )
    assert changed.status_code == 200
    assert_dead(server.url, b["url"])
    with psycopg.connect(config.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM share_links WHERE revoked_at IS NULL").fetchone()[0] == 0


def test_the_collector_prunes_dead_links(app, client, database_url):
    from conftest import auth_header, login, register

    register(client, "alice")
    headers = auth_header(login(client, "alice")["access_token"])
    from imagesamples import image_bytes
    import io

    image = client.post("/images", data={"file": (io.BytesIO(image_bytes()), "a.png")}, headers=headers).get_json()
    live = client.post(f"/images/{image['id']}/links", json={"expiresIn": 300}, headers=headers).get_json()
    dead = client.post(f"/images/{image['id']}/links", json={"expiresIn": 300}, headers=headers).get_json()
    assert client.delete(f"/images/{image['id']}/links/{dead['id']}", headers=headers).status_code == 204
    with psycopg.connect(database_url, autocommit=True) as conn:
        expired = client.post(f"/images/{image['id']}/links", json={"expiresIn": 300}, headers=headers).get_json()
        conn.execute("UPDATE share_links SET expires_at = now() - interval '1 second' WHERE id = %s", (expired["id"],))
        app.extensions["imagerepo"].blobs.collect_garbage()
        left = [r[0] for r in conn.execute("SELECT id FROM share_links ORDER BY id")]
    assert left == [live["id"]]


def test_a_new_server_secret_ends_every_link(config, tmp_path):
    with live_server(config.database_url, tmp_path / "b1") as server:
        alice = signup(server.url, "alice")
        url = make_link(server.url, alice, upload(server.url, alice, png(9)).json()["id"]).json()["url"]
        assert requests.get(server.url + url, timeout=30).status_code == 200
    with live_server(
        config.database_url, tmp_path / "b1", extra_env={"IMAGEREPO_JWT_SECRET": "rotated-" + "z" * 50}
    ) as server:
        assert_dead(server.url, url)
