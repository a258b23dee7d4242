"""The original ImageRepo's calls, as its README and its test client (tests/apiTests/run_test.py)
make them, and what ImageRepo answers now: the README's compatibility table, row by row.

The client sends JSON with `name`/`email`/`password`, logs in with the email, uploads with
requests' `files=` and `data={"description", "isPrivate": 0/1, "accessKey"}`, reads
`/images/<id>` with `?accesskey=`, and PUTs `{"description", "isPrivate", "accessKey"}`."""

import io

import pytest

from conftest import assert_error, auth_header, login, register
from imagesamples import image_bytes

ORIGINAL_META = {"description": "des", "isPrivate": "0", "accessKey": "0000"}


def _upload(client, headers, fields, data=None, name="1.jpg"):
    form = {"file": (io.BytesIO(data if data is not None else image_bytes("JPEG")), name), **fields}
    return client.post("/images", headers=headers, data=form, content_type="multipart/form-data")


@pytest.fixture
def two_users(client):
    for name in ("usr1", "usr2"):
        register(client, name, email=f"{name[-1]}@gmail.com")
    return [auth_header(login(client, f"{n}@gmail.com")["access_token"]) for n in ("1", "2")]


def test_an_empty_access_key_on_a_public_upload_means_no_key(client, alice):
    """An HTML form sends every field; an empty one is "not given", not a too-short key."""
    response = _upload(client, alice["headers"], {"description": "", "isPrivate": "0", "accessKey": ""})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["accessKey"] is None and response.get_json()["isPrivate"] is False


def test_empty_form_fields_take_their_defaults(client, alice):
    private = _upload(client, alice["headers"], {"isPrivate": "1", "accessKey": "", "tags": ""}).get_json()
    assert private["isPrivate"] is True and len(private["accessKey"]) >= 32 and private["tags"] == []
    public = _upload(client, alice["headers"], {"isPrivate": "", "description": ""}, image_bytes(color="blue"))
    assert public.status_code == 201 and public.get_json()["isPrivate"] is False
    # Still refused: a field the form does not have, empty or not, and a key of only spaces.
    assert_error(_upload(client, alice["headers"], {"colour": ""}), 422, "validation_failed")
    assert_error(_upload(client, alice["headers"], {"isPrivate": "1", "accessKey": "   "}), 422)


def test_the_original_clients_calls(client, two_users):
    usr1, usr2 = two_users
    # Its upload: public, with a key the original required even then. 201, not 200.
    created = _upload(client, usr1, ORIGINAL_META)
    assert created.status_code == 201
    image = created.get_json()
    assert {"id", "name", "creator", "locked", "accessKey"} <= set(image) and image["locked"] is False
    url = f"/images/{image['id']}"
    # Metadata as JSON, for anyone; the bytes are at /content (nothing written on the server).
    assert client.get(url, headers=usr2).status_code == 200
    assert client.get(image["url"], headers=usr2).data == image_bytes("JPEG")
    # A text file: 415 (not an image by its bytes), not 400.
    assert_error(_upload(client, usr1, ORIGINAL_META, b"not an image", "notValid.txt"), 415, "unsupported_media_type")
    # Made private with a key: someone else without it, or with a wrong one, gets 404 (not 401).
    changed = client.put(url, headers=usr1, json={"description": "des", "isPrivate": 1, "accessKey": "0123"})
    assert changed.status_code == 200 and changed.get_json()["locked"] is True
    assert_error(client.get(url, headers=usr2), 404, "not_found")
    assert_error(client.get(url + "?accesskey=9999", headers=usr2), 404, "not_found")
    assert client.get(url + "?accesskey=0123", headers=usr2).status_code == 200
    # Changing or deleting someone else's image: 404 while it is private, 403 when public.
    assert_error(client.put(url, headers=usr2, json={"description": "x", "isPrivate": 0, "accessKey": "1"}), 404)
    client.put(url, headers=usr1, json={"description": "des", "isPrivate": 0, "accessKey": "0123"})
    assert_error(client.delete(url, headers=usr2), 403, "forbidden")
    # Same bytes uploaded by the other user; the first delete leaves the copy readable.
    copy = _upload(client, usr2, ORIGINAL_META).get_json()
    assert client.delete(url, headers=usr1).status_code == 202
    assert_error(client.get(url, headers=usr2), 404)  # deleted means deleted
    assert client.get(copy["url"], headers=usr2).data == image_bytes("JPEG")
    assert client.delete(f"/images/{copy['id']}", headers=usr2).status_code == 202


def test_what_the_original_allowed_and_we_refuse(client):
    # 6-character passwords: 422 (8 at least).
    weak = client.post("/register", json={"name": "usr1", "email": "1@gmail.com", "password": "123456"})
    assert_error(weak, 422, "validation_failed")
    # No unauthenticated wipe of every user and image.
    assert_error(client.post("/reset", json=""), 404)
    # Uploads need a token (the original's client checks only "not 200").
    assert_error(_upload(client, {"Authorization": "Bearer "}, ORIGINAL_META), 401)
