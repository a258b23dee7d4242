"""The state cache's staleness bound against the real server (gunicorn, several workers): after
a change commits, every worker refuses within BOUND_SECONDS (1 s), whichever worker made it.

Each worker starts its listener on the first read that uses the cache, so one listening session
per worker in pg_stat_activity (named with the worker's pid) shows that every worker has cached state before the change. The
checks after each change are many requests on fresh connections, sent by several threads at
once, so each worker answers some of them; all must be refused. A control with the notify
trigger switched off shows the cache really answers (a change PostgreSQL does not announce is
not seen), so the tests can fail; and a lost listener connection empties the cache.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests

from http_helpers import PASSWORD, bmp_bytes, signup
from imagerepo.statecache import BOUND_SECONDS
from live_server import live_server

WORKERS = 3
REQUESTS = 120


@pytest.fixture
def workers_server(config):
    with live_server(config.database_url, config.blob_dir, workers=WORKERS, threads=4) as running:
        yield running


def statuses(url: str, headers: dict | None = None) -> list[int]:
    """REQUESTS GETs of `url`, each on a new connection, 12 at a time."""

    def one(_):
        return requests.get(url, headers=headers or {}, timeout=30).status_code

    with ThreadPoolExecutor(12) as pool:
        return list(pool.map(one, range(REQUESTS)))


def listener_names(server) -> list[str]:
    """The application names the server's workers' listeners connect with."""
    return [f"imagerepo-statecache {pid}" for pid in server.pids()[1:]]


def listeners(database_url: str, server) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = ANY (%s)", (listener_names(server),)
        ).fetchone()[0]


def wait_for_listeners(server, database_url: str, url: str, headers: dict | None = None) -> None:
    deadline = time.monotonic() + 30
    while listeners(database_url, server) < WORKERS:
        assert time.monotonic() < deadline, "not every worker started its state cache listener"
        assert set(statuses(url, headers)) == {200}


def public_image(base: str, headers: dict, seed: int) -> str:
    files = {"file": (f"pic{seed}.bmp", bmp_bytes(8, 8, seed))}
    response = requests.post(base + "/images", headers=headers, files=files, timeout=30)
    assert response.status_code == 201, response.text
    return f"{base}/images/{response.json()['id']}/content"


def after_the_bound() -> None:
    time.sleep(BOUND_SECONDS)


def test_privacy_and_delete_are_enforced_by_every_worker_within_the_bound(workers_server, config):
    base = workers_server.url
    alice = signup(base, "alice")
    bob = signup(base, "bob")
    private_soon, deleted_soon = public_image(base, alice, 1), public_image(base, alice, 2)
    wait_for_listeners(workers_server, config.database_url, private_soon)
    for url in (private_soon, deleted_soon):
        assert set(statuses(url)) == {200}
        assert set(statuses(url, bob)) == {200}

    image_id = private_soon.split("/")[-2]
    response = requests.patch(f"{base}/images/{image_id}", headers=alice, json={"isPrivate": True}, timeout=30)
    assert response.status_code == 200 and response.json()["isPrivate"] is True
    response = requests.delete(deleted_soon.removesuffix("/content"), headers=alice, timeout=30)
    assert response.status_code == 202
    after_the_bound()
    for url in (private_soon, deleted_soon):
        assert set(statuses(url)) == {404}, url
        assert set(statuses(url, bob)) == {404}, url
    assert set(statuses(private_soon, alice)) == {200}  # the owner still reads it


def test_logout_and_a_disabled_account_are_refused_by_every_worker_within_the_bound(workers_server, config):
    base = workers_server.url
    alice = signup(base, "alice")
    image = public_image(base, alice, 3)
    bob, carol, root = signup(base, "bob"), signup(base, "carol"), signup(base, "root")
    with psycopg.connect(config.database_url, autocommit=True) as conn:
        conn.execute("UPDATE users SET is_admin = true WHERE name = 'root'")
        carol_id = conn.execute("SELECT id FROM users WHERE name = 'carol'").fetchone()[0]
    wait_for_listeners(workers_server, config.database_url, image, bob)
    assert set(statuses(image, bob)) == {200}
    assert set(statuses(image, carol)) == {200}

    assert requests.post(base + "/logout", headers=bob, timeout=30).status_code == 200
    response = requests.post(f"{base}/admin/users/{carol_id}/disable", headers=root, timeout=30)
    assert response.status_code == 200, response.text
    after_the_bound()
    assert set(statuses(image, bob)) == {401}
    assert set(statuses(image, carol)) == {401}
    assert set(statuses(image)) == {200}  # the image itself is still public


def test_a_change_nobody_announces_is_not_seen_so_the_cache_really_answers(workers_server, config):
    """The control: with the notify trigger off, a row made private stays readable from the
    workers' caches; once announced (trigger on, any update), it is refused everywhere."""
    base = workers_server.url
    alice = signup(base, "alice")
    image = public_image(base, alice, 4)
    image_id = int(image.split("/")[-2])
    wait_for_listeners(workers_server, config.database_url, image)
    assert set(statuses(image)) == {200}
    with psycopg.connect(config.database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE images DISABLE TRIGGER images_state_notify_update")
        try:
            conn.execute("UPDATE images SET is_private = true, access_key = 'k' WHERE id = %s", (image_id,))
        finally:
            conn.execute("ALTER TABLE images ENABLE TRIGGER images_state_notify_update")
    after_the_bound()
    # Stale: nothing told the workers. (A worker whose listener was starved past the bound would
    # bypass its cache and answer 404; one of three rounds of requests is enough.)
    assert any(200 in statuses(image) for _ in range(3))
    with psycopg.connect(config.database_url, autocommit=True) as conn:
        conn.execute("UPDATE images SET updated_at = now() WHERE id = %s", (image_id,))
    after_the_bound()
    assert set(statuses(image)) == {404}


def test_a_lost_listener_connection_empties_the_cache(workers_server, config):
    """Changes made while no worker listens (trigger off, listeners cut) are seen after the
    reconnect: the cache is dropped, not trusted, when its connection goes."""
    base = workers_server.url
    alice = signup(base, "alice")
    image = public_image(base, alice, 5)
    image_id = int(image.split("/")[-2])
    wait_for_listeners(workers_server, config.database_url, image)
    assert set(statuses(image)) == {200}
    with psycopg.connect(config.database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE images DISABLE TRIGGER images_state_notify_update")
        try:
            conn.execute("UPDATE images SET is_private = true, access_key = 'k' WHERE id = %s", (image_id,))
            cut = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = ANY (%s)",
                (listener_names(workers_server),),
            ).fetchone()[0]
        finally:
            conn.execute("ALTER TABLE images ENABLE TRIGGER images_state_notify_update")
    # Every worker's listener is cut (a worker's reconnecting listener may count twice).
    assert cut >= WORKERS
    after_the_bound()
    assert set(statuses(image)) == {404}
    # And the workers listen again (reconnected within a second or so).
    deadline = time.monotonic() + 10
    while listeners(config.database_url, workers_server) < WORKERS:
        assert time.monotonic() < deadline, "the listeners did not reconnect"
        time.sleep(0.2)
    assert requests.post(base + "/login", json={"username": "alice", "password": PASSWORD}, timeout=30).ok
