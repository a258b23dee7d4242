"""The client's share commands against the real server: `share` prints a URL anyone can open,
`links` lists it, `unshare` ends it."""

from __future__ import annotations

import requests
from test_client import Cli, make_image

import pytest


@pytest.fixture
def cli(server, tmp_path) -> Cli:
    return Cli(server.url, tmp_path / "home")


def test_share_links_unshare(cli, server):
    cli.signup("alice")
    data = make_image(cli.workdir / "cat.png", (32, 24), "PNG")
    image_id = cli.json("upload", "cat.png", "--private")["images"][0]["id"]

    shared = cli.ok("share", str(image_id), "--expires", "3600")
    url = shared.stdout.strip()
    assert url.startswith(server.url + "/s/") and len(url.splitlines()) == 1
    opened = requests.get(url, timeout=30)  # anyone: no token, no key
    assert opened.status_code == 200 and opened.content == data

    listed = cli.json("links", str(image_id))["links"]
    assert [x["url"] for x in listed] == [url]
    assert str(listed[0]["id"]) in cli.ok("links", str(image_id)).stdout

    assert "revoked" in cli.ok("unshare", str(image_id), str(listed[0]["id"])).stdout
    assert requests.get(url, timeout=30).status_code == 404
    assert "no live links" in cli.ok("links", str(image_id)).stdout
    assert "not_found" in cli.fails("unshare", str(image_id), str(listed[0]["id"]))
    assert "expiresIn" in cli.fails("share", str(image_id), "--expires", "5")
    assert "plan_forbids" not in cli.fails("share", "999", "--expires", "300")
