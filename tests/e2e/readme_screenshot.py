"""Makes the README's screenshots of the gallery (gallery.png, and an image's page with a share
link, gallery-image.png): a throwaway database filled by
`seed-demo`, the real server, headless Chromium logged in as demo1. Not a test; run it when the
gallery's look changes:

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python tests/e2e/readme_screenshot.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import psycopg
from psycopg import conninfo, sql

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from harness import CHROMIUM, CHROMIUM_FLAGS  # noqa: E402 (found through sys.path above)
from live_server import LiveServer  # noqa: E402

from imagerepo.db import apply_schema  # noqa: E402

PROJECT_ROOT = HERE.parent.parent
OUT = PROJECT_ROOT / "gallery.png"
OUT_IMAGE = PROJECT_ROOT / "gallery-image.png"


def main() -> None:
    server_url = os.environ["DATABASE_URL"]
    name = f"imagerepo_shot_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = conninfo.make_conninfo(server_url, dbname=name)
    try:
        apply_schema(url)
        blobs = Path(tempfile.mkdtemp()) / "blobs"
        env = {**os.environ, "DATABASE_URL": url, "IMAGEREPO_BLOB_DIR": str(blobs)}
        subprocess.run(
            [sys.executable, "-m", "imagerepo", "seed-demo", "--users", "2", "--images", "14", "--seed", "7"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        server = LiveServer(url, blobs).start()
        try:
            shoot(server.url)
        finally:
            server.stop()
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def shoot(base: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 820})
        page.goto(base + "/")
        page.get_by_role("button", name="Log in").first.click()
        page.locator("#login-dialog").get_by_label("User name or email").fill("demo1")
        page.locator("#login-dialog").get_by_label("Password").fill("demo-password")
        page.locator("#login-dialog").get_by_role("button", name="Log in").click()
        page.locator("#whoami").filter(has_text="demo1").wait_for()
        page.wait_for_function("() => document.getElementById('grid').getAttribute('aria-busy') === 'false'")
        page.wait_for_function("() => [...document.querySelectorAll('#grid img')].every(i => i.complete)")
        page.locator("#flash").evaluate("e => e.textContent = ''")
        page.screenshot(path=str(OUT))
        # An image of demo1's: its page with a share link just made.
        page.locator("#grid li", has=page.locator(".badge.mine")).first.locator("a.card-link").click()
        page.wait_for_function("() => document.getElementById('image-view').getAttribute('aria-busy') === 'false'")
        page.wait_for_function("() => document.getElementById('image-full').complete")
        page.get_by_role("button", name="Create link").click()
        page.locator("#share-new").wait_for()
        page.locator("#share-list li[data-link-id]").first.wait_for()
        page.locator("#share-url").evaluate("e => e.blur()")
        page.screenshot(path=str(OUT_IMAGE), full_page=True)
        browser.close()
    # A palette keeps the committed files small.
    from PIL import Image

    for out in (OUT, OUT_IMAGE):
        Image.open(out).convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
        print(f"{out}: {out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
