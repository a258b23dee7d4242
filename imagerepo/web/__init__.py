"""The web gallery: pages for people (the gallery at /, an image page, the API docs at /docs)
and the browser's cookie session (/web/session).

The pages are static shells (Jinja templates with no user data) whose JavaScript talks to the
same JSON API as every other client; the browser authenticates with the JWTs that
/web/session keeps in HttpOnly cookies (see imagerepo.web.session and auth.init_jwt).
"""

from __future__ import annotations

from flask import Flask


def init_web(app: Flask) -> None:
    from . import pages, session

    app.register_blueprint(pages.bp)
    app.register_blueprint(session.bp)
