"""A person's path through the gallery, in headless Chromium against the real server: sign up,
upload (progress, refusals), thumbnails, tags and the tag filter, private images and their key,
another person's view, the phone layout, the session surviving an expired access cookie, and
delete. Every page must stay free of console errors and CSP violations (see conftest.Tab)."""

from __future__ import annotations

import os
import re

from harness import MAX_UPLOAD_BYTES, sign_up
from PIL import Image


def make_files(folder):
    big = folder / "sunset.png"  # ~3 MB of noise: long enough to watch its progress bar move
    Image.frombytes("RGB", (1000, 1000), os.urandom(3_000_000)).save(big)
    small = folder / "harbour.jpg"
    Image.new("RGB", (640, 480), "steelblue").save(small, quality=80)
    notes = folder / "notes.png"  # a name that lies: the server types by the bytes
    notes.write_text("shopping list: milk, eggs")
    huge = folder / "huge.bmp"  # over the server's limit: refused before a byte is sent
    huge.write_bytes(b"BM" + bytes(MAX_UPLOAD_BYTES))
    return big, small, notes, huge


def image_loaded(page, selector: str) -> bool:
    return page.eval_on_selector(selector, "img => img.complete && img.naturalWidth > 0")


def card(page, image_id: int):
    return page.locator(f'#grid li[data-image-id="{image_id}"]')


def no_sideways_scroll(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_gallery_flow(gallery_server, open_tab, tmp_path):
    base = gallery_server.url
    alice = open_tab("alice")
    page = alice.page
    alice.goto(base + "/")
    assert page.locator("#signed-out-hint").is_visible()
    alice.shot("anonymous")
    sign_up(alice, base, "alice")
    assert page.locator("#upload-section").is_visible()

    # -- upload two images (and two refusals) by the file input, progress shown ------------------
    big, small, notes, huge = make_files(tmp_path)
    cdp = page.context.new_cdp_session(page)
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 2_000_000},
    )
    with alice.expecting_http_error(415):
        page.set_input_files("#file-input", [str(big), str(small), str(notes), str(huge)])
        page.wait_for_function(
            "() => [...document.querySelectorAll('#upload-list progress')].some(p => p.value > 0 && p.value < 100)"
        )
        alice.shot("uploading")
        page.locator(".upload-item.failed", has_text="notes.png").wait_for()
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    page.locator(".upload-item.done").nth(1).wait_for()
    rows = {
        name: page.locator(".upload-item", has_text=name)
        for name in ("sunset.png", "harbour.jpg", "notes.png", "huge.bmp")
    }
    for name in ("sunset.png", "harbour.jpg"):
        assert rows[name].locator("progress").evaluate("p => p.value") == 100
        assert "Uploaded" in rows[name].inner_text()
    # Refusals sit next to their file, in words.
    assert "Not an image" in rows["notes.png"].locator(".upload-status").inner_text()
    assert re.search(r"Too large: the limit is 8\.0 MiB", rows["huge.bmp"].inner_text())
    ids = {
        name: int(rows[name].get_by_role("link", name="open").get_attribute("href").rsplit("/", 1)[1])
        for name in ("sunset.png", "harbour.jpg")
    }
    sunset, harbour = ids["sunset.png"], ids["harbour.jpg"]

    # -- both thumbnails in the grid: variants 200 px high, not the originals ---------------------
    alice.goto(base + "/")
    for image_id, name, original in ((sunset, "sunset.png", (1000, 1000)), (harbour, "harbour.jpg", (640, 480))):
        card(page, image_id).locator("img").wait_for()
        page.wait_for_function(
            f"() => {{ const i = document.querySelector('#grid li[data-image-id=\"{image_id}\"] img');"
            " return i && i.complete && i.naturalWidth > 0; }"
        )
        img = card(page, image_id).locator("img")
        assert img.get_attribute("alt") == name
        assert re.search(r"/images/\d+/content\?.*height=200", img.evaluate("i => i.currentSrc")), "a variant"
        natural = img.evaluate("i => [i.naturalWidth, i.naturalHeight]")
        assert natural[1] == 200 and natural[0] == round(200 * original[0] / original[1]), natural
    alice.shot("uploaded")

    # -- open one by keyboard, tag it, describe it (with markup that must stay text) -----------------
    card(page, sunset).locator("a.card-link").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/view/{sunset}")
    page.locator("#image-view").wait_for()
    page.wait_for_function(
        "() => { const i = document.getElementById('image-full'); return i.complete && i.naturalWidth > 0; }"
    )
    page.get_by_label("Edit tags").fill("Sunset,  Beach ")
    page.get_by_role("button", name="Save tags").click()
    page.locator("#tag-list").filter(has_text="sunset").wait_for()
    assert page.locator("#tag-list li").all_inner_texts() == ["beach", "sunset"]
    description = 'Golden <b>sunset</b> & "friends" <img src=x onerror=alert(1)>'
    page.get_by_label("Description").fill(description)
    page.get_by_role("button", name="Save description").click()
    page.locator("#image-description").filter(has_text="Golden").wait_for()
    assert page.locator("#image-description").inner_text() == description
    assert page.locator("#image-description *").count() == 0  # text, not markup
    assert page.locator("#image-full").get_attribute("alt") == description
    alice.shot("image-page")

    # -- find it by the tag filter ------------------------------------------------------------------
    alice.goto(base + "/")
    page.get_by_label("Tag", exact=True).fill("sunset")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**/?tag=sunset")
    card(page, sunset).wait_for()
    page.wait_for_function("() => document.querySelectorAll('#grid li').length === 1")
    assert card(page, harbour).count() == 0
    alice.shot("tag-filter")

    # -- make it private; its key link ----------------------------------------------------------------
    alice.goto(f"{base}/view/{sunset}")
    page.get_by_role("switch", name="Private").check()
    page.locator("#key-panel").wait_for()
    key_link = page.locator("#key-link").input_value()
    key = page.locator("#access-key").inner_text()
    assert key and key_link == f"{base}/view/{sunset}?accesskey={key}"
    alice.shot("private")

    # -- another person cannot see it, except with its key -----------------------------------------
    bob = open_tab("bob")
    sign_up(bob, base, "bob")
    bob.page.wait_for_function("() => !document.getElementById('grid-status').textContent.startsWith('Loading')")
    card(bob.page, harbour).wait_for()
    assert card(bob.page, sunset).count() == 0
    bob.shot("gallery-without-private")
    with bob.expecting_http_error(404):
        bob.goto(f"{base}/view/{sunset}")
        bob.page.locator("#image-status").filter(has_text="No such image").wait_for()
    assert bob.page.locator("#image-view").is_hidden()
    bob.shot("private-without-key")
    with bob.expecting_http_error(404):  # a wrong key is answered like an absent image
        bob.goto(f"{base}/view/{sunset}?accesskey=not-the-key")
        bob.page.locator("#image-status").filter(has_text="or the access key is wrong").wait_for()
    bob.goto(key_link)
    bob.page.locator("#image-view").wait_for()
    bob.page.wait_for_function(
        "() => { const i = document.getElementById('image-full'); return i.complete && i.naturalWidth > 0; }"
    )
    assert bob.page.locator("#owner-panel").is_hidden() and bob.page.locator("#tags-form").is_hidden()
    assert "accesskey=" in bob.page.locator("#download").get_attribute("href")
    bob.shot("private-with-key")

    # -- the phone layout (375 px) ---------------------------------------------------------------
    page.set_viewport_size({"width": 375, "height": 812})
    alice.goto(base + "/")
    card(page, sunset).wait_for()
    assert no_sideways_scroll(page)
    alice.shot("phone-gallery")
    alice.goto(f"{base}/view/{sunset}")
    page.locator("#image-view").wait_for()
    assert no_sideways_scroll(page)
    alice.shot("phone-image")
    page.set_viewport_size({"width": 1280, "height": 900})

    # -- the access cookie ran out: the page refreshes it and still shows the private image -------
    page.context.clear_cookies(name="access_token_cookie")
    page.context.clear_cookies(name="csrf_access_token")
    alice.goto(base + "/?mine=1")
    card(page, sunset).locator(".badge.private").wait_for()
    page.wait_for_function(
        f"() => {{ const i = document.querySelector('#grid li[data-image-id=\"{sunset}\"] img');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    assert any(c["name"] == "access_token_cookie" for c in page.context.cookies())

    # -- delete, with a confirmation ------------------------------------------------------------
    alice.goto(f"{base}/view/{sunset}")
    page.get_by_role("button", name="Delete…").click()
    dialog = page.get_by_role("dialog", name="Delete this image?")
    dialog.wait_for()
    alice.shot("delete-confirm")
    dialog.get_by_role("button", name="Cancel").click()
    assert page.locator("#image-view").is_visible()  # nothing happened
    page.get_by_role("button", name="Delete…").click()
    dialog.get_by_role("button", name="Delete", exact=True).click()
    page.wait_for_url(f"{base}/")
    card(page, harbour).wait_for()
    assert card(page, sunset).count() == 0
    with bob.expecting_http_error(404):
        bob.goto(key_link)
        bob.page.locator("#image-status").filter(has_text="No such image").wait_for()

    # -- log out: the session is gone from the browser ---------------------------------------------
    page.get_by_role("button", name="Log out").click()
    page.locator("#signed-out-hint").wait_for()
    assert not [c for c in page.context.cookies() if c["name"].endswith("_cookie")]
    alice.shot("logged-out")
