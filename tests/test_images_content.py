"""Serving content: byte-exact over many chunks, ETag/304, Range/206/416, HEAD, downloads,
privacy through the cache, deduplication through the API, and the real server."""

import hashlib
import urllib.parse

import psycopg
import pytest
import requests

from conftest import assert_error, with_changes
from imagerepo import create_app
from imagesamples import image_bytes, noise_bmp, quick_user, uploaded

CHUNK = 4096


@pytest.fixture
def small_app(config):
    """Chunks of 4 KiB, so a 30 KB test image spans eight of them."""
    application = create_app(with_changes(config, chunk_size=CHUNK))
    yield application
    application.extensions["imagerepo"].db.close()


@pytest.fixture
def client(small_app):
    return small_app.test_client()


@pytest.fixture
def alice(small_app):
    return quick_user(small_app, "alice")


@pytest.fixture
def bob(small_app):
    return quick_user(small_app, "bob")


@pytest.fixture
def big(client, alice):
    data = noise_bmp(100, 100)  # 30 054 bytes: 7 full chunks and a partial one
    assert len(data) > 7 * CHUNK
    return data, uploaded(client, alice["headers"], data, name="noise.bmp")


def test_content_is_byte_exact_across_chunks(client, big, config):
    data, image = big
    response = client.get(image["url"])
    assert response.status_code == 200
    assert response.data == data
    assert response.headers["Content-Length"] == str(len(data))
    assert response.headers["Content-Type"] == "image/bmp"
    assert response.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "public, no-cache"
    with psycopg.connect(config.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM object_chunks").fetchone()[0] == -(-len(data) // CHUNK)


@pytest.mark.parametrize(
    "header, first, last",
    [
        ("bytes=0-0", 0, 0),
        ("bytes=0-4095", 0, 4095),  # exactly the first chunk
        ("bytes=4095-4096", 4095, 4096),  # across a chunk boundary
        ("bytes=5000-20000", 5000, 20000),  # several chunks, partial at both ends
        ("bytes=8192-", 8192, None),  # open-ended
        ("bytes=-100", -100, None),  # suffix
        ("bytes=-999999", 0, None),  # suffix longer than the content: all of it
        ("bytes=29000-999999", 29000, None),  # end past the content: clamped
        ("bytes = 10 - 20", 10, 20),
        ("bytes=29000-" + "9" * 5000, 29000, None),  # an end longer than int() takes: clamped
        ("bytes=-" + "9" * 5000, 0, None),  # a suffix that long: all of it
    ],
)
def test_single_ranges_are_206_with_exact_bytes(client, big, header, first, last):
    data, image = big
    expected = data[first:] if last is None else data[first : last + 1]
    response = client.get(image["url"], headers={"Range": header})
    assert response.status_code == 206
    assert response.data == expected
    start = first if first >= 0 else len(data) + first
    assert response.headers["Content-Range"] == f"bytes {start}-{start + len(expected) - 1}/{len(data)}"
    assert response.headers["Content-Length"] == str(len(expected))


@pytest.mark.parametrize("header", ["bytes=30054-", "bytes=999999-1000000", "bytes=-0", "bytes=" + "9" * 5000 + "-"])
def test_unsatisfiable_range_is_416(client, big, header):
    data, image = big
    response = client.get(image["url"], headers={"Range": header})
    assert_error(response, 416, "range_not_satisfiable")
    assert response.headers["Content-Range"] == f"bytes */{len(data)}"


@pytest.mark.parametrize(
    "header",
    [
        "bytes=0-1,5-6",  # several ranges: the whole content instead of multipart/byteranges
        "bytes=10-5",  # invalid: ignored
        "items=0-5",
        "bytes=abc",
        "bytes=-",
        "garbage",
        "bytes=1-2-3",
    ],
)
def test_multi_or_malformed_ranges_get_the_whole_content(client, big, header):
    data, image = big
    response = client.get(image["url"], headers={"Range": header})
    assert response.status_code == 200 and response.data == data


def test_if_range_with_another_etag_gets_the_whole_content(client, big):
    data, image = big
    stale = client.get(image["url"], headers={"Range": "bytes=0-9", "If-Range": '"0000"'})
    assert stale.status_code == 200 and stale.data == data
    fresh = client.get(image["url"], headers={"Range": "bytes=0-9", "If-Range": f'"{image["sha256"]}"'})
    assert fresh.status_code == 206 and fresh.data == data[:10]


@pytest.mark.parametrize(
    "header, status",
    [
        ('"{sha}"', 304),
        ('W/"{sha}"', 304),
        ('"other", "{sha}"', 304),
        ("*", 304),
        ('"other"', 200),
        ('"{sha}-x"', 200),
    ],
)
def test_if_none_match(client, big, header, status):
    data, image = big
    response = client.get(image["url"], headers={"If-None-Match": header.format(sha=image["sha256"])})
    assert response.status_code == status
    assert response.headers["ETag"] == f'"{image["sha256"]}"'
    assert response.data == (b"" if status == 304 else data)


def test_head_gives_headers_and_reads_no_chunk(client, big, small_app, config):
    data, image = big
    misses = small_app.extensions["imagerepo"].blobs.cache.misses
    # Remove every chunk file: HEAD must still answer, since it reads none of them.
    for path in config.blob_dir.rglob("*"):
        if path.is_file() and len(path.name) == 64:
            path.unlink()
    response = client.head(image["url"])
    assert response.status_code == 200 and response.data == b""
    assert response.headers["Content-Length"] == str(len(data))
    assert response.headers["ETag"] == f'"{image["sha256"]}"'
    ranged = client.head(image["url"], headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.headers["Content-Length"] == "10"
    assert small_app.extensions["imagerepo"].blobs.cache.misses == misses
    # ... while GET finds the damage and says so before any byte is sent, never wrong bytes.
    assert_error(client.get(image["url"]), 500, "storage_corrupt")


def test_download_names_the_file_rfc6266(client, alice):
    name = 'ñandú "画像" 100%.png'
    image = client.post(
        "/images/raw", query_string={"name": name}, headers=alice["headers"], data=image_bytes()
    ).get_json()
    assert image["name"] == name
    response = client.get(image["url"] + "?download=1")
    assert response.status_code == 200
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; ")
    fallback = disposition.split('filename="')[1].split('"')[0]
    assert fallback.isascii() and '"' not in fallback and fallback.endswith(".png")
    encoded = disposition.split("filename*=UTF-8''")[1]
    assert urllib.parse.unquote(encoded, encoding="utf-8") == name
    assert all(c.isascii() and c not in ' "' for c in encoded)
    assert client.get(image["url"]).headers["Content-Disposition"].startswith("inline; ")


def test_private_content_never_leaks_through_the_cache(client, alice, bob, small_app):
    data = noise_bmp(50, 50)
    image = uploaded(client, alice["headers"], data, isPrivate=1, accessKey="k-123456")
    assert client.get(image["url"], headers=alice["headers"]).data == data  # chunks now hot
    assert small_app.extensions["imagerepo"].blobs.cache.get(hashlib.sha256(data[:CHUNK]).hexdigest()) is not None
    for headers in ({}, bob["headers"]):
        assert_error(client.get(image["url"], headers=headers), 404)
        assert_error(client.get(image["url"], headers={**headers, "Range": "bytes=0-10"}), 404)
        assert client.head(image["url"], headers=headers).status_code == 404
        assert_error(client.get(image["url"] + "?accesskey=nope", headers=headers), 404)
        assert_error(client.get(f"/images/{image['id']}", headers=headers), 404)
        listed = client.get("/images?limit=100", headers=headers).get_json()["images"]
        assert image["id"] not in [i["id"] for i in listed]
    # a public image going private is refused at once, even to someone who just fetched it
    public = uploaded(client, alice["headers"], image_bytes(color="navy"))
    assert client.get(public["url"], headers=bob["headers"]).status_code == 200
    client.patch(f"/images/{public['id']}", headers=alice["headers"], json={"isPrivate": True})
    assert_error(client.get(public["url"], headers=bob["headers"]), 404)
    etag = f'"{public["sha256"]}"'
    assert_error(client.get(public["url"], headers={**bob["headers"], "If-None-Match": etag}), 404)


def test_same_file_twice_is_one_object_and_delete_keeps_the_other(client, alice, bob, config):
    data = noise_bmp(40, 40)
    first = uploaded(client, alice["headers"], data, name="one.bmp")
    second = uploaded(client, bob["headers"], data, name="two.bmp", isPrivate=1)
    assert first["sha256"] == second["sha256"] and first["id"] != second["id"]
    with psycopg.connect(config.database_url) as conn:
        objects = conn.execute("SELECT refcount FROM objects").fetchall()
        assert objects == [(2,)]
    assert client.delete(f"/images/{first['id']}", headers=alice["headers"]).status_code == 202
    assert client.get(second["url"], headers=bob["headers"]).data == data
    assert client.get(f"/images/{second['id']}", headers=bob["headers"]).get_json()["name"] == "two.bmp"
    with psycopg.connect(config.database_url) as conn:
        assert conn.execute("SELECT refcount FROM objects").fetchall() == [(1,)]


# -- the real server ----------------------------------------------------------------------------
def _multipart_stream(boundary: str, name: str, data: bytes, fields: dict, piece: int = 256 * 1024):
    for key, value in fields.items():
        yield (f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n').encode()
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    for offset in range(0, len(data), piece):
        yield data[offset : offset + piece]
    yield f"\r\n--{boundary}--\r\n".encode()


def _pieces(data: bytes, piece: int = 300_000):
    for offset in range(0, len(data), piece):
        yield data[offset : offset + piece]


def test_real_server_streams_multi_mib_uploads_and_ranges(server):
    base = server.url
    requests.post(
        base + "/register", json={"name": "dana", "email": "dana@example.com", "password": "correct horse battery"}
    ).raise_for_status()
    token = requests.post(base + "/login", json={"username": "dana", "password": "correct horse battery"}).json()[
        "access_token"
    ]
    headers = {"Authorization": f"Bearer {token}"}
    data = noise_bmp(1100, 1000)  # 3.3 MB, 13 chunks of 256 KiB
    boundary = "imagerepo-test-boundary"
    response = requests.post(
        base + "/images",
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        data=_multipart_stream(boundary, "big.bmp", data, {"description": "big one"}),
        timeout=60,
    )
    assert response.status_code == 201, response.text
    multipart_image = response.json()
    assert multipart_image["size"] == len(data) and multipart_image["description"] == "big one"

    other = noise_bmp(1000, 1000)
    response = requests.post(
        base + "/images/raw",
        params={"name": "raw.bmp", "isPrivate": 1},
        headers=headers,
        data=_pieces(other),
        timeout=60,
    )
    assert response.status_code == 201, response.text
    raw_image = response.json()
    assert raw_image["sha256"] == hashlib.sha256(other).hexdigest()

    for image, content in ((multipart_image, data), (raw_image, other)):
        full = requests.get(base + image["url"], headers=headers, timeout=60)
        assert full.status_code == 200 and full.content == content
        first, last = 1_000_000, 2_600_000
        ranged = requests.get(base + image["url"], headers={**headers, "Range": f"bytes={first}-{last}"}, timeout=60)
        assert ranged.status_code == 206
        assert ranged.content == content[first : last + 1]
        assert ranged.headers["Content-Range"] == f"bytes {first}-{last}/{len(content)}"
    assert requests.get(base + raw_image["url"], timeout=10).status_code == 404
    assert (
        requests.get(base + raw_image["url"], params={"accesskey": raw_image["accessKey"]}, timeout=10).content == other
    )


def test_a_manifest_cached_before_the_content_was_stored_again_is_not_used(config, alice, client, big):
    """Content freed and stored again by a process with another chunk size has other chunks: a
    worker that cached the old manifest must notice, even when only a later chunk is gone."""
    data, image = big
    # Another image shares the first chunks, so they survive the collection below: only the
    # old manifest's later chunks disappear (the first-chunk check alone would not notice).
    uploaded(client, alice["headers"], data + b"trailing bytes", name="sharer.bmp")
    assert client.get(image["url"]).data == data  # this worker now caches the 4 KiB manifest
    assert client.delete(f"/images/{image['id']}", headers=alice["headers"]).status_code == 202
    small_app = client.application
    small_app.extensions["imagerepo"].blobs.collect_garbage(grace_seconds=0)
    other = create_app(with_changes(config, chunk_size=8 * CHUNK))
    try:
        again = uploaded(other.test_client(), alice["headers"], data, name="noise.bmp")
    finally:
        other.extensions["imagerepo"].db.close()
    assert client.get(again["url"]).data == data
    assert client.get(again["url"], headers={"Range": "bytes=20000-20010"}).data == data[20000:20011]
