"""The image API: upload, metadata, access keys, update, delete, listing; good and bad inputs."""

import io

import psycopg
import pytest

from conftest import assert_error, auth_header, with_changes
from imagerepo import create_app
from imagesamples import FORMATS, SVG, dicom_bytes, image_bytes, noise_bmp, png_claiming, quick_user, upload, uploaded

IMAGE_KEYS = {
    "id",
    "name",
    "creator",
    "locked",
    "description",
    "isPrivate",
    "size",
    "contentType",
    "width",
    "height",
    "sha256",
    "createdAt",
    "updatedAt",
    "url",
    "tags",
    "variants",  # one image's JSON (not listings): its variants (README "Variants")
}


@pytest.fixture
def alice(app):
    return quick_user(app, "alice")


@pytest.fixture
def bob(app):
    return quick_user(app, "bob")


def _multipart(client, headers, body: bytes, content_type: str):
    return client.post("/images", headers=headers, data=body, content_type=content_type)


# -- upload -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_upload_each_accepted_type(client, alice, fmt):
    data = image_bytes(fmt, size=(7, 5))
    image = uploaded(client, alice["headers"], data, name=f"x.{fmt.lower()}")
    assert image["contentType"] == FORMATS[fmt]
    assert (image["width"], image["height"]) == (7, 5)
    assert image["size"] == len(data)
    assert client.get(image["url"]).data == data


@pytest.mark.parametrize("implicit", [False, True])
def test_upload_dicom(client, alice, implicit):
    data = dicom_bytes(rows=4, columns=6, implicit=implicit)
    image = uploaded(client, alice["headers"], data, name="scan.dcm")
    assert image["contentType"] == "application/dicom"
    assert (image["width"], image["height"]) == (6, 4)


def test_dicom_without_readable_dimensions_is_still_accepted(client, alice):
    data = b"\0" * 128 + b"DICM" + b"\xff" * 10
    image = uploaded(client, alice["headers"], data, name="odd.dcm")
    assert image["contentType"] == "application/dicom"
    assert image["width"] is None and image["height"] is None


def test_upload_answers_the_image_json(client, alice):
    data = image_bytes("PNG", size=(3, 2))
    response = upload(client, alice["headers"], data, name="cat.png", description="a cat")
    assert response.status_code == 201
    image = response.get_json()
    assert set(image) == IMAGE_KEYS | {
        "accessKey",
        "thumbnails",
        "originalUrl",
        "shareLinks",
    }  # the owner sees their plan's links
    assert image["name"] == "cat.png" and image["description"] == "a cat"
    assert image["creator"] == alice["user"]["id"]
    assert image["isPrivate"] is False and image["locked"] is False and image["accessKey"] is None
    assert image["url"] == f"/images/{image['id']}/content"
    import hashlib

    assert image["sha256"] == hashlib.sha256(data).hexdigest()
    assert image["createdAt"] == image["updatedAt"]


def test_type_is_decided_by_the_bytes_not_the_name(client, alice):
    image = uploaded(client, alice["headers"], image_bytes("GIF"), name="looks-like.jpg")
    assert image["contentType"] == "image/gif"
    response = upload(client, alice["headers"], SVG, name="innocent.png")
    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize("private_value", ["1", "true", "True"])
def test_private_upload_without_key_gets_a_strong_one(client, alice, private_value):
    image = uploaded(client, alice["headers"], isPrivate=private_value)
    assert image["isPrivate"] is True and image["locked"] is True
    assert isinstance(image["accessKey"], str) and len(image["accessKey"]) >= 32
    other = uploaded(client, alice["headers"], image_bytes(color="blue"), isPrivate=private_value)
    assert other["accessKey"] != image["accessKey"]


def test_private_upload_keeps_the_given_key(client, alice):
    image = uploaded(client, alice["headers"], isPrivate="1", accessKey="open sesame")
    assert image["accessKey"] == "open sesame"


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("../../etc/passwd.png", "passwd.png"),
        ("bell\x07\x1b[31m.png", "bell[31m.png"),
        ("..", "image"),
        ("ñandú 画像.png", "ñandú 画像.png"),
    ],
)
def test_file_names_are_metadata_only(client, alice, config, raw, shown):
    image = uploaded(client, alice["headers"], name=raw)
    assert image["name"] == shown
    assert not (config.blob_dir.parent / "etc").exists()


def test_windows_paths_in_raw_upload_names_are_cut(client, alice):
    response = client.post(
        "/images/raw", query_string={"name": "C:\\Users\\me\\photo.png"}, headers=alice["headers"], data=image_bytes()
    )
    assert response.get_json()["name"] == "photo.png"


@pytest.mark.parametrize(
    "data, name, fields, status, code",
    [
        (SVG, "x.svg", {}, 415, "unsupported_media_type"),
        (b"just some text, not an image", "x.png", {}, 415, "unsupported_media_type"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 30, "x.png", {}, 415, "unsupported_media_type"),  # broken header
        (b"%PDF-1.4\n", "x.pdf", {}, 415, "unsupported_media_type"),
        (b"", "x.png", {}, 400, "empty_upload"),
        (png_claiming(100_000, 100_000), "bomb.png", {}, 422, "image_too_large"),
        (image_bytes(), "x.png", {"isPrivate": "maybe"}, 422, "validation_failed"),
        (image_bytes(), "x.png", {"isPrivate": "2"}, 422, "validation_failed"),
        (image_bytes(), "x.png", {"owner": "7"}, 422, "validation_failed"),
        (image_bytes(), "x.png", {"description": "d" * 5001}, 422, "validation_failed"),
        (image_bytes(), "x.png", {"accessKey": "   "}, 422, "validation_failed"),
    ],
)
def test_upload_refusals(client, alice, data, name, fields, status, code):
    assert_error(upload(client, alice["headers"], data, name, **fields), status, code)


@pytest.mark.parametrize(
    "form",
    [
        {"description": "no file at all"},
        {"file": "a text field named file"},
        {"file": [(io.BytesIO(image_bytes()), "a.png"), (io.BytesIO(image_bytes()), "b.png")]},
        {"file": (io.BytesIO(image_bytes()), "a.png"), "description": (io.BytesIO(b"x"), "d.txt")},
    ],
)
def test_upload_missing_or_misplaced_file_is_422(client, alice, form):
    response = client.post("/images", headers=alice["headers"], data=form, content_type="multipart/form-data")
    assert_error(response, 422, "validation_failed")


@pytest.mark.parametrize(
    "body, content_type",
    [
        (
            b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\nabc',
            "multipart/form-data; boundary=xyz",
        ),  # truncated
        (b"not multipart at all", "multipart/form-data; boundary=xyz"),
        (b"--xyz\r\nno headers here\r\n--xyz--\r\n", "multipart/form-data; boundary=xyz"),
        (image_bytes(), "multipart/form-data"),  # no boundary
        (b'{"file": "x"}', "application/json"),
        (b"file=x", "application/x-www-form-urlencoded"),
        (image_bytes(), "image/png"),
    ],
)
def test_upload_broken_multipart_is_400(client, alice, body, content_type):
    assert_error(_multipart(client, alice["headers"], body, content_type), 400, "bad_request")


@pytest.mark.parametrize("headers", [{}, auth_header("not.a.token"), {"Authorization": "Basic YTpi"}])
def test_upload_needs_a_valid_token(client, headers):
    assert_error(upload(client, headers, image_bytes()), 401, "unauthorized")


def _bytes_on_disk(root) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


@pytest.fixture
def small_limit_client(config):
    application = create_app(with_changes(config, max_upload_bytes=20_000, chunk_size=4096))
    yield application.test_client(), application
    application.extensions["imagerepo"].db.close()


def test_upload_over_the_limit_is_413_and_leaves_nothing_behind(small_limit_client, config):
    client, application = small_limit_client
    headers = quick_user(application, "carol")["headers"]
    big = noise_bmp(100, 100)  # ~30 KB > 20 000
    assert_error(upload(client, headers, big, "big.bmp"), 413, "too_large")
    assert_error(client.post("/images/raw?name=big.bmp", headers=headers, data=big), 413, "too_large")
    assert _bytes_on_disk(config.blob_dir) < 1024
    with psycopg.connect(config.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM images").fetchone()[0] == 0
    # just under the limit is fine
    fits = noise_bmp(60, 60)
    assert len(fits) < 20_000
    assert upload(client, headers, fits, "fits.bmp").status_code == 201


def test_refused_types_leave_nothing_behind(client, alice, config):
    assert_error(upload(client, alice["headers"], SVG * 2000, "x.svg"), 415)
    assert _bytes_on_disk(config.blob_dir) < 1024


# -- raw upload -------------------------------------------------------------------------------
def test_raw_upload(client, alice):
    data = image_bytes("JPEG", size=(9, 4))
    response = client.post(
        "/images/raw?name=raw.jpg&description=straight&isPrivate=1&accessKey=k123",
        headers={**alice["headers"], "Content-Type": "application/octet-stream"},
        data=data,
    )
    assert response.status_code == 201, response.get_json()
    image = response.get_json()
    assert image["name"] == "raw.jpg" and image["description"] == "straight"
    assert image["contentType"] == "image/jpeg" and (image["width"], image["height"]) == (9, 4)
    assert image["isPrivate"] is True and image["accessKey"] == "k123"
    assert client.get(image["url"], headers=alice["headers"]).data == data


@pytest.mark.parametrize(
    "query, data, status, code",
    [
        ("", image_bytes(), 422, "validation_failed"),  # name missing
        ("?name=", image_bytes(), 422, "validation_failed"),
        ("?name=a.png&isPrivate=perhaps", image_bytes(), 422, "validation_failed"),
        ("?name=a.png&limit=3", image_bytes(), 422, "validation_failed"),
        ("?name=a.png", b"", 400, "empty_upload"),
        ("?name=a.svg", SVG, 415, "unsupported_media_type"),
    ],
)
def test_raw_upload_refusals(client, alice, query, data, status, code):
    assert_error(client.post("/images/raw" + query, headers=alice["headers"], data=data), status, code)


def test_raw_upload_needs_a_token(client):
    assert_error(client.post("/images/raw?name=a.png", data=image_bytes()), 401, "unauthorized")


# -- reading and access -----------------------------------------------------------------------
def test_public_image_is_readable_by_anyone_without_its_key(client, alice, bob):
    image = uploaded(client, alice["headers"], accessKey="kept-secret")
    for headers in ({}, bob["headers"]):
        response = client.get(f"/images/{image['id']}", headers=headers)
        assert response.status_code == 200
        body = response.get_json()
        assert set(body) == IMAGE_KEYS, "accessKey must be absent for anyone but the owner"
        assert client.get(image["url"], headers=headers).status_code == 200
    assert client.get(f"/images/{image['id']}", headers=alice["headers"]).get_json()["accessKey"] == "kept-secret"


@pytest.fixture
def private_image(client, alice):
    return uploaded(client, alice["headers"], image_bytes(color="green"), isPrivate="1", accessKey="s3cret-key")


@pytest.mark.parametrize("path", ["/images/{id}", "/images/{id}/content"])
@pytest.mark.parametrize(
    "who, key_in, key, status, code",
    [
        ("alice", None, None, 200, None),
        ("bob", None, None, 404, "not_found"),
        ("anon", None, None, 404, "not_found"),
        ("bob", "query", "", 404, "not_found"),
        ("bob", "query", "wrong", 404, "not_found"),
        ("anon", "header", "wrong", 404, "not_found"),
        ("bob", "query", "s3cret-key", 200, None),
        ("bob", "header", "s3cret-key", 200, None),
        ("anon", "query", "s3cret-key", 200, None),
        ("anon", "header", "s3cret-key", 200, None),
        ("bob", "query", "S3CRET-KEY", 404, "not_found"),
        ("bob", "query", "s3cret-key-and-more", 404, "not_found"),
    ],
)
def test_private_image_access(client, alice, bob, private_image, path, who, key_in, key, status, code):
    headers = {"alice": alice["headers"], "bob": bob["headers"], "anon": {}}[who]
    url = path.format(id=private_image["id"])
    if key_in == "query":
        url += f"?accesskey={key}"
    elif key_in == "header":
        headers = {**headers, "X-Access-Key": key}
    response = client.get(url, headers=headers)
    if status != 200:
        assert_error(response, status, code)
        return
    assert response.status_code == 200
    if path.endswith("content"):
        assert response.data == image_bytes(color="green")
        assert response.headers["Cache-Control"] == "private, no-store"
    else:
        body = response.get_json()
        assert body["id"] == private_image["id"]
        assert ("accessKey" in body) == (who == "alice")


def test_a_bad_token_is_401_even_where_a_token_is_optional(client, alice, private_image):
    for url in (f"/images/{private_image['id']}", private_image["url"], "/images"):
        assert_error(client.get(url, headers=auth_header("garbage")), 401, "unauthorized")


def test_wrong_keys_are_limited_per_image_and_client(config, alice_bob_limited):
    client, alice_h, bob_h, image, other = alice_bob_limited
    url = f"/images/{image['id']}"
    for _ in range(3):
        assert_error(client.get(url + "?accesskey=guess", headers=bob_h), 404, "not_found")
    limited = client.get(url + "?accesskey=guess", headers=bob_h)
    assert_error(limited, 429, "too_many_attempts")
    assert int(limited.headers["Retry-After"]) > 0
    # once limited, even the right key waits: otherwise guessing would just continue
    assert_error(client.get(url, headers={**bob_h, "X-Access-Key": "right-key"}), 429)
    assert_error(client.get(image["url"] + "?accesskey=right-key", headers=bob_h), 429)
    # another client address, another image, and the owner are not affected
    other_address = client.get(url + "?accesskey=right-key", environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert other_address.status_code == 200
    assert client.get(f"/images/{other['id']}?accesskey=right-key", headers=bob_h).status_code == 200
    assert client.get(url, headers=alice_h).status_code == 200
    with psycopg.connect(config.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM access_key_failures").fetchone()[0] == 3


def test_wrong_keys_are_limited_per_client_across_images(config):
    """One key can open many images (a private batch shares it): spreading guesses over them
    must not multiply the attempts a client gets."""
    application = create_app(with_changes(config, access_key_max_failures=3, access_key_max_failures_per_client=5))
    try:
        client = application.test_client()
        alice_h = quick_user(application, "alice")["headers"]
        bob_h = quick_user(application, "bob")["headers"]
        images = [
            uploaded(client, alice_h, image_bytes(color=color), isPrivate="1", accessKey="shared-key")
            for color in ("red", "green", "blue")
        ]
        answers = [
            client.get(f"/images/{image['id']}?accesskey=guess", headers=bob_h).status_code
            for image in images
            for _ in range(2)
        ]
        assert answers == [404] * 5 + [429]
        assert_error(client.get(f"/images/{images[0]['id']}?accesskey=shared-key", headers=bob_h), 429)
    finally:
        application.extensions["imagerepo"].db.close()


@pytest.fixture
def alice_bob_limited(config):
    application = create_app(with_changes(config, access_key_max_failures=3))
    client = application.test_client()
    alice_h = quick_user(application, "alice")["headers"]
    bob_h = quick_user(application, "bob")["headers"]
    image = uploaded(client, alice_h, image_bytes(color="red"), isPrivate="1", accessKey="right-key")
    other = uploaded(client, alice_h, image_bytes(color="blue"), isPrivate="1", accessKey="right-key")
    yield client, alice_h, bob_h, image, other
    application.extensions["imagerepo"].db.close()


def test_right_keys_do_not_count_as_failures(client, bob, private_image, config):
    for _ in range(12):
        assert (
            client.get(f"/images/{private_image['id']}?accesskey=s3cret-key", headers=bob["headers"]).status_code == 200
        )


@pytest.mark.parametrize(
    "path",
    [
        "/images/abc",
        "/images/-1",
        "/images/0",
        "/images/1.5",
        "/images/99999999999999999999999",
        "/images/9223372036854775807",
        "/images/424242",
        "/images/abc/content",
        "/images/0/content",
        "/images/99999999999999999999999/content",
        "/images/424242/content",
        "/images//content",
    ],
)
def test_absent_or_malformed_ids_are_404_json(client, alice, path):
    assert_error(client.get(path, headers=alice["headers"]), 404, "not_found")


@pytest.mark.parametrize("query", ["?download=maybe", "?unknown=1", "?accesskey=" + "k" * 2000])
def test_bad_read_query_values_are_422(client, alice, query):
    image = uploaded(client, alice["headers"])
    assert_error(client.get(image["url"] + query), 422, "validation_failed")


# -- update -----------------------------------------------------------------------------------
def test_put_replaces_description_and_privacy(client, alice, bob):
    image = uploaded(client, alice["headers"], description="before")
    response = client.put(
        f"/images/{image['id']}",
        headers=alice["headers"],
        json={"description": "after", "isPrivate": 1, "accessKey": "chosen-key"},
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["description"] == "after" and body["isPrivate"] is True and body["locked"] is True
    assert body["accessKey"] == "chosen-key" and body["updatedAt"] > body["createdAt"]
    assert_error(client.get(f"/images/{image['id']}", headers=bob["headers"]), 404)
    assert client.get(f"/images/{image['id']}?accesskey=chosen-key", headers=bob["headers"]).status_code == 200


def test_making_private_without_a_key_generates_one(client, alice):
    image = uploaded(client, alice["headers"])
    body = client.patch(f"/images/{image['id']}", headers=alice["headers"], json={"isPrivate": True}).get_json()
    assert body["isPrivate"] is True and len(body["accessKey"]) >= 32
    # back to public and private again: the key is kept, not silently rotated
    client.patch(f"/images/{image['id']}", headers=alice["headers"], json={"isPrivate": False})
    again = client.patch(f"/images/{image['id']}", headers=alice["headers"], json={"isPrivate": True}).get_json()
    assert again["accessKey"] == body["accessKey"]


@pytest.mark.parametrize(
    "patch, expect",
    [
        ({"description": "new words"}, {"description": "new words", "isPrivate": False}),
        ({"isPrivate": "true"}, {"isPrivate": True, "description": "orig"}),
        ({"isPrivate": 0}, {"isPrivate": False}),
        ({"accessKey": "abc"}, {"accessKey": "abc", "isPrivate": False}),
        (
            {"description": "", "isPrivate": True, "accessKey": "xyz"},
            {"description": "", "isPrivate": True, "accessKey": "xyz"},
        ),
    ],
)
def test_patch_changes_only_what_is_given(client, alice, patch, expect):
    image = uploaded(client, alice["headers"], description="orig")
    response = client.patch(f"/images/{image['id']}", headers=alice["headers"], json=patch)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    for key, value in expect.items():
        assert body[key] == value
    assert client.get(f"/images/{image['id']}", headers=alice["headers"]).get_json() == body


@pytest.mark.parametrize(
    "method, payload, status",
    [
        ("put", {"isPrivate": True}, 422),  # description missing
        ("put", {"description": "x"}, 422),  # isPrivate missing
        ("put", {"description": 5, "isPrivate": True}, 422),
        ("put", {"description": "x", "isPrivate": "sometimes"}, 422),
        ("put", {"description": "x", "isPrivate": True, "owner": 2}, 422),
        ("put", {"description": "x", "isPrivate": True, "accessKey": 12}, 422),
        ("put", [], 422),
        ("patch", {}, 422),
        ("patch", {"description": None}, 422),
        ("patch", {"isPrivate": None}, 422),
        ("patch", {"isPrivate": [1]}, 422),
        ("patch", {"accessKey": ""}, 422),
        ("patch", {"name": "renamed.png"}, 422),
        ("patch", "just a string", 422),
        ("patch", {"description": "d" * 5001}, 422),
    ],
)
def test_update_validation(client, alice, method, payload, status):
    image = uploaded(client, alice["headers"])
    response = getattr(client, method)(f"/images/{image['id']}", headers=alice["headers"], json=payload)
    assert_error(response, status, "validation_failed")


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize("data", ["{broken", "", "[1,"])
def test_update_broken_json_is_400(client, alice, method, data):
    image = uploaded(client, alice["headers"])
    response = getattr(client, method)(
        f"/images/{image['id']}", headers=alice["headers"], data=data, content_type="application/json"
    )
    assert_error(response, 400, "bad_request")


@pytest.mark.parametrize(
    "method, kwargs",
    [
        ("put", {"json": {"description": "mine now", "isPrivate": False}}),
        ("patch", {"json": {"description": "mine now"}}),
        ("delete", {}),
    ],
)
def test_only_the_owner_changes_or_deletes(client, alice, bob, private_image, method, kwargs):
    public = uploaded(client, alice["headers"], image_bytes(color="yellow"))
    call = getattr(client, method)
    assert_error(call(f"/images/{public['id']}", headers=bob["headers"], **kwargs), 403, "forbidden")
    assert_error(call(f"/images/{private_image['id']}", headers=bob["headers"], **kwargs), 404, "not_found")
    assert_error(
        call(f"/images/{private_image['id']}?accesskey=s3cret-key", headers=bob["headers"], **kwargs), 404, "not_found"
    )
    assert_error(call("/images/987654", headers=bob["headers"], **kwargs), 404, "not_found")
    assert_error(call("/images/nope", headers=bob["headers"], **kwargs), 404, "not_found")
    assert_error(call(f"/images/{public['id']}", **kwargs), 401, "unauthorized")
    # nothing changed
    assert client.get(f"/images/{public['id']}").get_json()["description"] == ""
    assert client.get(f"/images/{private_image['id']}", headers=alice["headers"]).status_code == 200


# -- delete -----------------------------------------------------------------------------------
def test_delete_removes_the_image_at_once(client, alice, config):
    image = uploaded(client, alice["headers"])
    response = client.delete(f"/images/{image['id']}", headers=alice["headers"])
    assert response.status_code == 202
    assert response.get_json() == {"id": image["id"], "deleted": True}
    assert_error(client.get(f"/images/{image['id']}", headers=alice["headers"]), 404)
    assert_error(client.get(image["url"], headers=alice["headers"]), 404)
    assert client.get("/images", headers=alice["headers"]).get_json()["images"] == []
    assert_error(client.delete(f"/images/{image['id']}", headers=alice["headers"]), 404)
    with psycopg.connect(config.database_url) as conn:
        refcount = conn.execute("SELECT refcount FROM objects").fetchone()[0]
    assert refcount == 0, "the reference is released; the collector reclaims the storage later"


# -- listing ----------------------------------------------------------------------------------
def _all_pages(client, headers, limit, **params):
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        response = client.get("/images", headers=headers, query_string=query)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert set(body) == {"images", "nextCursor"}
        assert len(body["images"]) <= limit
        seen += body["images"]
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            return seen, pages


def test_listing_is_newest_first_with_keyset_pages(client, alice):
    ids = [uploaded(client, alice["headers"], image_bytes(size=(i + 1, 1)))["id"] for i in range(25)]
    images, pages = _all_pages(client, alice["headers"], 10)
    assert [i["id"] for i in images] == ids[::-1]
    assert pages == 3
    first = client.get("/images", headers=alice["headers"]).get_json()
    assert len(first["images"]) == 20 and first["nextCursor"]


def test_listing_shows_own_and_public_images_only(client, alice, bob):
    a_public = uploaded(client, alice["headers"], image_bytes(color="red"))
    a_private = uploaded(client, alice["headers"], image_bytes(color="blue"), isPrivate=1)
    b_public = uploaded(client, bob["headers"], image_bytes(color="white"))
    b_private = uploaded(client, bob["headers"], image_bytes(color="black"), isPrivate=1)

    def ids(headers, **params):
        return [i["id"] for i in _all_pages(client, headers, 2, **params)[0]]

    assert ids({}) == [b_public["id"], a_public["id"]]
    assert ids(bob["headers"]) == [b_private["id"], b_public["id"], a_public["id"]]
    assert ids(alice["headers"]) == [b_public["id"], a_private["id"], a_public["id"]]
    assert ids(alice["headers"], mine=1) == [a_private["id"], a_public["id"]]
    listing = client.get("/images", headers=bob["headers"]).get_json()["images"]
    for image in listing:
        assert ("accessKey" in image) == (image["creator"] == bob["user"]["id"])
    assert_error(client.get("/images?mine=1"), 401, "unauthorized")


@pytest.mark.parametrize(
    "query, status",
    [
        ("limit=0", 422),
        ("limit=101", 422),
        ("limit=abc", 422),
        ("limit=-5", 422),
        ("mine=maybe", 422),
        ("cursor=" + "x" * 300, 422),
        ("unknown=1", 422),
        ("cursor=garbage!!", 400),
        ("cursor=Zm9vYmFy", 400),
        ("cursor=MjAyMC0wMS0wMXwtNQ", 400),
        ("cursor=bm90LWEtZGF0ZXwxMg", 400),
        ("cursor=MjAyMC0wMS0wMXwxMg", 400),
    ],
)
def test_listing_bad_query_values(client, alice, query, status):
    assert_error(client.get("/images?" + query, headers=alice["headers"]), status)


@pytest.mark.parametrize("mine, viewer", [(False, None), (False, 1), (True, 1)])
def test_listing_walks_the_indexes(config, app, mine, viewer):
    """With many rows, each page reads its index with a LIMIT instead of sorting the table."""
    from imagerepo.images.queries import list_query
    from imagerepo.pagination import decode_time_cursor, encode_time_cursor
    import datetime as dt

    with psycopg.connect(config.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (name, email, password_hash) SELECT 'u' || g, 'u' || g || '@x', 'h'"
            " FROM generate_series(1, 50) g"
        )
        conn.execute("INSERT INTO objects (digest, size, chunk_size, refcount) VALUES (sha256('x'::bytea), 1, 4096, 1)")
        conn.execute(
            "INSERT INTO images (owner_id, object_digest, filename, content_type, is_private, created_at)"
            " SELECT 1 + g % 50, sha256('x'::bytea), 'f', 'image/png', g % 3 = 0,"
            " now() - make_interval(secs => g) FROM generate_series(1, 30000) g"
        )
        conn.execute("ANALYZE images")
        cursor = decode_time_cursor(
            encode_time_cursor(dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5000), 25000)
        )
        for page_cursor in (None, cursor):
            sql, params = list_query(viewer, mine, 20, page_cursor)
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, params))
            assert "Seq Scan on images" not in plan, plan
            if viewer is not None:
                assert "images_owner_created_idx" in plan, plan
            if not mine:
                assert "images_public_created_idx" in plan, plan


def test_nul_characters_in_any_text_field_are_422_not_500(client, alice):
    image = uploaded(client, alice["headers"])
    headers = alice["headers"]
    assert_error(upload(client, headers, image_bytes(), description="a\x00b"), 422, "validation_failed")
    assert_error(
        client.patch(f"/images/{image['id']}", headers=headers, json={"description": "a\x00b"}),
        422,
        "validation_failed",
    )
    assert_error(
        client.put(f"/images/{image['id']}/tags", headers=headers, json={"tags": ["a\x00b"]}), 422, "validation_failed"
    )
    for query in ("q=sun%00set", "owner=al%00ice", "tag=x%00", "accesskey=%00"):
        assert_error(client.get(f"/images?{query}", headers=headers), 422, "validation_failed")
    assert_error(client.get(f"/images/{image['id']}?accesskey=k%00", headers=headers), 422)
