"""The browser tests' guard can fail: a console error, an uncaught exception and a
Content-Security-Policy violation on a gallery page each land in the Tab's problems (which fail
the test that meets them), and an expected HTTP error that never comes is one too."""

from __future__ import annotations


def test_the_tab_reports_console_errors_exceptions_and_csp_violations(gallery_server, open_tab):
    tab = open_tab("guard")
    tab.goto(gallery_server.url + "/")
    page = tab.page
    assert tab.problems == []

    page.evaluate("() => console.error('boom from a test')")
    # An inline script: the page's CSP (script-src 'self') refuses to run it.
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1'; document.body.append(s); }"
    )
    # An image from another origin: img-src 'self' refuses to load it.
    page.evaluate("() => { const i = new Image(); i.src = 'http://192.0.2.1/x.png'; document.body.append(i); }")
    page.evaluate("() => setTimeout(() => { throw new Error('uncaught in a test'); })")
    page.wait_for_function("() => true")
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.ran") is None  # the inline script did not run

    problems = "\n".join(tab.problems)
    assert "boom from a test" in problems
    assert "CSP violation: script-src" in problems  # script-src-elem, in Chromium's words
    assert "CSP violation: img-src" in problems and "192.0.2.1" in problems
    assert "uncaught exception: uncaught in a test" in problems

    tab.problems.clear()  # seen: the fixture's own check must pass
    with tab.expecting_http_error(404):
        pass  # nothing answered 404
    assert tab.problems == ["expected 1 answer(s) with status 404; saw fewer"]
    tab.problems.clear()
