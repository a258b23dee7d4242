"""Cross-site request forgery against the gallery's cookie session, in a real browser.

A logged-in person opens an attacker's page, which auto-submits forms (a multipart upload with
a file set by script, a text/plain post to the raw upload) and tries fetch() with credentials
(DELETE, PATCH, and a no-cors POST). Served from another site (localhost vs 127.0.0.1), the
SameSite=Strict cookies are not sent at all (401); served from the same host on another port
(same site, another origin: cookies are not isolated by port) the cookies go along and only the
CSRF double submit stops it (403 csrf_failed). Either way nothing is stored, changed or deleted.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import io
import json
import threading

import pytest
import requests
from harness import PASSWORD
from live_server import free_port
from PIL import Image

_ATTACK = """<!doctype html><title>You won a prize</title>
<iframe name="sink1"></iframe><iframe name="sink2"></iframe>
<form id="upload" action="TARGET/images" method="post" enctype="multipart/form-data" target="sink1">
  <input type="file" name="file"><input name="description" value="forged">
</form>
<form id="raw" action="TARGET/images/raw?name=forged.png" method="post" enctype="text/plain" target="sink2">
  <input name="x" value="y">
</form>
<script>
(async () => {
  const bytes = Uint8Array.from(atob("PNG"), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], "forged.png", { type: "image/png" }));
  const upload = document.getElementById("upload");
  upload.file.files = transfer.files;
  const loaded = (name) => new Promise((r) => document.querySelector(`iframe[name=${name}]`).addEventListener("load", r, { once: true }));
  let wait = loaded("sink1"); upload.submit(); await wait;
  wait = loaded("sink2"); document.getElementById("raw").submit(); await wait;
  const outcomes = [];
  for (const [method, body] of [["DELETE", undefined], ["PATCH", '{"isPrivate": true}']]) {
    try {
      const r = await fetch("TARGET/images/IMAGE", { method, body, credentials: "include", headers: { "Content-Type": "application/json" } });
      outcomes.push(`${method}:${r.status}`);
    } catch (e) { outcomes.push(`${method}:blocked`); }
  }
  // A "simple" request needs no preflight: it reaches the server, without the CSRF header.
  await fetch("TARGET/images/raw?name=simple.png", { method: "POST", mode: "no-cors", credentials: "include", body: bytes }).catch(() => {});
  document.title = "done " + outcomes.join(" ");
})();
</script>"""


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "purple").save(buffer, "PNG")
    return buffer.getvalue()


@contextlib.contextmanager
def attacker_site(page_html: str):
    """An HTTP server of the attacker's on another port, answering every GET with the page."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = page_html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("attacker_host", "status", "why"),
    [("localhost", 401, "unauthorized"), ("127.0.0.1", 403, "csrf_failed")],
    ids=["cross-site", "same-site-other-port"],
)
def test_a_forged_cross_origin_post_cannot_upload_change_or_delete(
    gallery_server, open_tab, attacker_host, status, why
):
    base = gallery_server.url
    name = f"victim{status}"
    requests.post(
        base + "/register", json={"name": name, "email": f"{name}@example.com", "password": PASSWORD}, timeout=30
    ).raise_for_status()
    api = {
        "Authorization": "Bearer "
        + requests.post(base + "/login", json={"username": name, "password": PASSWORD}, timeout=30).json()[
            "access_token"
        ]
    }
    image = requests.post(base + "/images", headers=api, files={"file": ("mine.png", png_bytes())}, timeout=30).json()

    victim = open_tab(name)
    victim.page.context.request.post(
        base + "/web/session", data={"username": name, "password": PASSWORD}
    ).ok or pytest.fail("cookie login failed")
    victim.goto(base + "/")  # the victim's gallery, logged in
    assert victim.page.locator("#whoami").inner_text() == f"Signed in as {name}"

    page_html = _ATTACK.replace("TARGET", base).replace("IMAGE", str(image["id"]))
    page_html = page_html.replace("PNG", base64.b64encode(png_bytes()).decode())
    attack = victim.page.context.new_page()  # same browser, same cookies; not a Tab: its errors are expected
    responses = []
    attack.on("response", lambda r: responses.append(r))
    with attacker_site(page_html) as port:
        attack.goto(f"http://{attacker_host}:{port}/prize")
        attack.wait_for_function("() => document.title.startsWith('done')")
    title = attack.title()
    answers = [(r.request.method, r.url, r.status) for r in responses]
    # Which protection refused the upload form: the cookie withheld, or the header missing.
    upload_answer = next(r for r in responses if r.url == base + "/images")
    assert json.loads(upload_answer.text())["error"]["code"] == why
    attack.close()

    # The non-simple requests died at the preflight; the forms and the no-cors post reached the
    # server and were refused: without the cookie (cross-site) or without the CSRF header.
    assert "DELETE:blocked" in title and "PATCH:blocked" in title, title
    posts = [(m, u.replace(base, ""), s) for m, u, s in answers if u.startswith(base)]
    assert sorted(posts) == sorted(
        [
            ("POST", "/images", status),
            ("POST", "/images/raw?name=forged.png", status),
            ("POST", "/images/raw?name=simple.png", status),
        ]
    ), posts
    # Nothing changed: one image, still public, still there.
    mine = requests.get(base + "/images?mine=1", headers=api, timeout=30).json()["images"]
    assert [(i["id"], i["isPrivate"], i["description"]) for i in mine] == [(image["id"], False, "")]
