"""Share links to variants against the real server: each plan's thumbnail heights (an
administrator's odd sizes too) and format conversions, served anonymously as the plan permits."""

from __future__ import annotations

import io

import pytest
import requests
from http_helpers import signup
from PIL import Image
from plan_helpers import assign, error_code, make_admin, png, upload, user_id


def picture(width=800, height=600) -> bytes:
    return png(5, size=(width, height))


def size_of(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def link(base, headers, image_id, **body):
    return requests.post(
        f"{base}/images/{image_id}/links", json={"expiresIn": 300, **body}, headers=headers, timeout=60
    )


@pytest.fixture
def enterprise(server, config):
    admin = make_admin(config.database_url, server.url)
    alice = signup(server.url, "alice")
    assign(server.url, admin, user_id(server.url, alice), "Enterprise")
    return {"admin": admin, "alice": alice}


def test_thumbnail_and_format_links_of_enterprise(server, enterprise):
    alice = enterprise["alice"]
    image = upload(server.url, alice, picture(), private=True).json()
    for height in (200, 400):
        made = link(server.url, alice, image["id"], variant={"height": height})
        assert made.status_code == 201, made.text
        assert made.json()["variant"] == {"height": height, "format": None}
        got = requests.get(server.url + made.json()["url"], timeout=60)
        assert got.status_code == 200 and got.headers["Content-Type"] == "image/png"
        assert size_of(got.content) == (round(height * 4 / 3), height)
        assert got.headers["ETag"] != f'"{image["sha256"]}"' and got.headers["Cache-Control"].startswith(
            "private, max-age="
        )
        again = requests.get(
            server.url + made.json()["url"], headers={"If-None-Match": got.headers["ETag"]}, timeout=30
        )
        assert again.status_code == 304
        part = requests.get(server.url + made.json()["url"], headers={"Range": "bytes=0-9"}, timeout=30)
        assert part.status_code == 206 and part.content == got.content[:10]
    webp = link(server.url, alice, image["id"], format="webp")
    assert webp.status_code == 201, webp.text
    got = requests.get(server.url + webp.json()["url"], timeout=60)
    assert got.headers["Content-Type"] == "image/webp" and size_of(got.content) == (800, 600)
    refused = link(server.url, alice, image["id"], variant={"height": 300})
    assert refused.status_code == 403 and error_code(refused) == "plan_forbids"
    listed = requests.get(f"{server.url}/images/{image['id']}/links", headers=alice, timeout=30).json()["links"]
    assert [x["variant"] for x in listed] == [
        {"height": 200, "format": None},
        {"height": 400, "format": None},
        {"height": None, "format": "webp"},
    ]


def test_an_admin_plan_with_odd_sizes_works(server, enterprise):
    admin, alice = enterprise["admin"], enterprise["alice"]
    plan = {"name": "Odd", "thumbnailHeights": [333, 137], "expiringLinks": True}
    assert requests.post(server.url + "/admin/plans", json=plan, headers=admin, timeout=30).status_code == 201
    assign(server.url, admin, user_id(server.url, alice), "Odd")
    image = upload(server.url, alice, picture()).json()

    # The owner's JSON offers exactly those thumbnails, and they are those sizes.
    shown = requests.get(f"{server.url}/images/{image['id']}", headers=alice, timeout=30).json()
    assert [t["height"] for t in shown["thumbnails"]] == [137, 333] and shown["originalUrl"] is None
    for thumb in shown["thumbnails"]:
        got = requests.get(server.url + thumb["url"], headers=alice, timeout=60)
        assert got.status_code == 200 and size_of(got.content)[1] == thumb["height"]

    made = link(server.url, alice, image["id"], variant={"height": 137, "format": "jpeg"})
    assert made.status_code == 201, made.text
    got = requests.get(server.url + made.json()["url"], timeout=60)
    assert got.headers["Content-Type"] == "image/jpeg" and size_of(got.content) == (183, 137)
    for body in ({}, {"format": "webp"}, {"variant": {"height": 200}}):
        refused = link(server.url, alice, image["id"], **body)
        assert refused.status_code == 403 and error_code(refused) == "plan_forbids", (body, refused.text)

    # The administrator drops 137 from the plan: the link ends.
    changed = requests.patch(
        server.url + "/admin/plans/Odd", json={"thumbnailHeights": [333]}, headers=admin, timeout=30
    )
    assert changed.status_code == 200
    assert requests.get(server.url + made.json()["url"], timeout=30).status_code == 404
