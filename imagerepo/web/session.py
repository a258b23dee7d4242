"""The browser's session: the API's tokens in HttpOnly cookies instead of a JSON body.

    POST   /web/session          log in ({"username", "password"} as JSON): sets the cookies
    POST   /web/session/refresh  a new access cookie from the refresh cookie
    DELETE /web/session          log out: revokes both tokens, clears the cookies

Why routes of their own rather than a flag on /login: the page's JavaScript must never see a
token (that is the point of HttpOnly), the API's /login keeps its contract and its document,
and the refresh cookie is sent only to this path (JWT_REFRESH_COOKIE_PATH), so the routes that
use it have to live under it. Login and refresh call the API's own views, so the checks the API
applies to them (password, disabled account, revocation, any throttling) apply here unchanged.
"""

from __future__ import annotations

import hmac

import jwt
from flask import Blueprint, Response, current_app, jsonify, request
from flask_jwt_extended import (
    decode_token,
    set_access_cookies,
    set_refresh_cookies,
    unset_jwt_cookies,
)
from flask_jwt_extended.exceptions import CSRFError, JWTExtendedException

from .. import auth
from ..context import services
from ..errors import ApiError

bp = Blueprint("web_session", __name__)


def _access_cookie_age() -> int:
    # A little shorter than the token: the browser drops the cookie before the server would
    # refuse the token, so a page never sends a dead token (with <img> it could not recover).
    lifetime = int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds())
    return max(lifetime - 30, lifetime // 2)


def _refresh_cookie_age() -> int:
    return int(current_app.config["JWT_REFRESH_TOKEN_EXPIRES"].total_seconds())


def _api_answer(endpoint: str) -> dict:
    """Run one of the API's views on this request and return its JSON answer (errors propagate
    as the API's own errors)."""
    answer = current_app.view_functions[endpoint]()
    assert isinstance(answer, Response)  # the API's views answer JSON responses
    return answer.get_json()


@bp.after_request
def _never_cached(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/web/session")
def log_in():
    # A cross-site <form> cannot send application/json without a CORS preflight, which this
    # server never grants: that keeps other sites from logging a visitor into their account.
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send the credentials as application/json")
    tokens = _api_answer("auth.login")
    claims = decode_token(tokens["access_token"])
    response = jsonify({"user": {"id": int(claims["sub"]), "name": claims.get("name")}})
    set_access_cookies(response, tokens["access_token"], max_age=_access_cookie_age())
    set_refresh_cookies(response, tokens["refresh_token"], max_age=_refresh_cookie_age())
    return response


@bp.post("/web/session/refresh")
def refresh():
    # auth.refresh reads the refresh cookie and checks its CSRF header and revocation.
    tokens = _api_answer("auth.refresh")
    response = jsonify({"refreshed": True, "expiresIn": _access_cookie_age()})
    set_access_cookies(response, tokens["access_token"], max_age=_access_cookie_age())
    return response


def _cookie_claims(name: str) -> dict | None:
    """The claims of the token in cookie `name` if its signature holds; None if absent or
    unreadable. Expired tokens are skipped: they need no revoking."""
    token = request.cookies.get(name)
    if not token:
        return None
    try:
        return decode_token(token)
    except (jwt.PyJWTError, JWTExtendedException):  # expired, forged, malformed: nothing to revoke
        return None


@bp.delete("/web/session")
def log_out():
    config = current_app.config
    held = [
        claims
        for claims in (
            _cookie_claims(config["JWT_ACCESS_COOKIE_NAME"]),
            _cookie_claims(config["JWT_REFRESH_COOKIE_NAME"]),
        )
        if claims
    ]
    if held:
        # Revoking is a state change: the page proves it is ours with either CSRF cookie.
        sent = request.headers.get(config["JWT_ACCESS_CSRF_HEADER_NAME"], "")
        if not sent:
            raise CSRFError("Missing CSRF token")
        if not any(hmac.compare_digest(str(claims.get("csrf", "")), sent) for claims in held):
            raise CSRFError("CSRF double submit tokens do not match")
    db = services().db
    for claims in held:
        auth.revoke_token(db, claims)
    response = jsonify({"revoked": len(held)})
    unset_jwt_cookies(response)
    return response
