"""The gallery from the keyboard alone, in headless Chromium against the real server: the skip
link, signing up through the dialog, a visible focus ring, the filters, opening an image from
the grid, the share-link form, and the delete dialog (Escape cancels, focus comes back). The
file picker is the one step a keyboard cannot drive here (it is the operating system's): the
test sets the files on the focused input."""

from __future__ import annotations

from harness import PASSWORD
from PIL import Image


def active(page) -> dict:
    """What has the focus: tag, id, text or accessible label, and whether a focus ring shows."""
    return page.evaluate(
        """() => {
        const e = document.activeElement;
        const style = getComputedStyle(e);
        return {tag: e.tagName.toLowerCase(), id: e.id, text: (e.innerText || e.value || '').trim(),
                label: e.getAttribute('aria-label') || (e.labels && e.labels[0] ? e.labels[0].innerText.trim() : ''),
                cls: e.className || '', ring: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0,
                inDialog: !!e.closest('dialog[open]')};
    }"""
    )


def tab_to(page, matches, limit: int = 60, key: str = "Tab") -> dict:
    """Press Tab until the focused element matches; fail after `limit` presses."""
    for _ in range(limit):
        page.keyboard.press(key)
        focused = active(page)
        if matches(focused):
            return focused
    raise AssertionError(f"never reached by {key}; last focus: {active(page)}")


def test_the_gallery_works_from_the_keyboard(gallery_server, open_tab, tmp_path):
    base = gallery_server.url
    dana = open_tab("dana")
    page = dana.page
    dana.goto(base + "/")

    # -- the skip link comes first and moves the focus to the content ---------------------------
    page.keyboard.press("Tab")
    first = active(page)
    assert first["text"] == "Skip to content" and first["ring"], first
    page.keyboard.press("Enter")
    assert active(page)["id"] == "main"

    # -- sign up through the dialog ----------------------------------------------------------------
    button = tab_to(page, lambda f: f["text"] == "Sign up" and f["tag"] == "button")
    assert button["ring"], "the focused button shows a focus ring"
    page.keyboard.press("Enter")
    focused = active(page)
    assert focused["inDialog"] and focused["label"].startswith("User name"), focused
    page.keyboard.type("dana")
    page.keyboard.press("Tab")
    page.keyboard.type("dana@example.com")
    page.keyboard.press("Tab")  # the hints between the fields are text, not stops
    assert active(page)["label"].startswith("Password"), active(page)
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.locator("#whoami").filter(has_text="Signed in as dana").wait_for()
    assert page.locator("#signup-dialog").is_hidden()
    dana.shot("signed-up")

    # -- upload (the picker is the OS's: files are set on the focused input) ----------------------
    tab_to(page, lambda f: f["id"] == "file-input")
    picture = tmp_path / "kite.png"
    Image.new("RGB", (400, 300), "teal").save(picture)
    page.set_input_files("#file-input", [str(picture)])
    done = page.locator(".upload-item.done", has_text="kite.png")
    done.wait_for()
    image_id = int(done.get_by_role("link", name="open").get_attribute("href").rsplit("/", 1)[1])

    # -- the filters: type a search and press Enter ------------------------------------------------
    dana.goto(base + "/")
    search = tab_to(page, lambda f: f["label"].startswith("Search"))
    assert search["ring"]
    page.keyboard.type("kite")
    page.keyboard.press("Enter")
    page.wait_for_url("**/?q=kite")
    page.wait_for_function("() => document.getElementById('grid').getAttribute('aria-busy') === 'false'")
    page.wait_for_function("() => document.querySelectorAll('#grid li').length === 1")

    # -- open the image from the grid ------------------------------------------------------------
    link = tab_to(page, lambda f: "card-link" in f["cls"])
    assert link["ring"]
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/view/{image_id}")
    page.wait_for_function("() => document.getElementById('image-view').getAttribute('aria-busy') === 'false'")

    # -- a share link from the keyboard ----------------------------------------------------------
    page.locator("#share-links").wait_for()
    tab_to(page, lambda f: f["id"] == "share-expiry")
    page.keyboard.press("ArrowDown")  # a choice changed with the arrow keys
    tab_to(page, lambda f: f["text"] == "Create link")
    page.keyboard.press("Enter")
    page.locator("#share-new").wait_for()
    assert active(page)["id"] == "share-url", "the new link has the focus, selected for copying"
    revoke = tab_to(page, lambda f: f["label"].startswith("Revoke the link"))
    assert revoke["ring"]
    page.keyboard.press("Enter")
    page.locator("#share-list li.hint", has_text="None.").wait_for()
    dana.shot("shared-and-revoked")

    # -- delete: Escape cancels, focus returns; Enter on Delete deletes ---------------------------
    opener = tab_to(page, lambda f: f["text"] == "Delete…", limit=80)
    page.keyboard.press("Enter")
    focused = active(page)
    assert focused["inDialog"] and focused["text"] == "Cancel", "the safe choice has the focus"
    page.keyboard.press("Escape")
    assert page.locator("#delete-dialog").is_hidden()
    assert active(page)["text"] == opener["text"], "focus is back on the button that opened it"
    assert page.locator("#image-view").is_visible()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert active(page)["text"] == "Delete" and active(page)["inDialog"]
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/")
    page.wait_for_function("() => document.getElementById('grid').getAttribute('aria-busy') === 'false'")
    assert page.locator(f'#grid li[data-image-id="{image_id}"]').count() == 0
