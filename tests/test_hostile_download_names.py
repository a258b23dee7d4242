"""The name a browser saves an image under ends in an extension of the type the bytes were
sniffed as (a GIF/HTML polyglot named x.html is saved as x.gif), and content opened directly
is a picture, never a page: a restrictive Content-Security-Policy with frame-ancestors."""

from __future__ import annotations

import urllib.parse

import pytest
import requests

from http_helpers import signup
from imagerepo.imagetypes import download_name
from imagesamples import image_bytes

POLYGLOT = image_bytes("GIF") + b"<html><script>alert(document.domain)</script></html>"


def saved_name(disposition: str) -> str:
    return urllib.parse.unquote(disposition.split("filename*=UTF-8''")[1], encoding="utf-8")


def directives(policy: str) -> dict[str, str]:
    return {part.split()[0]: part.strip()[len(part.split()[0]) :].strip() for part in policy.split(";") if part.strip()}


@pytest.mark.parametrize(
    ("name", "fmt", "saved"),
    [
        ("x.html", "GIF", "x.gif"),
        ("evil.svg", "PNG", "evil.png"),
        ("page.HTM", "JPEG", "page.jpg"),
        ("holiday.JPEG", "JPEG", "holiday.JPEG"),
        ("scan.tif", "TIFF", "scan.tif"),
        ("no extension", "WEBP", "no extension.webp"),
        ("archive.tar.exe", "BMP", "archive.tar.bmp"),
        ("ñandú 画像.php", "PNG", "ñandú 画像.png"),
        (".htaccess", "GIF", ".htaccess.gif"),
    ],
)
def test_the_saved_name_ends_in_the_sniffed_type(client, alice, name, fmt, saved):
    data = POLYGLOT if fmt == "GIF" else image_bytes(fmt)
    image = client.post("/images/raw", query_string={"name": name}, headers=alice["headers"], data=data).get_json()
    assert image["name"] == name, "the name the uploader chose is kept as the image's name"
    for query in ("?download=1", ""):
        disposition = client.get(image["url"] + query, headers=alice["headers"]).headers["Content-Disposition"]
        assert saved_name(disposition) == saved
        fallback = disposition.split('filename="')[1].split('"')[0]
        assert fallback.endswith(saved.rsplit(".", 1)[1])


def test_download_name_keeps_every_fitting_extension():
    assert download_name("a.jpe", "image/jpeg") == "a.jpe"
    assert download_name("a.DCM", "application/dicom") == "a.DCM"
    assert download_name("", "image/png") == "image.png"
    assert download_name("a.gif", "application/octet-stream") == "a.gif", "an unknown type changes nothing"


def test_content_is_never_a_page_on_the_real_server(server):
    auth = signup(server.url, "alice")
    image = requests.post(server.url + "/images/raw?name=x.html", data=POLYGLOT, headers=auth, timeout=30).json()
    url = server.url + image["url"]
    etag = requests.head(url, headers=auth, timeout=30).headers["ETag"]
    for method, headers in (("GET", {}), ("HEAD", {}), ("GET", {"If-None-Match": etag})):
        response = requests.request(method, url + "?download=1", headers={**auth, **headers}, timeout=30)
        assert response.status_code == (304 if headers else 200)
        csp = directives(response.headers["Content-Security-Policy"])
        assert csp["default-src"] == "'none'" and csp["frame-ancestors"] == "'none'" and "sandbox" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert headers or response.headers["Content-Type"] == "image/gif"
        assert saved_name(response.headers["Content-Disposition"]) == "x.gif"
    docs = requests.get(server.url + "/docs", timeout=30)
    assert directives(docs.headers["Content-Security-Policy"])["frame-ancestors"] == "'none'"
