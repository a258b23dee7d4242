"""Accounts and tokens: register, login, refresh, me, logout, and every kind of bad token."""

import base64
import datetime as dt
import json

import jwt as pyjwt
import pytest

from conftest import assert_error, auth_header, login, register

SECRET = "test-secret-" + "x" * 52  # the app fixture's secret (conftest.py)


def test_register_returns_user_without_password(client):
    response = client.post(
        "/register", json={"name": "alice", "email": "Alice@Example.com", "password": "long enough pw"}
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["name"] == "alice" and body["email"].lower() == "alice@example.com"
    assert isinstance(body["id"], int) and body["isAdmin"] is False
    assert "password" not in json.dumps(body)


def test_password_is_stored_hashed(client, config):
    import psycopg

    register(client, "alice", password="correct horse battery")
    with psycopg.connect(config.database_url) as conn:
        stored = conn.execute("SELECT password_hash FROM users").fetchone()[0]
    assert stored.startswith("scrypt:") and "correct horse" not in stored


@pytest.mark.parametrize(
    "payload, status",
    [
        ({"name": "bob", "email": "bob@example.com"}, 422),  # missing password
        ({"email": "bob@example.com", "password": "longenough"}, 422),  # missing name
        ({"name": "bob", "password": "longenough"}, 422),  # missing email
        ({"name": "bob", "email": "not-an-email", "password": "longenough"}, 422),
        ({"name": "bob", "email": "bob@example.com", "password": "short"}, 422),
        ({"name": 42, "email": "bob@example.com", "password": "longenough"}, 422),
        ({"name": "bob", "email": "bob@example.com", "password": 12345678}, 422),
        ({"name": "", "email": "bob@example.com", "password": "longenough"}, 422),
        ({"name": "b ob", "email": "bob@example.com", "password": "longenough"}, 422),
        ({"name": "bob", "email": "bob@example.com", "password": "longenough", "admin": True}, 422),
        (["bob"], 422),
    ],
)
def test_register_rejects_invalid(client, payload, status):
    assert_error(client.post("/register", json=payload), status, "validation_failed")


@pytest.mark.parametrize(
    "data, content_type",
    [
        ("{not json", "application/json"),
        ("", "application/json"),
        ("name=bob", "application/x-www-form-urlencoded"),
    ],
)
def test_register_rejects_broken_json(client, data, content_type):
    assert_error(client.post("/register", data=data, content_type=content_type), 400, "bad_request")


def test_register_conflicts(client):
    register(client, "alice", email="alice@example.com")
    assert_error(
        client.post("/register", json={"name": "alice", "email": "other@example.com", "password": "longenough"}),
        409,
        "conflict",
    )
    # email uniqueness ignores case
    assert_error(
        client.post("/register", json={"name": "other", "email": "ALICE@example.com", "password": "longenough"}),
        409,
        "conflict",
    )


def test_login_with_name_or_email(client):
    register(client, "alice", email="alice@example.com")
    for username in ("alice", "alice@example.com", "ALICE@EXAMPLE.COM"):
        tokens = login(client, username)
        assert tokens["access_token"] and tokens["refresh_token"] and tokens["token_type"] == "Bearer"


def test_login_failures_are_indistinguishable(client):
    register(client, "alice")
    wrong_password = client.post("/login", json={"username": "alice", "password": "wrong password"})
    unknown_user = client.post("/login", json={"username": "nobody", "password": "wrong password"})
    assert_error(wrong_password, 401, "invalid_credentials")
    assert_error(unknown_user, 401, "invalid_credentials")
    assert wrong_password.get_json() == unknown_user.get_json()


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"username": "alice"},
        {"password": "x"},
        {"username": 1, "password": "x"},
        {"username": "a", "password": None},
    ],
)
def test_login_validation(client, payload):
    assert_error(client.post("/login", json=payload), 422)


def test_me_refresh_logout_cycle(client):
    register(client, "alice")
    tokens = login(client, "alice")
    access, refresh = tokens["access_token"], tokens["refresh_token"]

    me = client.get("/me", headers=auth_header(access))
    assert me.status_code == 200 and me.get_json()["name"] == "alice"

    # a refresh token is not an access token, and vice versa
    assert_error(client.get("/me", headers=auth_header(refresh)), 401)
    assert_error(client.post("/token/refresh", headers=auth_header(access)), 401)

    refreshed = client.post("/token/refresh", headers=auth_header(refresh))
    assert refreshed.status_code == 200
    new_access = refreshed.get_json()["access_token"]
    assert client.get("/me", headers=auth_header(new_access)).status_code == 200

    assert client.post("/logout", headers=auth_header(access)).status_code == 200
    assert_error(client.get("/me", headers=auth_header(access)), 401, "unauthorized")
    # other tokens of the same user still work until revoked themselves
    assert client.get("/me", headers=auth_header(new_access)).status_code == 200
    assert client.post("/logout", headers=auth_header(refresh)).status_code == 200
    assert_error(client.post("/token/refresh", headers=auth_header(refresh)), 401)


def _forge(payload: dict, secret: str = SECRET, algorithm: str = "HS256") -> str:
    return pyjwt.encode(payload, secret, algorithm=algorithm)


def _claims(user_id: int, **overrides) -> dict:
    now = dt.datetime.now(dt.timezone.utc)
    claims = {
        "sub": str(user_id),
        "jti": "abc",
        "type": "access",
        "fresh": False,
        "iat": now,
        "nbf": now,
        "exp": now + dt.timedelta(minutes=5),
    }
    claims.update(overrides)
    return claims


def _alg_none_token(user_id: int) -> str:
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    claims = {"sub": str(user_id), "jti": "n", "type": "access", "exp": 4102444800}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize(
    "make_header",
    [
        lambda uid: {},
        lambda uid: {"Authorization": "Bearer"},
        lambda uid: {"Authorization": "Bearer not.a.token"},
        lambda uid: {"Authorization": "Basic YWxpY2U6cHc="},
        lambda uid: {"Authorization": "Bearer " + _forge(_claims(uid), secret="another secret that is long enough")},
        lambda uid: {
            "Authorization": "Bearer "
            + _forge(
                _claims(
                    uid,
                    exp=dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc),
                    iat=dt.datetime(1999, 1, 1, tzinfo=dt.timezone.utc),
                    nbf=dt.datetime(1999, 1, 1, tzinfo=dt.timezone.utc),
                )
            )
        },
        lambda uid: {"Authorization": "Bearer " + _alg_none_token(uid)},
        lambda uid: {"Authorization": "Bearer " + _forge(_claims(uid), algorithm="HS512")},
        lambda uid: {"Authorization": "Bearer " + _forge(_claims(99999))},  # no such user
        lambda uid: {"Authorization": "Bearer " + _forge(_claims(uid, sub="alice"))},  # non-numeric identity
    ],
    ids=[
        "missing",
        "empty",
        "malformed",
        "basic",
        "wrong-secret",
        "expired",
        "alg-none",
        "hs512",
        "unknown-user",
        "bad-subject",
    ],
)
def test_bad_tokens_get_401(client, make_header):
    user = register(client, "alice")
    assert_error(client.get("/me", headers=make_header(user["id"])), 401)


def test_a_correctly_forged_token_works(client):
    """Sanity check for the table above: the forging helper makes valid tokens."""
    user = register(client, "alice")
    assert client.get("/me", headers=auth_header(_forge(_claims(user["id"])))).status_code == 200


def test_disabled_user_is_locked_out(client, config):
    import psycopg

    register(client, "alice")
    access = login(client, "alice")["access_token"]
    with psycopg.connect(config.database_url) as conn:
        conn.execute("UPDATE users SET is_disabled = true WHERE name = 'alice'")
    assert_error(client.get("/me", headers=auth_header(access)), 401)
    assert_error(client.post("/login", json={"username": "alice", "password": "correct horse battery"}), 403)


def test_unknown_route_and_method_use_error_shape(client):
    assert_error(client.get("/no/such/route"), 404, "not_found")
    response = client.get("/register")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_every_response_has_nosniff(client):
    assert client.get("/healthz").headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/nope").headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "route, payload",
    [
        ("/register", {"name": "bo\x00b", "email": "bob@example.com", "password": "longenough"}),
        ("/register", {"name": "bob", "email": "bob@example.com", "password": "long\x00enough"}),
        ("/login", {"username": "bo\x00b", "password": "whatever1"}),
        ("/login", {"username": "bob", "password": "whatever1", "\x00": 1}),
    ],
)
def test_nul_characters_are_a_validation_error_not_a_crash(client, route, payload):
    assert_error(client.post(route, json=payload), 422, "validation_failed")


def test_deeply_nested_json_is_400_not_a_crash(client):
    assert_error(client.post("/register", data="[" * 60_000, content_type="application/json"), 400, "bad_request")
