"""The state cache in one process, on the real database: notices drop what they name, a value
read before a change is never stored after it, sync() makes a change visible before it returns,
and a cache whose listener is gone answers nothing."""

from __future__ import annotations

import io
import time

import psycopg

from imagerepo.statecache import StateCache


def listening(cache: StateCache) -> StateCache:
    """Once the listener has proved itself (two heartbeats)."""
    deadline = time.monotonic() + 10
    while not cache._usable():  # noqa: SLF001 - waiting for the start-up, nothing else
        assert time.monotonic() < deadline, "the listener did not start"
        time.sleep(0.05)
    return cache


def test_a_notice_drops_the_entry_it_names(config, app):
    cache = listening(StateCache(config.database_url))
    try:
        cache.put("image", 7, {"is_private": False}, cache.generation())
        cache.put("image", 8, {"is_private": False}, cache.generation())
        assert cache.get("image", 7) == {"is_private": False}
        with psycopg.connect(config.database_url, autocommit=True) as conn:
            conn.execute("SELECT pg_notify('imagerepo_state', 'image:7')")
        cache.sync()
        assert cache.get("image", 7) is None
        assert cache.get("image", 8) == {"is_private": False}, "only what the notice names"
        with psycopg.connect(config.database_url, autocommit=True) as conn:
            conn.execute("SELECT pg_notify('imagerepo_state', 'image:*')")
        cache.sync()
        assert cache.get("image", 8) is None
    finally:
        cache.close()


def test_a_value_read_before_a_change_is_not_stored_after_it(config, app):
    cache = listening(StateCache(config.database_url))
    try:
        generation = cache.generation()  # a reader starts its query ...
        with psycopg.connect(config.database_url, autocommit=True) as conn:  # ... a change commits ...
            conn.execute("SELECT pg_notify('imagerepo_state', 'user:3')")
        cache.sync()
        cache.put("user", 3, True, generation)  # ... and the reader stores what it read before
        assert cache.get("user", 3) is None
        cache.put("user", 3, True, cache.generation())
        assert cache.get("user", 3) is True
    finally:
        cache.close()


def test_a_closed_cache_answers_nothing(config, app):
    cache = listening(StateCache(config.database_url))
    cache.put("token", "abc", True, cache.generation())
    assert cache.get("token", "abc") is True
    cache.close()
    assert cache.get("token", "abc") is None
    assert cache.get("token", "abc") is None, "and it does not start again"


def test_private_is_enforced_by_the_same_worker_at_once(client, alice):
    """Read-your-writes: the change and the next request in one process, no wait."""
    image = client.post(
        "/images",
        headers=alice["headers"],
        data={"file": (io.BytesIO(_png()), "a.png")},
        content_type="multipart/form-data",
    ).json
    url = f"/images/{image['id']}/content"
    for _ in range(3):
        assert client.get(url).status_code == 200  # cached now
    assert client.patch(f"/images/{image['id']}", headers=alice["headers"], json={"isPrivate": True}).status_code == 200
    assert client.get(url).status_code == 404
    assert client.get(url, headers=alice["headers"]).status_code == 200
    assert client.delete(f"/images/{image['id']}", headers=alice["headers"]).status_code == 202
    assert client.get(url, headers=alice["headers"]).status_code == 404


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 10, 10)).save(out, "PNG")
    return out.getvalue()
