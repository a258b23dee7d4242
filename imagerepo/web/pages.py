"""The pages people open: the gallery (/), an image (/view/<id>), the API docs (/docs).

Each page is a static shell: no user data is rendered on the server, the page's JavaScript
fetches it from the JSON API and puts it in the DOM as text. Every page answers with a strict
Content-Security-Policy (scripts and styles from this origin only, nothing inline), no framing
and no Referer (a page's URL may hold ?accesskey=).
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, current_app, render_template, send_from_directory

from ..context import services
from ..images.schemas import ListQuery

# The grid asks the listing for thumbnails of this height where the service makes variants (the
# listing then takes ?thumbnail=); elsewhere it shows the originals.
THUMBNAIL_SIZE = 200

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static", static_url_path="/web/static")

STATIC_DIR = Path(__file__).parent / "static"

_COMMON_POLICY = (
    "default-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none';"
    " form-action 'self'; frame-ancestors 'none'"
)
# blob: for the previews of files chosen for upload (URL.createObjectURL, never fetched).
GALLERY_POLICY = f"{_COMMON_POLICY}; style-src 'self'; img-src 'self' blob:"
# Swagger UI's stylesheet draws its icons as data: SVGs.
DOCS_POLICY = f"{_COMMON_POLICY}; style-src 'self'; img-src 'self' data:"

# The files of Swagger UI the docs page loads, from the swagger-ui-dist copy that the
# flask-swagger-ui wheel ships (pinned in requirements.txt; no CDN, no build step).
_SWAGGER_FILES = {"swagger-ui-bundle.js", "swagger-ui.css"}


def _swagger_dist() -> Path:
    import flask_swagger_ui

    return Path(flask_swagger_ui.__file__).parent / "dist"


@bp.after_request
def _page_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", GALLERY_POLICY)
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "no-referrer"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    return response


def _page(template: str, **context):
    config = current_app.config
    return render_template(
        template,
        max_upload_bytes=services().config.max_upload_bytes,
        thumbnail_size=THUMBNAIL_SIZE if "thumbnail" in ListQuery.model_fields else "",
        # Share links (the plans package): the image page offers them only where the routes are.
        share_links="share_links" in current_app.blueprints,
        link_min_seconds=getattr(services().config, "link_min_seconds", ""),
        link_max_seconds=getattr(services().config, "link_max_seconds", ""),
        csrf_access_cookie=config["JWT_ACCESS_CSRF_COOKIE_NAME"],
        csrf_refresh_cookie=config["JWT_REFRESH_CSRF_COOKIE_NAME"],
        **context,
    )


@bp.get("/")
def gallery():
    return _page("web/gallery.html")


@bp.get("/view/<int:image_id>")
def image_page(image_id: int):
    return _page("web/image.html", image_id=image_id)


@bp.get("/docs")
def docs_page():
    response = current_app.make_response(_page("web/docs.html"))
    response.headers["Content-Security-Policy"] = DOCS_POLICY
    return response


@bp.get("/docs/assets/<name>")
def docs_asset(name: str):
    if name not in _SWAGGER_FILES:
        abort(404)
    response = send_from_directory(_swagger_dist(), name)
    response.headers["Content-Security-Policy"] = DOCS_POLICY
    return response


@bp.get("/favicon.ico")
def favicon():
    return send_from_directory(STATIC_DIR, "favicon.ico", mimetype="image/vnd.microsoft.icon")
