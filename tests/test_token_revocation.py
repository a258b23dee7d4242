"""Revoking a refresh token revokes the access tokens minted from it, in every worker; a
malformed Authorization header is a 401 everywhere, never silently ignored."""

from __future__ import annotations

import psycopg
import pytest
import requests
from conftest import assert_error, auth_header, login, register
from imagesamples import image_bytes, uploaded

PASSWORD = "correct horse battery"


def _refresh(client, refresh_token) -> str:
    response = client.post("/token/refresh", headers=auth_header(refresh_token))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["access_token"]


def test_logout_of_a_refresh_token_revokes_the_access_tokens_it_minted(client):
    register(client, "alice")
    tokens = login(client, "alice")
    minted = [_refresh(client, tokens["refresh_token"]) for _ in range(2)]
    other_session = login(client, "alice")
    for token in (tokens["access_token"], *minted, other_session["access_token"]):
        assert client.get("/me", headers=auth_header(token)).status_code == 200

    assert client.post("/logout", headers=auth_header(tokens["refresh_token"])).status_code == 200
    # the login's own access token and every one refreshed from it are dead ...
    for token in (tokens["access_token"], *minted):
        assert_error(client.get("/me", headers=auth_header(token)), 401, "unauthorized")
    assert_error(client.post("/token/refresh", headers=auth_header(tokens["refresh_token"])), 401)
    # ... another login's are not
    assert client.get("/me", headers=auth_header(other_session["access_token"])).status_code == 200
    assert _refresh(client, other_session["refresh_token"])


def test_logout_of_an_access_token_leaves_its_refresh_token(client):
    register(client, "alice")
    tokens = login(client, "alice")
    assert client.post("/logout", headers=auth_header(tokens["access_token"])).status_code == 200
    assert_error(client.get("/me", headers=auth_header(tokens["access_token"])), 401)
    assert client.get("/me", headers=auth_header(_refresh(client, tokens["refresh_token"]))).status_code == 200


def test_a_revoked_refresh_token_is_remembered_while_its_children_live(client, config):
    register(client, "alice")
    tokens = login(client, "alice")
    client.post("/logout", headers=auth_header(tokens["refresh_token"]))
    with psycopg.connect(config.database_url) as conn:
        kept_for = conn.execute("SELECT expires_at - now() FROM revoked_tokens").fetchone()[0]
    # the refresh token's lifetime plus one access-token lifetime
    assert kept_for.days == config.refresh_token_days and kept_for.seconds >= config.access_token_minutes * 60 - 5


def _malformed(token: str) -> list[dict]:
    return [
        {"Authorization": token},  # the token without "Bearer "
        {"Authorization": f"Token {token}"},
        {"Authorization": f"bearer {token}"},
        {"Authorization": f"Bearer {token} extra"},
        {"Authorization": f"Basic YWxpY2U6cHc=, Bearer {token}"},
        {"Authorization": "Bearer"},
        {"Authorization": ""},
    ]


@pytest.mark.parametrize("route", ["/images/{id}", "/images/{id}/content", "/images", "/tags", "/me", "/login"])
def test_a_malformed_authorization_header_is_401_everywhere(client, alice, route):
    image = uploaded(client, alice["headers"], image_bytes(color="blue"), isPrivate="1")
    url = route.format(id=image["id"])
    for headers in _malformed(alice["tokens"]["access_token"]):
        if route == "/login":
            response = client.post(url, json={"username": "alice", "password": PASSWORD}, headers=headers)
        else:
            response = client.get(url, headers=headers)
        body = assert_error(response, 401, "unauthorized")
        assert "malformed Authorization header" in body["error"]["message"], headers
        assert response.headers["WWW-Authenticate"] == "Bearer"
    # the well-formed header still works, and no header at all is still anonymous
    assert client.get(f"/images/{image['id']}", headers=alice["headers"]).status_code == 200
    assert_error(client.get(f"/images/{image['id']}"), 404, "not_found")


def test_on_the_real_server(config):
    """Across two gunicorn workers: the minted token is refused by whichever worker answers,
    and the owner's token without "Bearer " is a 401, not an anonymous 404."""
    from http_helpers import signup
    from live_server import live_server

    with live_server(config.database_url, config.blob_dir, workers=2, threads=2) as server:
        session = requests.Session()
        owner = signup(server.url, "alice")
        token = owner["Authorization"].removeprefix("Bearer ")
        made = session.post(
            server.url + "/images/raw?name=p.png&isPrivate=1", data=image_bytes(color="red"), headers=owner, timeout=30
        )
        assert made.status_code == 201
        content = f"{server.url}/images/{made.json()['id']}/content"
        without_bearer = session.get(content, headers={"Authorization": token}, timeout=30)
        assert without_bearer.status_code == 401 and "malformed" in without_bearer.json()["error"]["message"]

        tokens = session.post(
            server.url + "/login", json={"username": "alice", "password": PASSWORD}, timeout=30
        ).json()
        minted = session.post(
            server.url + "/token/refresh", headers={"Authorization": f"Bearer {tokens['refresh_token']}"}, timeout=30
        ).json()["access_token"]
        assert session.get(content, headers={"Authorization": f"Bearer {minted}"}, timeout=30).status_code == 200
        logout = session.post(
            server.url + "/logout", headers={"Authorization": f"Bearer {tokens['refresh_token']}"}, timeout=30
        )
        assert logout.status_code == 200
        # fresh connections, so both workers answer some of them
        answers = {
            requests.get(content, headers={"Authorization": f"Bearer {minted}"}, timeout=30).status_code
            for _ in range(12)
        }
        assert answers == {401}
