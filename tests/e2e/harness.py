"""Browser tests (tests/e2e), registered as a plugin by tests/conftest.py: the real server (gunicorn) driven by headless Chromium through Playwright.

Chromium comes from Debian's package (installed by ensure_chromium.sh when missing; a machine
that cannot install it fails these tests, it does not skip them). Every page a test opens is a
`Tab`, which fails the test on a JavaScript console error, an uncaught exception or a
Content-Security-Policy violation, and saves a screenshot of each step under test-artifacts/e2e/.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
import urllib.parse
from collections import Counter
from pathlib import Path

import pytest
from conftest import truncate_all
from live_server import LiveServer

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


CHROMIUM = os.environ.get("IMAGEREPO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "e2e"
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
PASSWORD = "correct horse battery"

# Chrome logs every 4xx/5xx a page's fetch or XHR gets as a console error with this text.
_HTTP_ERROR = re.compile(r"Failed to load resource: the server responded with a status of (\d{3})")
# Reports CSP violations as console errors, also the ones Chrome itself would word differently.
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"} in ${e.sourceFile}:${e.lineNumber}`);
});
"""


# The pages mark the region they are filling with aria-busy (for screen readers too).
_DRAWN = "id => { const e = document.getElementById(id); return !!e && e.getAttribute('aria-busy') === 'false'; }"


class Tab:
    """One page, with everything that must fail a test collected in `problems`."""

    def __init__(self, page, name: str):
        self.page = page
        self.name = name
        self.problems: list[str] = []
        self._allowed: Counter = Counter()
        self._shots = 0
        page.add_init_script(_CSP_LISTENER)
        page.on("console", self._on_console)
        page.on("pageerror", lambda err: self.problems.append(f"uncaught exception: {err}"))

    def _on_console(self, message) -> None:
        if message.type != "error":
            return
        status = _HTTP_ERROR.search(message.text)
        if status and self._allowed[status.group(1)] > 0:
            self._allowed[status.group(1)] -= 1
            return
        self.problems.append(f"console error: {message.text} ({message.location.get('url')})")

    @contextlib.contextmanager
    def expecting_http_error(self, status: int, count: int = 1):
        """The page is meant to meet `count` answers with this status inside the block (a refused
        upload, a private image): Chrome's console error for them is not a failure."""
        self._allowed[str(status)] += count
        yield
        deadline = time.monotonic() + 5
        while self._allowed[str(status)] > 0 and time.monotonic() < deadline:
            self.page.wait_for_timeout(50)
        if self._allowed[str(status)] > 0:
            self.problems.append(f"expected {count} answer(s) with status {status}; saw fewer")
            self._allowed[str(status)] = 0

    def goto(self, url: str) -> None:
        """Open a page and wait until its script has drawn it (its status line says so)."""
        self.page.goto(url)
        path = urllib.parse.urlsplit(url).path
        if path.startswith("/docs"):
            self.page.locator(".swagger-ui .opblock").first.wait_for()
        else:
            region = "image-view" if path.startswith("/view/") else "grid"
            self.page.wait_for_function(_DRAWN, arg=region)

    def shot(self, label: str, full_page: bool = True) -> Path:
        self._shots += 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{self._shots:02d}-{label}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def check(self) -> None:
        assert self.problems == [], "\n".join(self.problems)


@pytest.fixture(scope="session")
def chromium():
    script = Path(__file__).parent / "ensure_chromium.sh"
    result = subprocess.run(["sh", str(script)], check=False, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        pytest.fail(f"Chromium is needed for the browser tests and could not be installed:\n{result.stderr}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def gallery_server(database_url, tmp_path_factory):
    """One server for all browser tests (each test uses users of its own)."""
    truncate_all(database_url)
    root = tmp_path_factory.mktemp("e2e")
    server = LiveServer(
        database_url,
        root / "blobs",
        workers=1,
        threads=8,
        extra_env={"IMAGEREPO_MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES)},
    ).start()
    yield server
    server.stop()


@pytest.fixture
def open_tab(chromium, request):
    """open_tab(name, **context_options) -> a Tab in a browser context of its own (its own
    cookies: another person). Each tab is checked when the test ends."""
    contexts, tabs = [], []

    def make(name: str, **options) -> Tab:
        context = chromium.new_context(**options)
        contexts.append(context)
        tab = Tab(context.new_page(), f"{request.node.name}-{name}")
        tabs.append(tab)
        return tab

    yield make
    try:
        for tab in tabs:
            tab.check()
    finally:
        for context in contexts:
            context.close()


def sign_up(tab: Tab, base_url: str, name: str) -> None:
    """Through the gallery's sign-up dialog, as a person would."""
    page = tab.page
    tab.goto(base_url + "/")
    page.get_by_role("button", name="Sign up").first.click()
    dialog = page.locator("#signup-dialog")
    dialog.get_by_label("User name").fill(name)
    dialog.get_by_label("Email").fill(f"{name}@example.com")
    dialog.get_by_label("Password").fill(PASSWORD)
    dialog.get_by_role("button", name="Create account").click()
    page.locator("#whoami").filter(has_text=f"Signed in as {name}").wait_for()
