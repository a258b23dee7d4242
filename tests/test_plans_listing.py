"""The owner's image JSON shows what the plan gives, against the real server: each shipped
plan exactly its thumbnail URLs, the original only where the plan allows it, the live share
links; other people see none of it."""

from __future__ import annotations

import pytest
import requests
from http_helpers import signup
from plan_helpers import assign, make_admin, png, upload, user_id

EXPECTED = {
    "Basic": ([200], False),
    "Premium": ([200, 400], True),
    "Enterprise": ([200, 400], True),
    "Unlimited": ([], True),
}


@pytest.mark.parametrize("plan", sorted(EXPECTED))
def test_each_shipped_plan_gives_exactly_its_links(server, config, plan):
    admin = make_admin(config.database_url, server.url)
    alice, bob = signup(server.url, "alice"), signup(server.url, "bob")
    assign(server.url, admin, user_id(server.url, alice), plan)
    public = upload(server.url, alice, png(1)).json()
    private = upload(server.url, alice, png(2), private=True).json()
    heights, original = EXPECTED[plan]

    listed = requests.get(server.url + "/images?mine=1", headers=alice, timeout=30).json()["images"]
    single = requests.get(f"{server.url}/images/{private['id']}", headers=alice, timeout=30).json()
    by_id = {i["id"]: i for i in listed}
    for image in (by_id[public["id"]], by_id[private["id"]], single, public):
        key = f"accesskey={image['accessKey']}" if image["isPrivate"] else ""
        base = f"/images/{image['id']}/content"
        assert [t["height"] for t in image["thumbnails"]] == heights
        assert [t["url"] for t in image["thumbnails"]] == [
            f"{base}?height={h}" + (f"&{key}" if key else "") for h in heights
        ]
        assert image["originalUrl"] == ((base + (f"?{key}" if key else "")) if original else None)
        assert image["shareLinks"] == []

    # Someone else sees the image, not what the owner's plan gives.
    seen_by_bob = requests.get(f"{server.url}/images/{public['id']}", headers=bob, timeout=30).json()
    anonymous = requests.get(server.url + "/images", timeout=30).json()["images"]
    for image in [seen_by_bob] + anonymous:
        assert not {"thumbnails", "originalUrl", "shareLinks", "accessKey"} & set(image)


def test_live_share_links_are_listed_and_expired_ones_disappear(server, config):
    alice = signup(server.url, "alice")
    image = upload(server.url, alice, png(3)).json()
    made = [
        requests.post(
            f"{server.url}/images/{image['id']}/links", json={"expiresIn": 300 + n}, headers=alice, timeout=30
        ).json()
        for n in range(2)
    ]
    listed = requests.get(server.url + "/images?mine=1", headers=alice, timeout=30).json()["images"][0]
    assert [link["url"] for link in listed["shareLinks"]] == [m["url"] for m in made]
    requests.delete(f"{server.url}/images/{image['id']}/links/{made[0]['id']}", headers=alice, timeout=30)
    import psycopg

    with psycopg.connect(config.database_url, autocommit=True) as conn:
        conn.execute("UPDATE share_links SET expires_at = now() - interval '1 ms' WHERE id = %s", (made[1]["id"],))
    again = requests.get(f"{server.url}/images/{image['id']}", headers=alice, timeout=30).json()
    assert again["shareLinks"] == []
