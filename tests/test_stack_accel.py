"""X-Accel-Redirect through `imagerepo serve` (nginx -> gunicorn, 2 workers): nginx sends a
verified one-chunk image from its chunk file after the app authorised the request; answers keep
the app's headers; private images still need their key; a damaged file is never sent; one
/metrics scrape through nginx covers both workers.

X-Accel is off by default (it measured no faster, README "Production"): IMAGEREPO_ACCEL_REDIRECT=1."""

from __future__ import annotations

import hashlib
import os
import time

import pytest
import requests

from http_helpers import bmp_bytes, signup
from imagerepo.images.content import CONTENT_POLICY
from test_stack import Stack, _stack_env

METRICS_TOKEN = "scrape-" + "x" * 32


@pytest.fixture(scope="module")
def accel_stack(database_url, tmp_path_factory):
    work = tmp_path_factory.mktemp("accel")
    env = _stack_env(
        database_url,
        work / "blobs",
        IMAGEREPO_ACCEL_REDIRECT="1",
        IMAGEREPO_WORKERS="2",
        IMAGEREPO_METRICS_TOKEN=METRICS_TOKEN,
    )
    running = Stack(env, work / "serve.log").start()
    running.blob_dir = work / "blobs"
    yield running
    assert running.stop() == 0, running.log()


def _via_nginx(stack) -> float:
    text = requests.get(stack.url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10).text
    for line in text.splitlines():
        if line.startswith('imagerepo_download_bytes_total{via="nginx"}'):
            return float(line.rpartition(" ")[2])
    return 0.0


def _upload(stack, headers, data: bytes, name: str, **query) -> dict:
    response = requests.post(
        stack.url + "/images/raw", params={"name": name, **query}, headers=headers, data=data, timeout=30
    )
    assert response.status_code == 201, response.text
    return response.json()


def _chunk_path(stack, data: bytes):
    digest = hashlib.sha256(data).hexdigest()
    return stack.blob_dir / digest[:2] / digest[2:4] / digest


def test_a_one_chunk_image_is_sent_by_nginx_byte_exact_with_the_apps_headers(accel_stack):
    stack = accel_stack
    headers = signup(stack.url, "accel")
    data = bmp_bytes(120, 90, seed=11)  # 32 KB: one chunk
    image = _upload(stack, headers, data, "ünïcode name.bmp")
    before = _via_nginx(stack)
    response = requests.get(stack.url + image["url"], timeout=10)
    assert response.status_code == 200 and response.content == data
    assert _via_nginx(stack) == before + len(data), "nginx sent it (X-Accel-Redirect)"
    h = response.headers
    assert h["Content-Length"] == str(len(data))
    assert h["Content-Type"] == "image/bmp"
    assert h["ETag"] == f'"{image["sha256"]}"'
    assert h["Cache-Control"] == "public, no-cache"
    assert h["Vary"] == "Authorization, X-Access-Key"
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Accept-Ranges"] == "bytes"
    assert h["Content-Security-Policy"] == CONTENT_POLICY
    assert (
        h["Content-Disposition"]
        == "inline; filename=\"_n_code name.bmp\"; filename*=UTF-8''%C3%BCn%C3%AFcode%20name.bmp"
    )
    # Nothing of the chunk file leaks: no Last-Modified (when the bytes were first stored), no
    # internal path, no size header.
    assert "Last-Modified" not in h and "X-Accel-Redirect" not in h and "X-ImageRepo-Size" not in h

    # nginx's access log names the path the client asked for, not the chunk file's.
    log = stack.log_path.read_text(errors="replace")
    assert f'"GET {image["url"]} HTTP/1.1" 200 {len(data)}' in log
    assert image["sha256"] not in log and "_imagerepo_chunks" not in log

    download = requests.get(stack.url + image["url"], params={"download": 1}, timeout=10)
    assert download.content == data and download.headers["Content-Disposition"].startswith("attachment;")
    # Conditionals and ranges keep the app's rules.
    not_modified = requests.get(stack.url + image["url"], headers={"If-None-Match": h["ETag"]}, timeout=10)
    assert not_modified.status_code == 304 and not_modified.content == b""
    ranged = requests.get(stack.url + image["url"], headers={"Range": "bytes=10-19"}, timeout=10)
    assert ranged.status_code == 206 and ranged.content == data[10:20]
    assert ranged.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    several = requests.get(stack.url + image["url"], headers={"Range": "bytes=0-1,5-6"}, timeout=10)
    assert several.status_code == 200 and several.content == data
    head = requests.head(stack.url + image["url"], timeout=10)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(data))


def test_private_images_still_need_their_key_and_the_internal_path_is_closed(accel_stack):
    stack = accel_stack
    headers = signup(stack.url, "accel-private")
    data = bmp_bytes(100, 80, seed=12)
    image = _upload(stack, headers, data, "secret.bmp", isPrivate=1, accessKey="open-sesame-123")
    url = stack.url + image["url"]
    for refused in (
        requests.get(url, timeout=10),
        requests.get(url, params={"accesskey": "wrong-key"}, timeout=10),
        requests.get(url, headers={"X-Access-Key": "wrong-key"}, timeout=10),
    ):
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
        assert data not in refused.content
    before = _via_nginx(stack)
    opened = requests.get(url, params={"accesskey": "open-sesame-123"}, timeout=10)
    assert opened.status_code == 200 and opened.content == data
    assert opened.headers["Cache-Control"] == "private, no-store"
    assert _via_nginx(stack) == before + len(data)
    owner = requests.get(url, headers=headers, timeout=10)
    assert owner.content == data
    assert "open-sesame-123" not in stack.log_path.read_text(errors="replace"), "keys stay out of the logs"
    # The location nginx serves chunk files from answers only the app's redirects.
    digest = hashlib.sha256(data).hexdigest()
    for path in (f"/_imagerepo_chunks/{digest[:2]}/{digest[2:4]}/{digest}", "/_imagerepo_chunks/"):
        direct = requests.get(stack.url + path, timeout=10)
        assert direct.status_code == 404 and data not in direct.content


def test_a_multi_chunk_image_is_sent_by_the_app(accel_stack):
    stack = accel_stack
    headers = signup(stack.url, "accel-big")
    data = bmp_bytes(400, 300, seed=13)  # 360 KB: two chunks
    image = _upload(stack, headers, data, "big.bmp")
    before = _via_nginx(stack)
    response = requests.get(stack.url + image["url"], timeout=10)
    assert response.status_code == 200 and response.content == data
    assert _via_nginx(stack) == before


def test_a_damaged_chunk_file_is_never_sent(accel_stack):
    stack = accel_stack
    headers = signup(stack.url, "accel-damaged")
    data = bmp_bytes(90, 60, seed=14)
    image = _upload(stack, headers, data, "d.bmp")
    assert requests.get(stack.url + image["url"], timeout=10).content == data  # verified, marked
    path = _chunk_path(stack, data)
    damaged = bytearray(data)
    damaged[-1] ^= 0xFF
    time.sleep(0.01)
    path.write_bytes(bytes(damaged))  # the same size, a new modification time
    os.utime(path, ns=(time.time_ns(), time.time_ns()))
    for _ in range(4):  # whichever worker takes it
        response = requests.get(stack.url + image["url"], timeout=10)
        assert response.status_code == 500 and response.json()["error"]["code"] == "storage_corrupt"


def test_a_share_link_of_a_private_image_keeps_its_own_cache_rules(accel_stack):
    stack = accel_stack
    headers = signup(stack.url, "accel-link")
    data = bmp_bytes(70, 50, seed=15)
    image = _upload(stack, headers, data, "linked.bmp", isPrivate=1)
    created = requests.post(
        f"{stack.url}/images/{image['id']}/links", json={"expiresIn": 600}, headers=headers, timeout=10
    )
    assert created.status_code == 201, created.text
    before = _via_nginx(stack)
    opened = requests.get(stack.url + created.json()["url"], timeout=10)
    assert opened.status_code == 200 and opened.content == data
    assert _via_nginx(stack) == before + len(data), "sent by nginx"
    max_age = opened.headers["Cache-Control"]
    assert max_age.startswith("private, max-age=") and 0 < int(max_age.rpartition("=")[2]) <= 600
    assert opened.headers["Vary"] == "Accept-Encoding"
    assert requests.get(stack.url + image["url"], timeout=10).status_code == 404, "the image itself stays private"
