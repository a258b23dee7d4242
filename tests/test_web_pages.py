"""The gallery's pages (imagerepo/web/pages.py): HTML with a strict CSP and no inline script or
style, the favicon, Swagger UI's files served from the package."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser

import pytest
from conftest import assert_error
from PIL import Image


class _Inline(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, handlers, style elements/attributes."""

    def __init__(self):
        super().__init__()
        self.problems: list[str] = []
        self.scripts: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            if not attrs.get("src"):
                self.problems.append("inline <script>")
            self.scripts.append(attrs.get("src") or "")
        if tag == "style":
            self.problems.append("<style> element")
        for name in attrs:
            if name == "style" or name.startswith("on"):
                self.problems.append(f"{name}= on <{tag}>")


def directives(policy: str) -> dict[str, str]:
    return {d.split()[0]: " ".join(d.split()[1:]) for d in (p.strip() for p in policy.split(";")) if d}


@pytest.mark.parametrize("path", ["/", "/view/1", "/docs"])
def test_pages_have_a_strict_policy_and_nothing_inline(client, path):
    response = client.get(path)
    assert response.status_code == 200 and response.mimetype == "text/html"
    csp = directives(response.headers["Content-Security-Policy"])
    assert csp["default-src"] == "'self'" and csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'" and csp["base-uri"] == "'none'"
    assert "unsafe" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    parser = _Inline()
    parser.feed(response.get_data(as_text=True))
    assert parser.problems == []
    for src in parser.scripts:  # every script the page loads is served by the app
        with client.get(src) as served:  # a file response: closed, or its handle leaks
            assert served.status_code == 200, src


def test_gallery_replaces_the_json_404_at_root(client):
    body = client.get("/").get_data(as_text=True)
    assert "<title>Gallery · ImageRepo</title>" in body and 'id="grid"' in body


def test_unknown_paths_are_still_json_404s(client):
    assert_error(client.get("/no-such-page"), 404, "not_found")
    assert_error(client.get("/view/not-a-number"), 404)


def test_favicon(client):
    with client.get("/favicon.ico") as response:
        assert response.status_code == 200 and response.mimetype == "image/vnd.microsoft.icon"
        assert Image.open(io.BytesIO(response.data)).format == "ICO"
    with client.get("/web/static/favicon.svg") as svg:
        assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"


def test_swagger_ui_is_served_from_the_package(client):
    with client.get("/docs/assets/swagger-ui-bundle.js") as bundle:
        assert bundle.status_code == 200 and "javascript" in bundle.mimetype and len(bundle.data) > 500_000
    with client.get("/docs/assets/swagger-ui.css") as css:
        assert css.mimetype == "text/css"
    page = client.get("/docs").get_data(as_text=True)
    assert "/docs/assets/swagger-ui-bundle.js" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing from another host
    # Only the two files the page uses; nothing else from the wheel, no path tricks.
    for name in ("index.css", "oauth2-redirect.html", "..%2f__init__.py", "LICENSE"):
        assert_error(client.get(f"/docs/assets/{name}"), 404)


def test_upload_limit_reaches_the_page(client, config):
    assert f'data-max-upload-bytes="{config.max_upload_bytes}"' in client.get("/").get_data(as_text=True)
