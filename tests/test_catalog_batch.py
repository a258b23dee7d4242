"""POST /images/batch: many files in one multipart request, each stored or refused on its own."""

from __future__ import annotations

import hashlib
import io

import pytest

from conftest import assert_error, with_changes
from imagerepo import create_app
from imagerepo.images import upload as images
from imagesamples import SVG, image_bytes, quick_user


@pytest.fixture
def alice(app):
    return quick_user(app, "alice")


def batch(client, headers, files, **fields):
    form = {
        "file": [(io.BytesIO(data), name) for name, data in files],
        **{k: v if isinstance(v, list) else str(v) for k, v in fields.items()},
    }
    return client.post("/images/batch", headers=headers, data=form, content_type="multipart/form-data")


def staging_leftovers(config) -> list:
    return [p for p in config.blob_dir.rglob("*") if p.is_file() and "staging" in str(p)]


def test_a_batch_of_good_files_is_201(client, alice):
    files = [
        ("a.png", image_bytes("PNG", (4, 4), "red")),
        ("b.jpg", image_bytes("JPEG", (5, 5), "blue")),
        ("c.gif", image_bytes("GIF", (6, 6), "green")),
    ]
    response = batch(
        client,
        alice["headers"],
        files,
        description="holiday",
        tags=["Beach", "sea,sun"],
        isPrivate=1,
        accessKey="shared-key",
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["failed"] == []
    assert [i["name"] for i in body["created"]] == ["a.png", "b.jpg", "c.gif"]
    for image, (_, data) in zip(body["created"], files, strict=True):
        assert image["description"] == "holiday" and image["tags"] == ["beach", "sea", "sun"]
        assert image["isPrivate"] and image["accessKey"] == "shared-key"
        assert image["sha256"] == hashlib.sha256(data).hexdigest()
        assert client.get(image["url"], headers=alice["headers"]).data == data
    assert client.get("/tags", headers=alice["headers"]).get_json()["tags"] == [
        {"name": "beach", "images": 3},
        {"name": "sea", "images": 3},
        {"name": "sun", "images": 3},
    ]


def test_private_batch_without_a_key_gets_one_per_image(client, alice):
    files = [("a.png", image_bytes(color="red")), ("b.png", image_bytes(color="blue"))]
    created = batch(client, alice["headers"], files, isPrivate=1).get_json()["created"]
    keys = [i["accessKey"] for i in created]
    assert all(len(k) >= 32 for k in keys) and keys[0] != keys[1]


def test_bad_files_are_refused_one_by_one(config, alice):
    """Empty, not an image, SVG, too large: each is listed with its error; the good ones are stored."""
    app = create_app(with_changes(config, max_upload_bytes=2000))
    client = app.test_client()
    try:
        user = quick_user(app, "carol")
        good = [image_bytes("PNG", (3, 3), "red"), image_bytes("PNG", (3, 4), "red")]
        too_large = image_bytes("BMP", (40, 40), "white")
        assert len(too_large) > 2000
        files = [
            ("empty.png", b""),
            ("good1.png", good[0]),
            ("notes.txt", b"just text"),
            ("big.bmp", too_large),
            ("evil.svg", SVG),
            ("good2.png", good[1]),
        ]
        response = batch(client, user["headers"], files, tags="x")
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert [i["name"] for i in body["created"]] == ["good1.png", "good2.png"]
        assert [(f["name"], f["error"]["code"]) for f in body["failed"]] == [
            ("empty.png", "empty_upload"),
            ("notes.txt", "unsupported_media_type"),
            ("big.bmp", "too_large"),
            ("evil.svg", "unsupported_media_type"),
        ]
        assert all(f["error"]["message"] for f in body["failed"])
        listed = client.get("/images", headers=user["headers"]).get_json()["images"]
        assert sorted(i["sha256"] for i in listed) == sorted(hashlib.sha256(d).hexdigest() for d in good)
        assert staging_leftovers(config) == [], "refused files leave nothing staged"

        all_bad = batch(client, user["headers"], [("e.png", b""), ("t.txt", b"text")])
        assert all_bad.status_code == 200
        assert all_bad.get_json()["created"] == [] and len(all_bad.get_json()["failed"]) == 2
    finally:
        app.extensions["imagerepo_audit"].flush()
        app.extensions["imagerepo"].db.close()


def test_the_number_of_files_is_capped(client, alice, config, monkeypatch):
    monkeypatch.setattr(images, "MAX_BATCH_FILES", 3)
    files = [(f"{n}.png", image_bytes(size=(n + 1, 1))) for n in range(4)]
    assert_error(batch(client, alice["headers"], files), 413, "too_many_files")
    assert client.get("/images", headers=alice["headers"]).get_json()["images"] == []
    assert staging_leftovers(config) == []
    assert batch(client, alice["headers"], files[:3]).status_code == 201


@pytest.mark.parametrize(
    "form, status",
    [
        ({}, 422),
        ({"description": "no files"}, 422),
        ({"file": "a text part, not a file"}, 422),
        ({"file": (io.BytesIO(image_bytes()), "x.png"), "isPrivate": "maybe"}, 422),
        ({"file": (io.BytesIO(image_bytes()), "x.png"), "tags": "a/b"}, 422),
        ({"file": (io.BytesIO(image_bytes()), "x.png"), "unknown": "1"}, 422),
    ],
)
def test_batch_refusals(client, alice, form, status):
    response = client.post("/images/batch", headers=alice["headers"], data=form, content_type="multipart/form-data")
    assert_error(response, status)
    assert client.get("/images", headers=alice["headers"]).get_json()["images"] == []


def test_batch_needs_a_token_and_multipart(client, alice):
    assert_error(batch(client, {}, [("a.png", image_bytes())]), 401)
    assert_error(client.post("/images/batch", headers=alice["headers"], data=b"x", content_type="text/plain"), 400)
    assert_error(
        client.post(
            "/images/batch",
            headers=alice["headers"],
            data=b"--b\r\nbroken",
            content_type="multipart/form-data; boundary=b",
        ),
        400,
    )
