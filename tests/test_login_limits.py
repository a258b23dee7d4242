"""Password guessing is limited per name and client, per name and per client, with growing
delays instead of long lockouts; unknown names are limited exactly like real ones; the limits
hold across gunicorn workers."""

from __future__ import annotations

import concurrent.futures
import time

import pytest
import requests
from conftest import assert_error, register, with_changes
from requests.adapters import HTTPAdapter

from imagerepo import create_app
from imagerepo.login_limits import client_key, delay_seconds

PASSWORD = "correct horse battery"
WRONG = "not the password at all"


@pytest.fixture
def limited(config):
    """An app with small limits: 3 per name and client, 5 per name, 6 per client."""
    application = create_app(
        with_changes(
            config,
            login_max_failures=3,
            login_max_failures_per_account=5,
            login_max_failures_per_client=6,
            login_max_delay_seconds=4,
        )
    )
    yield application.test_client()
    application.extensions["imagerepo_audit"].flush()
    application.extensions["imagerepo"].db.close()


def _login(client, username, password=WRONG, address="10.0.0.1"):
    return client.post(
        "/login", json={"username": username, "password": password}, environ_base={"REMOTE_ADDR": address}
    )


def _retry_after(response) -> int:
    assert_error(response, 429, "too_many_attempts")
    return int(response.headers["Retry-After"])


def test_delays_grow_after_the_limit_and_the_right_password_waits_too(limited):
    register(limited, "alice", password=PASSWORD)
    for _ in range(3):
        assert_error(_login(limited, "alice"), 401, "invalid_credentials")
    # past the limit even the right password waits, or guessing would simply go on
    assert _retry_after(_login(limited, "alice", PASSWORD)) == 1
    time.sleep(1.05)
    assert_error(_login(limited, "alice"), 401)
    assert _retry_after(_login(limited, "alice", PASSWORD)) == 2
    time.sleep(2.05)
    assert_error(_login(limited, "alice"), 401)
    assert _retry_after(_login(limited, "alice")) == 4
    # capped: never longer than login_max_delay_seconds
    assert delay_seconds(50, 3, 4) == 4 and delay_seconds(2, 3, 4) == 0 and delay_seconds(3, 3, 60) == 1


def test_a_success_clears_the_count_and_the_owner_elsewhere_is_not_locked_out(limited):
    register(limited, "alice", password=PASSWORD)
    for _ in range(3):
        assert_error(_login(limited, "alice"), 401)
    assert_error(_login(limited, "alice", PASSWORD), 429)
    # the owner on another client still gets in: the attacker's limit is theirs
    assert _login(limited, "alice", PASSWORD, address="10.0.0.2").status_code == 200
    time.sleep(1.05)
    assert _login(limited, "alice", PASSWORD).status_code == 200
    for _ in range(3):  # counted from zero again
        assert_error(_login(limited, "alice"), 401)


def test_every_spelling_of_a_name_shares_one_count(limited):
    register(limited, "alice", password=PASSWORD)
    for spelling in ("alice", "ALICE", "\uff41\uff4c\uff49\uff43\uff45"):
        assert_error(_login(limited, spelling), 401)
    assert_error(_login(limited, " Alice "), 429)


def test_unknown_names_are_limited_exactly_like_real_ones(limited):
    register(limited, "alice", password=PASSWORD)
    real = [_login(limited, "alice", address="10.0.0.1") for _ in range(4)]
    unknown = [_login(limited, "nobody", address="10.0.0.2") for _ in range(4)]
    assert [r.status_code for r in real] == [r.status_code for r in unknown] == [401, 401, 401, 429]
    assert [r.get_json() for r in real] == [r.get_json() for r in unknown]
    assert real[-1].headers["Retry-After"] == unknown[-1].headers["Retry-After"]


def test_many_clients_on_one_name_meet_the_name_limit(limited):
    register(limited, "alice", password=PASSWORD)
    for n in range(5):
        assert_error(_login(limited, "alice", address=f"10.0.1.{n}"), 401)
    assert_error(_login(limited, "alice", PASSWORD, address="10.0.1.99"), 429)


def test_one_client_on_many_names_meets_the_client_limit(limited):
    for n in range(6):
        assert_error(_login(limited, f"user{n}"), 401)
    assert_error(_login(limited, "someone-else"), 429)
    assert_error(_login(limited, "someone-else", address="10.0.0.2"), 401)


def test_ipv6_clients_count_per_64_block(limited):
    register(limited, "alice", password=PASSWORD)
    for n in range(3):  # a new address of the same /64 each time
        assert_error(_login(limited, "alice", address=f"2001:db8:1:2::{n + 1:x}"), 401)
    assert_error(_login(limited, "alice", address="2001:db8:1:2:ffff::9"), 429)
    assert _login(limited, "alice", PASSWORD, address="2001:db8:1:3::1").status_code == 200
    assert client_key("::ffff:10.0.0.1") == "10.0.0.1" and client_key("10.0.0.1") == "10.0.0.1"


# -- against the real server: two gunicorn workers share the limits ---------------------------
class _FromAddress(HTTPAdapter):
    """Connections from another loopback address: another client, as the server sees it."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def _session(address: str) -> requests.Session:
    session = requests.Session()
    session.mount("http://", _FromAddress(address))
    return session


def test_guessing_at_speed_on_the_real_server_is_stopped(config):
    """The issue's reproduction: wrong passwords as fast as two workers take them, then the right
    one. Before the fix every guess was checked and the right one answered 200."""
    from live_server import live_server

    with live_server(config.database_url, config.blob_dir, workers=2, threads=4) as server:
        attacker, owner = _session("127.0.0.1"), _session("127.0.0.2")
        register_response = attacker.post(
            server.url + "/register",
            json={"name": "alice", "email": "alice@example.com", "password": PASSWORD},
            timeout=30,
        )
        assert register_response.status_code == 201

        def guess(_):
            return attacker.post(
                server.url + "/login", json={"username": "alice", "password": WRONG}, timeout=30
            ).status_code

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(guess, range(60)))
        # 5 free, then one more per delay (1 s, 2 s, ...) at most while the burst lasts
        assert statuses.count(401) <= 8 and statuses.count(429) >= 52, statuses
        assert set(statuses) == {401, 429}

        refused = attacker.post(server.url + "/login", json={"username": "alice", "password": PASSWORD}, timeout=30)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_attempts"
        wait = int(refused.headers["Retry-After"])
        assert 1 <= wait <= 60

        # the owner, on another client, is not locked out by someone else's guesses
        mine = owner.post(server.url + "/login", json={"username": "alice", "password": PASSWORD}, timeout=30)
        assert mine.status_code == 200, mine.text

        # and the guessing client itself only waits the delay it was told
        time.sleep(wait + 0.1)
        later = attacker.post(server.url + "/login", json={"username": "alice", "password": PASSWORD}, timeout=30)
        assert later.status_code == 200, later.text
