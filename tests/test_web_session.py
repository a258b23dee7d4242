"""The browser's session (imagerepo/web/session.py, auth.init_jwt): tokens in HttpOnly
SameSite=Strict cookies, CSRF double submit on every cookie-authenticated change, refresh with a
path-restricted cookie, logout that revokes. Bearer clients are unaffected."""

from __future__ import annotations

import io

import pytest
from conftest import assert_error, auth_header, login, register, with_changes
from imagesamples import image_bytes, upload

from imagerepo import create_app

PASSWORD = "correct horse battery"


def cookie_login(client, name="alice", password=PASSWORD):
    response = client.post("/web/session", json={"username": name, "password": password})
    assert response.status_code == 200, response.get_json()
    return response


def set_cookies(response) -> dict[str, str]:
    """Set-Cookie headers by cookie name."""
    return {h.split("=", 1)[0]: h for h in response.headers.getlist("Set-Cookie")}


def csrf(client, name="csrf_access_token") -> dict:
    return {"X-CSRF-TOKEN": client.get_cookie(name).value}


def image_count(app) -> int:
    with app.extensions["imagerepo"].db.read() as conn:
        return conn.execute("SELECT count(*) AS n FROM images").fetchone()["n"]


@pytest.fixture
def browser(client):
    """alice, logged in through the gallery's cookie session."""
    register(client, "alice")
    cookie_login(client)
    return client


def test_login_sets_httponly_strict_cookies_and_answers_no_token(client):
    register(client, "alice")
    response = cookie_login(client)
    body = response.get_json()
    assert body["user"]["name"] == "alice" and "access_token" not in body and "refresh_token" not in body
    assert response.headers["Cache-Control"] == "no-store"
    cookies = set_cookies(response)
    assert set(cookies) == {"access_token_cookie", "refresh_token_cookie", "csrf_access_token", "csrf_refresh_token"}
    for name, header in cookies.items():
        assert "SameSite=Strict" in header
        assert ("HttpOnly" in header) == name.endswith("_cookie"), header  # the JS reads only the CSRF ones
        assert "Secure" not in header  # test config; production below
    assert "Path=/web/session" in cookies["refresh_token_cookie"]
    assert "Path=/;" in cookies["access_token_cookie"] + ";"
    # The access cookie dies before its token (15 min), so a browser never sends a dead token.
    max_age = int(cookies["access_token_cookie"].split("Max-Age=")[1].split(";")[0])
    assert 0 < max_age < 15 * 60


def test_login_refusals(client):
    register(client, "alice")
    assert_error(client.post("/web/session", json={"username": "alice", "password": "wrong password"}), 401)
    assert_error(client.post("/web/session", json={"username": "alice"}), 422)
    # A cross-site form can only send form encodings or text/plain: refused before any check.
    form = client.post("/web/session", data={"username": "alice", "password": PASSWORD})
    assert_error(form, 415, "unsupported_media_type")
    plain = client.post(
        "/web/session", data=f'{{"username": "alice", "password": "{PASSWORD}"}}', content_type="text/plain"
    )
    assert_error(plain, 415)
    assert client.get_cookie("access_token_cookie") is None


def test_cookie_reads_need_no_csrf_and_show_private_images(app, browser):
    assert browser.get("/me").get_json()["name"] == "alice"
    image = upload(browser, csrf(browser), image_bytes(), "secret.png", isPrivate=1).get_json()
    # The owner's <img> sends the cookie: the content route accepts it.
    content = browser.get(image["url"])
    assert content.status_code == 200 and content.data == image_bytes()
    listed = browser.get("/images?mine=1").get_json()["images"]
    assert [i["id"] for i in listed] == [image["id"]] and listed[0]["accessKey"]
    # Another browser, another user: the private image stays hidden.
    other = app.test_client()
    register(other, "bob")
    cookie_login(other, "bob")
    assert_error(other.get(image["url"]), 404)
    assert other.get("/images").get_json()["images"] == []


def test_cookie_changes_without_csrf_header_are_refused(app, browser):
    image = upload(browser, csrf(browser), image_bytes(), "mine.png").get_json()
    before = image_count(app)
    assert_error(upload(browser, {}, image_bytes(color="blue"), "forged.png"), 403, "csrf_failed")
    assert_error(
        upload(browser, {"X-CSRF-TOKEN": "guess"}, image_bytes(color="blue"), "forged.png"), 403, "csrf_failed"
    )
    raw = browser.post("/images/raw?name=forged.png", data=image_bytes(color="green"))
    assert_error(raw, 403, "csrf_failed")
    assert image_count(app) == before
    assert_error(browser.patch(f"/images/{image['id']}", json={"isPrivate": True}), 403, "csrf_failed")
    assert_error(browser.put(f"/images/{image['id']}/tags", json={"tags": ["x"]}), 403, "csrf_failed")
    assert_error(browser.delete(f"/images/{image['id']}"), 403, "csrf_failed")
    after = browser.get(f"/images/{image['id']}").get_json()
    assert after["isPrivate"] is False and after["tags"] == []
    # The access token's CSRF value is not the refresh token's, and vice versa.
    assert_error(browser.delete(f"/images/{image['id']}", headers=csrf(browser, "csrf_refresh_token")), 403)
    assert browser.delete(f"/images/{image['id']}", headers=csrf(browser)).status_code == 202


def test_bearer_header_wins_over_cookies_and_needs_no_csrf(app, browser):
    register(browser, "bob")
    bob = auth_header(login(browser, "bob")["access_token"])
    # The browser still holds alice's cookies; the bearer header decides who uploads.
    response = upload(browser, bob, image_bytes(), "bobs.png")
    assert response.status_code == 201
    assert response.get_json()["creator"] == browser.get("/me", headers=bob).get_json()["id"]


def test_refresh_cookie_gives_a_new_access_cookie(browser):
    assert_error(browser.post("/web/session/refresh"), 403, "csrf_failed")
    response = browser.post("/web/session/refresh", headers=csrf(browser, "csrf_refresh_token"))
    assert response.status_code == 200, response.get_json()
    assert {"access_token_cookie", "csrf_access_token"} <= set(set_cookies(response))
    assert "refresh_token_cookie" not in set_cookies(response)
    assert browser.get("/me").status_code == 200
    # Without the access cookie (expired in the browser), the API sees an anonymous caller...
    browser.delete_cookie("access_token_cookie")
    browser.delete_cookie("csrf_access_token")
    assert_error(browser.get("/me"), 401)
    # ... until the page refreshes it.
    assert browser.post("/web/session/refresh", headers=csrf(browser, "csrf_refresh_token")).status_code == 200
    assert browser.get("/me").status_code == 200


def test_refresh_token_is_not_an_access_token(browser):
    refresh = browser.get_cookie("refresh_token_cookie", path="/web/session").value
    assert_error(browser.get("/me", headers=auth_header(refresh)), 401)


def test_logout_revokes_both_tokens_and_clears_cookies(client):
    register(client, "alice")
    cookie_login(client)
    access = client.get_cookie("access_token_cookie").value
    refresh = client.get_cookie("refresh_token_cookie", path="/web/session").value
    # Holding live tokens, a logout must prove it comes from our page.
    assert_error(client.delete("/web/session"), 403, "csrf_failed")
    assert client.get("/me", headers=auth_header(access)).status_code == 200
    response = client.delete("/web/session", headers=csrf(client))
    assert response.status_code == 200 and response.get_json() == {"revoked": 2}
    cleared = set_cookies(response)
    assert {"access_token_cookie", "refresh_token_cookie", "csrf_access_token", "csrf_refresh_token"} <= set(cleared)
    assert all("Max-Age=0" in h or "Expires=Thu, 01 Jan 1970" in h for h in cleared.values())
    assert client.get_cookie("access_token_cookie") is None
    # The tokens themselves are dead, wherever a copy of them went.
    assert_error(client.get("/me", headers=auth_header(access)), 401)
    assert_error(client.post("/token/refresh", headers=auth_header(refresh)), 401)
    # Logging out with no session just clears the cookies.
    assert client.delete("/web/session").get_json() == {"revoked": 0}


def test_logout_with_a_dead_access_cookie_still_revokes_the_refresh_token(client):
    register(client, "alice")
    cookie_login(client)
    refresh = client.get_cookie("refresh_token_cookie", path="/web/session").value
    refresh_csrf = csrf(client, "csrf_refresh_token")
    client.delete_cookie("access_token_cookie")
    client.delete_cookie("csrf_access_token")
    response = client.delete("/web/session", headers=refresh_csrf)
    assert response.get_json() == {"revoked": 1}
    assert_error(client.post("/token/refresh", headers=auth_header(refresh)), 401)


def test_cookies_are_secure_in_production(config):
    app = create_app(with_changes(config, env="production"))
    try:
        client = app.test_client()
        register(client, "alice")
        response = client.post("/web/session", json={"username": "alice", "password": PASSWORD})
        assert all("Secure" in header for header in response.headers.getlist("Set-Cookie"))
    finally:
        app.extensions["imagerepo_audit"].flush()
        app.extensions["imagerepo"].db.close()


def test_multipart_form_upload_with_cookie_but_no_header_stores_nothing(app, browser):
    """What a cross-site <form enctype=multipart/form-data> would send (the cookie, no header)."""
    form = {"file": (io.BytesIO(image_bytes()), "csrf.png"), "description": "forged"}
    response = browser.post("/images", data=form, content_type="multipart/form-data")
    assert_error(response, 403, "csrf_failed")
    assert image_count(app) == 0
