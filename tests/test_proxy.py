"""Behind a reverse proxy: the client's address comes from X-Forwarded-For, believed only from a
trusted proxy, so the access-key limits and the audit trail count real clients."""

import pytest

from conftest import assert_error, with_changes
from imagerepo import create_app
from imagerepo.config import Config, ConfigError
from imagesamples import image_bytes, quick_user, uploaded

NGINX = "127.0.0.1"


@pytest.fixture
def behind_proxy(config):
    application = create_app(with_changes(config, access_key_max_failures=2, trusted_proxy_hops=1))
    client = application.test_client()
    alice_h = quick_user(application, "alice")["headers"]
    image = uploaded(client, alice_h, image_bytes(color="red"), isPrivate="1", accessKey="right-key")
    yield application, client, alice_h, image
    application.extensions["imagerepo_audit"].flush()
    application.extensions["imagerepo"].db.close()


def _guess(client, image, client_address: str, peer: str = NGINX, key: str = "guess"):
    return client.get(
        f"/images/{image['id']}?accesskey={key}",
        headers={"X-Forwarded-For": client_address},
        environ_base={"REMOTE_ADDR": peer},
    )


def test_wrong_keys_are_counted_per_real_client_behind_the_proxy(behind_proxy):
    _, client, _, image = behind_proxy
    for _ in range(2):
        assert_error(_guess(client, image, "203.0.113.7"), 404, "not_found")
    assert_error(_guess(client, image, "203.0.113.7"), 429, "too_many_attempts")
    # Everyone else comes through the same proxy address and is not locked out with the guesser.
    assert _guess(client, image, "198.51.100.20", key="right-key").status_code == 200
    assert_error(_guess(client, image, "198.51.100.20"), 404, "not_found")
    # The proxy appends the peer it saw: a client-supplied entry before it changes nothing.
    assert_error(_guess(client, image, "198.51.100.99, 203.0.113.7", key="right-key"), 429)


def test_forwarded_for_from_an_untrusted_peer_is_ignored(behind_proxy):
    _, client, _, image = behind_proxy
    # A client reaching the app directly cannot pick a fresh address per guess.
    for n in range(2):
        assert_error(_guess(client, image, f"192.0.2.{n}", peer="10.20.30.40"), 404)
    assert_error(_guess(client, image, "192.0.2.99", peer="10.20.30.40"), 429)


def test_a_unix_socket_peer_is_a_trusted_proxy(behind_proxy):
    application, client, alice_h, _ = behind_proxy
    response = client.get(
        "/me", headers={**alice_h, "X-Forwarded-For": "203.0.113.50"}, environ_base={"REMOTE_ADDR": ""}
    )
    assert response.status_code == 200
    application.extensions["imagerepo_audit"].flush()
    records = client.get("/audit?path=/me", headers=alice_h).get_json()["records"]
    assert [r["client"] for r in records] == ["203.0.113.50"]


def test_without_hops_the_header_is_ignored(config):
    application = create_app(with_changes(config, access_key_max_failures=1))
    client = application.test_client()
    alice_h = quick_user(application, "alice")["headers"]
    image = uploaded(client, alice_h, image_bytes(color="red"), isPrivate="1", accessKey="right-key")
    try:
        assert_error(_guess(client, image, "203.0.113.1"), 404)
        assert_error(_guess(client, image, "203.0.113.2"), 429)
    finally:
        application.extensions["imagerepo"].db.close()


def test_proxy_settings_from_the_environment():
    config = Config.from_env(
        {
            "IMAGEREPO_JWT_SECRET": "x" * 40,
            "IMAGEREPO_TRUSTED_PROXY_HOPS": "1",
            "IMAGEREPO_TRUSTED_PROXIES": "10.0.0.0/8, ::1",
        }
    )
    assert config.trusted_proxy_hops == 1 and config.trusted_proxies == ("10.0.0.0/8", "::1")
    assert Config.from_env({"IMAGEREPO_JWT_SECRET": "x" * 40}).trusted_proxy_hops == 0
    with pytest.raises(ConfigError):
        Config.from_env({"IMAGEREPO_JWT_SECRET": "x" * 40, "IMAGEREPO_TRUSTED_PROXIES": "nginx.internal"})
