"""Password rules (common, breached, trivial and personal passwords refused; long and Unicode
ones welcome), NFKC before hashing with old hashes still working, and login timing that does
not tell unknown names from wrong passwords."""

from __future__ import annotations

import statistics
import time
import unicodedata

import psycopg
import pytest
from conftest import assert_error, login, register
from werkzeug.security import check_password_hash, generate_password_hash

from imagerepo.passwords import common_passwords


def _register(client, password, name="alice", email="alice@example.com"):
    return client.post("/register", json={"name": name, "email": email, "password": password})


@pytest.mark.parametrize(
    "password",
    [
        "password",
        "12345678",
        " " * 8,
        "\t \u3000 \u00a0  \n",
        "Password1",
        "PASSWORD",
        "  qwertyuiop  ",
        "iloveyou",
        "p@ssw0rd",
        "\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44",  # fullwidth "password"
        "aaaaaaaaaaaaaaaa",
        "abcabcabcabc",
        "12121212",
        "abcdefghij",
        "98765432",
        "alice2024!",
        "Alice Alice Alice",
        "alice@example.com",
        "imagerepo123",
        "short",
    ],
)
def test_weak_passwords_are_refused_with_a_clear_message(client, password):
    body = assert_error(_register(client, password), 422, "validation_failed")
    assert body["error"]["message"].startswith("invalid body: password: ")
    assert body["error"]["details"][0]["field"] == "password"


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "  spaces at both ends count  ",
        "p\u00e4ssw\u00f6rter sind schwer zu merken",
        "\u043f\u0430\u0440\u043e\u043b\u044c \u043e\u0447\u0435\u043d\u044c \u0434\u043b\u0438\u043d\u043d\u044b\u0439",
        "\u65e5\u672c\u8a9e\u306e\u5408\u8a00\u8449\u3067\u3059",  # 8 CJK characters
        "\U0001f408\u200d\u2b1b sleeps on the \U0001f3b9",
        "x" * 3 + "a long passphrase " * 50,  # 903 characters
        "alice's cat is called Mr Biscuit",  # the name inside a long passphrase is fine
    ],
)
def test_long_and_unicode_passwords_are_welcome(client, password):
    response = _register(client, password)
    assert response.status_code == 201, response.get_json()
    assert login(client, "alice", password)["access_token"]


def test_length_limits(client):
    assert_error(_register(client, "\u00e9" * 7), 422, "validation_failed")
    assert_error(_register(client, "q7" + "z" * 1023), 422, "validation_failed")
    assert _register(client, "q7" + "z9" * 511).status_code == 201  # 1024 characters


def test_the_blocklist_is_the_shipped_one():
    common = common_passwords()
    assert len(common) > 19000
    assert {"password", "12345678", "qwerty123", "iloveyou"} <= common


def test_composed_and_decomposed_spellings_are_one_password(client):
    decomposed = unicodedata.normalize("NFD", "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e")
    register(client, "alice", password=decomposed)
    assert login(client, "alice", unicodedata.normalize("NFC", decomposed))["access_token"]
    assert login(client, "alice", decomposed)["access_token"]


def test_hashes_made_before_normalisation_keep_working(client, config):
    """Before NFKC, the password was hashed as sent: such a hash must still log in, and is
    replaced by the hash of the normalised form."""
    as_sent = unicodedata.normalize("NFD", "\u00e9l\u00e9phant rose volant")
    register(client, "alice", password="placeholder passphrase")
    with psycopg.connect(config.database_url) as conn:
        conn.execute("UPDATE users SET password_hash = %s", (generate_password_hash(as_sent, method="scrypt"),))
    assert login(client, "alice", as_sent)["access_token"]
    with psycopg.connect(config.database_url) as conn:
        stored = conn.execute("SELECT password_hash FROM users").fetchone()[0]
    assert check_password_hash(stored, unicodedata.normalize("NFKC", as_sent))
    assert login(client, "alice", unicodedata.normalize("NFC", as_sent))["access_token"]
    assert_error(client.post("/login", json={"username": "alice", "password": "placeholder passphrase"}), 401)


def _login_time(client, username, address):
    started = time.perf_counter()
    response = client.post(
        "/login",
        json={"username": username, "password": "ne\u0301 wrong passwo\u0308rd"},  # NFD
        environ_base={"REMOTE_ADDR": address},
    )
    elapsed = time.perf_counter() - started
    assert_error(response, 401, "invalid_credentials")
    return elapsed


def test_an_unknown_name_costs_the_same_time_as_a_wrong_password(client):
    """Both verify a scrypt hash (twice here: the password is not in NFKC form), so neither is
    a fraction of the other. A fresh client address per attempt keeps the limits out of it."""
    register(client, "alice")
    known, unknown = [], []
    for n in range(8):
        known.append(_login_time(client, "alice", f"10.1.0.{n}"))
        unknown.append(_login_time(client, f"nobody{n}", f"10.2.0.{n}"))
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.6 < ratio < 1.6, (known, unknown)
