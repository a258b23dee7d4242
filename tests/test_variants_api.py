"""Variants as the API shows them, against the real server (gunicorn): the image JSON's list of
variants, the listing's thumbnailUrl (an access key only in the owner's own view), and the
command-line client downloading a variant."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import requests
import variant_samples as samples
from http_helpers import signup
from test_variants_http import opened, refused, upload


def test_image_json_lists_variants_and_listing_gives_thumbnails(server):
    alice = signup(server.url, "alice")
    bob = signup(server.url, "bob")
    public = upload(server.url, alice, samples.photo_jpeg(800, 600))
    private = upload(server.url, alice, samples.photo_jpeg(600, 800), isPrivate="1", accessKey="key/with+chars")
    assert requests.get(f"{server.url}/images/{public['id']}/content?width=320&format=webp", timeout=60).ok
    assert requests.get(f"{server.url}/images/{public['id']}/content?width=123", headers=alice, timeout=60).ok

    def variants_seen(image_id: int, headers: dict) -> dict:
        response = requests.get(f"{server.url}/images/{image_id}", headers=headers, timeout=30)
        assert response.status_code == 200
        return {v["url"]: v for v in response.json()["variants"]}

    seen = variants_seen(public["id"], bob)
    base = f"/images/{public['id']}/content?"
    assert seen[base + "width=320&format=webp"] == {
        "width": 320,
        "height": 240,
        "format": "webp",
        "url": base + "width=320&format=webp",
        "exists": True,
    }
    assert seen[base + "height=200"]["exists"] is False and seen[base + "height=200"]["width"] == 267
    assert base + "height=400" in seen and base + "format=png" in seen  # seed 003 heights, seed 002 twin
    assert base + "width=123" not in seen, "an off-grid variant is listed to its owner only"
    assert base + "width=123" in variants_seen(public["id"], alice)
    # every listed URL works for the viewer it was listed to
    for path, variant in seen.items():
        got = requests.get(server.url + path, timeout=60)
        assert got.status_code == 200, (path, got.text)
        assert opened(got.content).size == (variant["width"], variant["height"])

    # the owner's view of a private image: URLs carry the key; a key holder's view does not
    own = variants_seen(private["id"], alice)
    assert all("accesskey=key%2Fwith%2Bchars" in url for url in own)
    assert requests.get(server.url + next(iter(own)), timeout=60).status_code == 200
    keyed = variants_seen(private["id"], {"X-Access-Key": "key/with+chars"})
    assert not any("accesskey" in url for url in keyed)

    # the listing: thumbnailUrl per image only when asked, the key only in the owner's list
    listing = requests.get(server.url + "/images", params={"thumbnail": 200}, headers=alice, timeout=30).json()
    urls = {image["id"]: image["thumbnailUrl"] for image in listing["images"]}
    assert urls[public["id"]] == f"/images/{public['id']}/content?height=200"
    assert urls[private["id"]] == f"/images/{private['id']}/content?height=200&accesskey=key%2Fwith%2Bchars"
    thumb = requests.get(server.url + urls[private["id"]], timeout=60)
    assert thumb.status_code == 200 and opened(thumb.content).size == (150, 200)
    others = requests.get(server.url + "/images", params={"thumbnail": 200}, headers=bob, timeout=30).json()
    assert [image["id"] for image in others["images"]] == [public["id"]]
    assert "key" not in json.dumps(others)
    anonymous = requests.get(server.url + "/images", timeout=30).json()
    assert "thumbnailUrl" not in anonymous["images"][0] and "variants" not in anonymous["images"][0]
    refused(requests.get(server.url + "/images", params={"thumbnail": 201}, timeout=30), 422)
    refused(requests.get(server.url + "/images", params={"thumbnail": "x"}, timeout=30), 422)


def test_client_downloads_a_variant(server, tmp_path):
    from test_client import Cli

    cli = Cli(server.url, tmp_path / "home")
    cli.signup("alice")
    (cli.workdir / "holiday.jpg").write_bytes(samples.photo_jpeg(900, 600))
    cli.ok("upload", "holiday.jpg", "--private")
    image_id = cli.json("list", "--mine")["images"][0]["id"]
    saved = cli.json("download", str(image_id), "--width", "200", "--format", "webp")
    path = Path(saved["path"])
    assert path.name == "holiday-w200.webp" and path.parent == cli.workdir / "outputs"
    data = path.read_bytes()
    assert saved["sha256"] == hashlib.sha256(data).hexdigest()
    assert opened(data).size == (200, 133) and opened(data).format == "WEBP"
    # the original is still what a plain download gives
    assert Path(cli.json("download", str(image_id))["path"]).name == "holiday.jpg"
    assert Path(cli.json("download", str(image_id), "--format", "png")["path"]).name == "holiday.png"
    # a size off the grid is fine for the owner; a bad value is one clear line
    off_grid = Path(cli.json("download", str(image_id), "--height", "77")["path"])
    assert off_grid.name == "holiday-h77.jpg" and opened(off_grid.read_bytes()).height == 77
    line = cli.fails("download", str(image_id), "--quality", "55")
    assert "quality" in line
