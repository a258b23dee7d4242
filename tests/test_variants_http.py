"""Variants over HTTP against the real server (gunicorn): the content route's transform
parameters with the original's HTTP semantics and access rules, ten concurrent first requests
on several workers making one variant, and the collector freeing variants with their source
(`gc --grace 0` and `fsck` run as an operator runs them)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import requests
import variant_samples as samples
from http_helpers import signup
from live_server import live_server
from PIL import Image

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def upload(url: str, headers: dict, data: bytes, name: str = "photo.jpg", **fields) -> dict:
    response = requests.post(url + "/images", headers=headers, files={"file": (name, data)}, data=fields, timeout=60)
    assert response.status_code == 201, response.text
    return response.json()


def refused(response, status: int, code: str | None = None) -> dict:
    """A JSON error answer with this status (and code)."""
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def cli(config, *args) -> tuple[int, dict | None, str]:
    env = {
        **os.environ,
        "DATABASE_URL": config.database_url,
        "IMAGEREPO_BLOB_DIR": str(config.blob_dir),
        "IMAGEREPO_ENV": "test",
        "IMAGEREPO_JWT_SECRET": "cli-test-secret-" + "z" * 40,
    }
    result = subprocess.run(
        [sys.executable, "-m", "imagerepo", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.returncode, json.loads(result.stdout) if result.stdout.strip() else None, result.stderr


def chunk_files(blob_dir: Path) -> list[Path]:
    return [p for p in blob_dir.rglob("*") if p.is_file() and len(p.name) == 64 and "staging" not in p.parts]


def test_variant_semantics(server):
    alice = signup(server.url, "alice")
    original = samples.photo_jpeg(1200, 800, orientation=1)
    image = upload(server.url, alice, original)
    content = f"{server.url}/images/{image['id']}/content"

    plain = requests.get(content, timeout=30)
    assert plain.content == original and plain.headers["ETag"] == f'"{hashlib.sha256(original).hexdigest()}"'

    got = requests.get(content, params={"width": "200", "format": "webp"}, timeout=60)
    assert got.status_code == 200, got.text
    assert got.headers["Content-Type"] == "image/webp"
    digest = hashlib.sha256(got.content).hexdigest()
    assert got.headers["ETag"] == f'"{digest}"' and int(got.headers["Content-Length"]) == len(got.content)
    thumb = opened(got.content)
    assert thumb.format == "WEBP" and thumb.size == (200, 133)
    assert not thumb.getexif(), "a variant must carry no EXIF (camera, GPS)"

    # the same variant again: same bytes; conditional, ranged, HEAD, download
    assert requests.get(content, params={"width": "200", "format": "webp"}, timeout=30).content == got.content
    assert requests.get(content + "?width=200&format=webp", headers={"If-None-Match": f'"{digest}"'}).status_code == 304
    ranged = requests.get(content + "?width=200&format=webp", headers={"Range": "bytes=0-9"}, timeout=30)
    assert ranged.status_code == 206 and ranged.content == got.content[:10]
    assert ranged.headers["Content-Range"] == f"bytes 0-9/{len(got.content)}"
    head = requests.head(content + "?width=200&format=webp", timeout=30)
    assert head.status_code == 200 and head.content == b"" and head.headers["Content-Length"] == str(len(got.content))
    assert head.headers["ETag"] == got.headers["ETag"]
    attached = requests.get(content + "?width=200&format=webp&download=1", timeout=30)
    assert attached.headers["Content-Disposition"].startswith('attachment; filename="photo.webp"')
    # the original's ETag does not match the variant
    assert (
        requests.get(content + "?width=200&format=webp", headers={"If-None-Match": plain.headers["ETag"]}).status_code
        == 200
    )

    # seed 002's parameter, and a cover crop
    png = requests.get(content, params={"img_format": "png"}, timeout=60)
    assert png.headers["Content-Type"] == "image/png" and opened(png.content).size == (1200, 800)
    cover = requests.get(content, params={"width": "200", "height": "200", "fit": "cover"}, timeout=60)
    assert cover.headers["Content-Type"] == "image/jpeg" and opened(cover.content).size == (200, 200)

    # bad parameters: 422 JSON naming the parameter
    for query in (
        "width=201",
        "width=abc",
        "width=-200",
        "width=200&width=400",
        "fit=cover&width=200",
        "format=gif",
        "quality=55",
        "width=" + "9" * 30,
    ):
        body = refused(requests.get(content + "?" + query, timeout=30), 422)
        assert body["error"]["code"] in ("invalid_transform", "validation_failed"), (query, body)
    # off-grid sizes: the owner only
    refused(requests.get(content + "?width=123", timeout=30), 422, "invalid_transform")
    own = requests.get(content + "?width=123", headers=alice, timeout=60)
    assert own.status_code == 200 and opened(own.content).width == 123

    # the original is untouched by all this
    assert requests.get(content, timeout=30).content == original


def test_private_variants_need_the_key(server):
    alice = signup(server.url, "alice")
    bob = signup(server.url, "bob")
    image = upload(server.url, alice, samples.photo_jpeg(640, 480), isPrivate="1", accessKey="sesame-123")
    content = f"{server.url}/images/{image['id']}/content?width=200"
    owner = requests.get(content, headers=alice, timeout=60)
    assert owner.status_code == 200 and owner.headers["Cache-Control"] == "private, no-store"
    # made now, but others still need the key
    refused(requests.get(content, timeout=30), 404)
    refused(requests.get(content, headers=bob, timeout=30), 404)
    # a wrong key is answered like an absent image (issue 9), and knowing the variant's ETag
    # (it is the digest of its bytes) opens nothing: no 304 without the key
    refused(requests.get(content + "&accesskey=wrong", timeout=30), 404)
    assert requests.head(content, timeout=30).status_code == 404
    refused(requests.get(content, headers={"If-None-Match": owner.headers["ETag"]}, timeout=30), 404)
    keyed = requests.get(content, headers={"X-Access-Key": "sesame-123"}, timeout=30)
    assert keyed.status_code == 200 and keyed.content == owner.content
    # a key holder is held to the grid like anyone who is not the owner
    refused(requests.get(content.replace("200", "123") + "&accesskey=sesame-123"), 422, "invalid_transform")


def test_ten_concurrent_first_requests_make_one_variant(config):
    with live_server(config.database_url, config.blob_dir, workers=3, threads=4) as server:
        alice = signup(server.url, "alice")
        image = upload(server.url, alice, samples.photo_jpeg(2000, 1333))
        content = f"{server.url}/images/{image['id']}/content?width=500"
        barrier = threading.Barrier(10)
        answers: list = []

        def ask() -> None:
            barrier.wait()
            answers.append(requests.get(content, timeout=120))

        threads = [threading.Thread(target=ask) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [a.status_code for a in answers] == [200] * 10
        assert len({a.content for a in answers}) == 1 and len({a.headers["ETag"] for a in answers}) == 1
        log = server.log_path.read_text()
    assert log.count("variant w=500,h=0,fit=inside,fmt=jpeg,q=80 of") == 1, "rendered more than once"
    with psycopg.connect(config.database_url) as conn:
        rows = conn.execute(
            "SELECT v.object_digest, o.refcount FROM variants v JOIN objects o ON o.digest = v.object_digest"
        ).fetchall()
        assert len(rows) == 1 and rows[0][1] == 1
        assert bytes(rows[0][0]).hex() == hashlib.sha256(answers[0].content).hexdigest()
        assert conn.execute("SELECT count(*) FROM objects").fetchone()[0] == 2


def test_variant_survives_gc_while_its_source_lives_and_goes_with_it(server, config):
    alice = signup(server.url, "alice")
    data = samples.photo_jpeg(800, 600)
    first = upload(server.url, alice, data)
    twin = upload(server.url, alice, data, name="same-bytes.jpg")
    content = f"{server.url}/images/{first['id']}/content"
    variant = requests.get(content + "?height=200&format=png", timeout=60)
    assert variant.status_code == 200
    code, stats, err = cli(config, "stats")
    assert code == 0 and stats["images"] == 2 and stats["variants"] == 1 and stats["variant_objects"] == 1, stats

    assert cli(config, "gc", "--grace", "0")[0] == 0
    again = requests.get(content + "?height=200&format=png", timeout=30)
    assert again.content == variant.content and again.headers["ETag"] == variant.headers["ETag"]
    code, report, err = cli(config, "fsck", "--verify-content")
    assert code == 0 and report["problems"] == 0, (report, err)

    # the first image goes, the same bytes live on in the twin: so does the variant
    assert requests.delete(content.removesuffix("/content"), headers=alice, timeout=30).status_code == 202
    assert cli(config, "gc", "--grace", "0")[0] == 0
    via_twin = requests.get(f"{server.url}/images/{twin['id']}/content?height=200&format=png", timeout=30)
    assert via_twin.headers["ETag"] == variant.headers["ETag"]
    assert cli(config, "stats")[1]["variants"] == 1

    # the last image of those bytes goes: source, variant and every chunk file are freed
    assert requests.delete(f"{server.url}/images/{twin['id']}", headers=alice, timeout=30).status_code == 202
    code, report, err = cli(config, "gc", "--grace", "0")
    assert code == 0 and report["objects_freed"] == 2, report
    assert chunk_files(config.blob_dir) == []
    code, stats, err = cli(config, "stats")
    assert stats["images"] == 0 and stats["variants"] == 0 and stats["objects"] == 0 and stats["chunks"] == 0
    code, report, err = cli(config, "fsck")
    assert code == 0 and report["problems"] == 0, (report, err)


def test_limits_per_image(config):
    env = {"IMAGEREPO_VARIANT_MAX_PER_IMAGE": "4", "IMAGEREPO_VARIANT_OFF_GRID_PER_HOUR": "2"}
    with live_server(config.database_url, config.blob_dir, extra_env=env) as server:
        alice = signup(server.url, "alice")
        image = upload(server.url, alice, samples.photo_jpeg(400, 300))
        content = f"{server.url}/images/{image['id']}/content"
        # off-grid sizes: two per hour, then 429 with Retry-After; grid sizes still work
        for width in (101, 102):
            assert requests.get(content, params={"width": width}, headers=alice, timeout=60).status_code == 200
        limited = requests.get(content, params={"width": 103}, headers=alice, timeout=60)
        refused(limited, 429, "too_many_variants")
        assert int(limited.headers["Retry-After"]) > 0
        assert requests.get(content, params={"width": 101}, headers=alice, timeout=60).status_code == 200, "exists"
        # the cap: four made on request, then 422 for a new one, existing ones still served
        assert requests.get(content, params={"width": 64}, timeout=60).status_code == 200
        assert requests.get(content, params={"width": 96}, timeout=60).status_code == 200
        refused(requests.get(content, params={"width": 128}, timeout=60), 422, "variant_limit")
        assert requests.get(content, params={"width": 64}, timeout=60).status_code == 200
        assert requests.get(content, timeout=60).status_code == 200
    with psycopg.connect(config.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM variants").fetchone()[0] == 4


def test_orientation_applied_and_gps_stripped_over_http(server):
    """A photo-like JPEG with camera EXIF, GPS and orientation 6 (shown rotated 90 degrees
    clockwise): its thumbnail is upright, red block top right, and carries no EXIF at all,
    while the original still has every tag."""
    alice = signup(server.url, "alice")
    source = samples.photo_jpeg(600, 400, orientation=6)
    image = upload(server.url, alice, source)
    content = f"{server.url}/images/{image['id']}/content"
    for query in ("height=200", "height=200&format=webp", "format=png"):
        got = requests.get(f"{content}?{query}", timeout=60)
        assert got.status_code == 200, got.text
        thumb = opened(got.content).convert("RGB")
        width, height = thumb.size
        assert height > width, (query, thumb.size)
        red = thumb.getpixel((width - 4, 4))
        assert red[0] > 200 and red[1] < 60 and red[2] < 60, (query, red)
        for secret in (samples.CAMERA_MAKE.encode(), b"Exif\0\0", b"GPS"):
            assert secret not in got.content, (query, secret)
        assert not opened(got.content).getexif()
    assert requests.get(content, timeout=30).content == source
    assert samples.CAMERA_MAKE.encode() in source


def test_dicom_preview_or_a_clear_415(server):
    alice = signup(server.url, "alice")
    ct = upload(server.url, alice, samples.dicom_ct(128, 256), name="scan.dcm")
    got = requests.get(f"{server.url}/images/{ct['id']}/content?width=128", timeout=60)
    assert got.status_code == 200 and got.headers["Content-Type"] == "image/png"
    assert opened(got.content).size == (128, 64)
    assert got.headers["Content-Disposition"].startswith('inline; filename="scan.png"')
    undecodable = upload(server.url, alice, samples.dicom_jpeg_ls(), name="ls.dcm")
    refused(requests.get(f"{server.url}/images/{undecodable['id']}/content?width=64", timeout=60), 415)
    assert requests.get(f"{server.url}/images/{undecodable['id']}/content", timeout=30).status_code == 200
