"""/docs: Swagger UI from the package under the page's strict CSP, and "Try it out" calling the
running server, anonymously and with the gallery's cookie session."""

from __future__ import annotations

from harness import sign_up


def execute(page, method: str, path: str) -> str:
    """Expand an operation, try it out, execute it; the live response's status code."""
    block = (
        page.locator(".opblock")
        .filter(has=page.locator(".opblock-summary-method", has_text=method))
        .filter(has=page.locator(f".opblock-summary-path[data-path='{path}']"))
    )
    block.locator(".opblock-summary").click()
    block.get_by_role("button", name="Try it out").click()
    block.get_by_role("button", name="Execute").click()
    status = block.locator(".live-responses-table tr.response .response-col_status").first
    status.wait_for()
    return status.inner_text().strip()


def test_swagger_ui_renders_and_tries_requests(gallery_server, open_tab):
    base = gallery_server.url
    tab = open_tab("docs")
    tab.goto(base + "/docs")
    page = tab.page
    assert page.locator(".opblock").count() > 20  # every documented operation
    assert page.get_by_role("link", name="/openapi.json").first.is_visible()
    assert execute(page, "GET", "/healthz") == "200"
    tab.shot("docs", full_page=False)  # the whole document is ~6000 px tall

    # Logged in through the gallery, "Try it out" rides on the session cookie.
    sign_up(tab, base, "docsreader")
    tab.goto(base + "/docs")
    assert execute(page, "GET", "/me") == "200"
    assert (
        '"name": "docsreader"'
        in page.locator(".live-responses-table tr.response .response-col_description").first.inner_text()
    )
    # A change from the docs page carries the CSRF header: the API's logout revokes the token.
    assert execute(page, "POST", "/logout") == "200"
    tab.shot("docs-try-it", full_page=False)
