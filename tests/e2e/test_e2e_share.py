"""Share links in the gallery, in headless Chromium against the real server: the owner of a
private image makes a link with an expiry on the image page and copies it; a fresh browser
context (no cookies, no account, no key) opens the link and sees the image, but still not the
image's page; once revoked, the link opens nothing. Needs the plans package's share-link routes
(the default plan, Unlimited, gives links to originals)."""

from __future__ import annotations

import re
import subprocess
import sys

from harness import ARTIFACTS, sign_up
from PIL import Image


def test_share_link_opens_in_a_fresh_browser_context(gallery_server, open_tab, tmp_path):
    base = gallery_server.url
    carol = open_tab("carol", permissions=["clipboard-read", "clipboard-write"])
    page = carol.page
    sign_up(carol, base, "carol")
    picture = tmp_path / "lighthouse.png"
    Image.new("RGB", (300, 200), "darkorange").save(picture)
    page.set_input_files("#file-input", [str(picture)])
    done = page.locator(".upload-item.done", has_text="lighthouse.png")
    done.wait_for()
    image_id = int(done.get_by_role("link", name="open").get_attribute("href").rsplit("/", 1)[1])

    # -- private, so only its key or a share link opens it -----------------------------------------
    carol.goto(f"{base}/view/{image_id}")
    page.get_by_role("switch", name="Private").check()
    page.locator("#key-panel").wait_for()
    panel = page.locator("#share-links")
    panel.wait_for()
    page.wait_for_function("() => document.getElementById('share-list').getAttribute('aria-busy') === 'false'")
    assert panel.locator("#share-list").inner_text() == "None."

    # -- make a link that expires in an hour, copy it ------------------------------------------------
    page.get_by_label("Expires in").select_option(label="1 hour")
    page.get_by_label("Shows").select_option(label="The original")
    page.get_by_role("button", name="Create link").click()
    page.locator("#share-new").wait_for()
    url = page.get_by_label("New link (copy it now: it is shown once)").input_value()
    assert re.fullmatch(rf"{re.escape(base)}/s/[A-Za-z0-9_-]+", url), url
    item = panel.locator("#share-list li[data-link-id]")
    item.wait_for()
    assert item.count() == 1 and "The original" in item.inner_text() and "expires" in item.inner_text()
    page.get_by_role("button", name="Copy link").last.click()
    page.locator("#flash").filter(has_text="Link copied.").wait_for()
    assert page.evaluate("() => navigator.clipboard.readText()") == url
    carol.shot("share-link-made")

    # -- a fresh browser context: no cookies, no key; the link alone opens the image -------------
    stranger = open_tab("stranger")
    assert stranger.page.context.cookies() == []
    # The link's bytes open as Chromium's own image document, not a gallery page: its inline
    # styling is refused by the content's sandbox CSP (console messages the Tab guard is not for).
    viewer = stranger.page.context.new_page()
    errors: list[str] = []
    viewer.on("pageerror", lambda err: errors.append(str(err)))
    response = viewer.goto(url)
    assert response is not None and response.status == 200
    assert response.headers["content-type"] == "image/png"
    assert "sandbox" in response.headers["content-security-policy"]
    viewer.wait_for_function(
        "() => document.images.length === 1 && document.images[0].complete && document.images[0].naturalWidth === 300"
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(path=str(ARTIFACTS / f"{stranger.name}-shared-image.png"))
    assert errors == []
    assert stranger.page.context.cookies() == []
    # The link gives these bytes, not the image: its page and its content stay closed.
    assert stranger.page.request.get(f"{base}/images/{image_id}").status == 404
    assert stranger.page.request.get(f"{base}/images/{image_id}/content").status == 404

    # -- revoke: the link opens nothing from now on --------------------------------------------------
    page.get_by_role("button", name=re.compile(r"^Revoke the link to the original")).click()
    page.locator("#share-list li.hint", has_text="None.").wait_for()
    page.locator("#flash").filter(has_text="Link revoked").wait_for()
    carol.shot("share-link-revoked")
    gone = stranger.page.request.get(url)
    assert gone.status == 404 and gone.json()["error"]["code"]
    late = open_tab("late-stranger")
    assert late.page.request.get(url).status == 404


def _assign_plan(server, user: str, plan: str) -> None:
    """As an administrator would, with the CLI (python -m imagerepo plan assign)."""
    subprocess.run(
        [sys.executable, "-m", "imagerepo", "plan", "assign", user, plan],
        env=server.env,
        check=True,
        capture_output=True,
        timeout=60,
    )


def _upload(page, path) -> int:
    page.set_input_files("#file-input", [str(path)])
    done = page.locator(".upload-item.done", has_text=path.name)
    done.wait_for()
    return int(done.get_by_role("link", name="open").get_attribute("href").rsplit("/", 1)[1])


def test_share_links_follow_the_plan(gallery_server, open_tab, tmp_path):
    base = gallery_server.url
    picture = tmp_path / "meadow.png"
    Image.new("RGB", (800, 600), "olivedrab").save(picture)

    # Basic gives no expiring links: no panel, and no request for one.
    erin = open_tab("erin")
    sign_up(erin, base, "erin")
    _assign_plan(gallery_server, "erin", "Basic")
    image_id = _upload(erin.page, picture)
    requests_seen: list[str] = []
    erin.page.on("request", lambda r: requests_seen.append(r.url))
    erin.goto(f"{base}/view/{image_id}")
    assert erin.page.locator("#owner-panel").is_visible()
    assert erin.page.locator("#share-links").is_hidden()
    assert not [url for url in requests_seen if "/links" in url]
    erin.shot("basic-plan-no-links")

    # Enterprise gives the original and thumbnails 200 and 400 px high.
    _assign_plan(gallery_server, "erin", "Enterprise")
    erin.goto(f"{base}/view/{image_id}")
    erin.page.locator("#share-links").wait_for()
    options = erin.page.locator("#share-variant option").all_inner_texts()
    assert options == ["The original", "A thumbnail 200 px high", "A thumbnail 400 px high"]
    erin.page.get_by_label("Shows").select_option(label="A thumbnail 200 px high")
    erin.page.get_by_role("button", name="Create link").click()
    erin.page.locator("#share-new").wait_for()
    url = erin.page.locator("#share-url").input_value()
    assert re.fullmatch(rf"{re.escape(base)}/s/[A-Za-z0-9_-]+", url), url
    assert "Thumbnail, 200 px high" in erin.page.locator("#share-list li[data-link-id]").inner_text()
    erin.shot("thumbnail-link")

    # A fresh context opens the thumbnail: 200 px high, not the 800 x 600 original.
    stranger = open_tab("stranger")
    viewer = stranger.page.context.new_page()  # an image document, as in the test above
    response = viewer.goto(url)
    assert response is not None and response.status == 200
    viewer.wait_for_function("() => document.images.length === 1 && document.images[0].complete")
    assert viewer.evaluate("() => [document.images[0].naturalWidth, document.images[0].naturalHeight]") == [267, 200]
