"""Probing ids with access keys tells nothing: an absent id and someone else's private image
answer a key the same way (status, body, headers), are counted and limited the same way, and
take the same time."""

from __future__ import annotations

import statistics
import time

import psycopg
import pytest
import requests
from conftest import with_changes
from imagesamples import image_bytes, quick_user, uploaded

from imagerepo import create_app


@pytest.fixture
def probe(config):
    """Alice's private image, an id that has no image, and bob to probe them (3 wrong keys per
    id and client allowed)."""
    application = create_app(with_changes(config, access_key_max_failures=3, access_key_max_failures_per_client=100))
    client = application.test_client()
    alice_h = quick_user(application, "alice")["headers"]
    bob_h = quick_user(application, "bob")["headers"]
    private = uploaded(client, alice_h, image_bytes(color="red"), isPrivate="1", accessKey="right-key")
    yield client, bob_h, private["id"], private["id"] + 1000
    application.extensions["imagerepo_audit"].flush()
    application.extensions["imagerepo"].db.close()


def _seen(response) -> tuple:
    """Everything a prober sees, but the date."""
    headers = {k: v for k, v in response.headers.items() if k not in ("Date",)}
    return response.status_code, response.get_data(), headers


@pytest.mark.parametrize("route", ["/images/{id}", "/images/{id}/content"])
def test_absent_and_private_ids_answer_a_wrong_key_the_same_way(probe, config, route):
    client, bob_h, private_id, absent_id = probe
    for ask in (
        lambda url: client.get(url, headers=bob_h),
        lambda url: client.get(url + "?accesskey=guess", headers=bob_h),
        lambda url: client.get(url, headers={**bob_h, "X-Access-Key": "guess"}),
        lambda url: client.get(url + "?accesskey=guess"),
        lambda url: client.head(url + "?accesskey=guess"),
    ):
        private, absent = ask(route.format(id=private_id)), ask(route.format(id=absent_id))
        assert _seen(private) == _seen(absent)
    # both are now limited (three wrong keys each), and limited the same way
    private = client.get(route.format(id=private_id) + "?accesskey=right-key", headers=bob_h)
    absent = client.get(route.format(id=absent_id) + "?accesskey=right-key", headers=bob_h)
    assert private.status_code == 429 and _seen(private) == _seen(absent)
    # no key: still the plain 404 for both
    assert _seen(client.get(route.format(id=private_id))) == _seen(client.get(route.format(id=absent_id)))
    with psycopg.connect(config.database_url) as conn:
        counted = dict(conn.execute("SELECT image_id, count(*) FROM access_key_failures GROUP BY image_id").fetchall())
    assert counted == {private_id: 3, absent_id: 3}


def test_wrong_keys_on_absent_ids_count_towards_the_client_limit(config):
    application = create_app(with_changes(config, access_key_max_failures=3, access_key_max_failures_per_client=5))
    try:
        client = application.test_client()
        alice_h = quick_user(application, "alice")["headers"]
        private = uploaded(client, alice_h, image_bytes(color="red"), isPrivate="1", accessKey="right-key")
        answers = [client.get(f"/images/{private['id'] + n}?accesskey=guess").status_code for n in range(1, 7)]
        assert answers == [404] * 5 + [429]
        assert client.get(f"/images/{private['id']}?accesskey=right-key").status_code == 429
    finally:
        application.extensions["imagerepo_audit"].flush()
        application.extensions["imagerepo"].db.close()


def test_ids_past_bigint_with_a_key_are_404_and_counted(probe):
    client, bob_h, _, _ = probe
    huge = 2**70
    answers = [client.get(f"/images/{huge + n}?accesskey=guess", headers=bob_h).status_code for n in range(4)]
    assert answers == [404, 404, 404, 429]


def test_on_the_real_server_probing_shows_no_difference(config):
    """Same bytes and about the same time over HTTP. Before, an absent id answered 404 after one
    query and a private one 403 after five (lock, count, prune, record)."""
    from http_helpers import signup
    from live_server import live_server

    limits = {"IMAGEREPO_ACCESS_KEY_MAX_FAILURES": "1000", "IMAGEREPO_ACCESS_KEY_MAX_FAILURES_PER_CLIENT": "10000"}
    with live_server(config.database_url, config.blob_dir, workers=1, threads=2, extra_env=limits) as server:
        owner = signup(server.url, "alice")
        made = requests.post(
            server.url + "/images/raw?name=p.png&isPrivate=1&accessKey=right-key",
            data=image_bytes(color="red"),
            headers=owner,
            timeout=30,
        )
        private_url = f"{server.url}/images/{made.json()['id']}"
        absent_url = f"{server.url}/images/{made.json()['id'] + 1000}"
        session = requests.Session()
        times = {private_url: [], absent_url: []}
        for n in range(60):
            seen = []
            for url in (private_url, absent_url)[:: 1 if n % 2 else -1]:
                started = time.perf_counter()
                response = session.get(url, headers={"X-Access-Key": "guess"}, timeout=30)
                times[url].append(time.perf_counter() - started)
                seen.append((response.status_code, response.content))
            assert seen[0] == seen[1] and seen[0][0] == 404
        ratio = statistics.median(times[absent_url]) / statistics.median(times[private_url])
        # about 1 now (about 0.4 before: one query against five)
        assert 0.7 < ratio < 1.43, times
