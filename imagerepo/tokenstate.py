"""Checking a bearer token on every request, cheaply: the verified-token cache and the
revocation/account check against the worker's state cache (imagerepo/statecache.py).

Why: a token check was ~1.5 ms of CPU in PyJWT (the token was decoded three times per request,
each segment's base64 alphabet checked character by character in Python) plus a round trip to
PostgreSQL; at c=16 that halved the small GETs a worker could answer.

- A token string that verified once (signature, algorithm, claims) is the same token the next
  time: its claims are kept per app, keyed by the exact string (and the CSRF value it was
  checked with), and its expiry is checked again on every use. Nothing else about a token can
  change; revocation is not a property of the string and is checked separately, below.
- Revocation (logout) and disabled/removed accounts: from the state cache when it knows every
  part, else one round trip whose good answers are cached. The state cache's bound (1 s) is
  therefore the bound for these too.
"""

from __future__ import annotations

import time

import jwt as pyjwt
from flask import Flask, request
from flask_jwt_extended import JWTManager
from flask_jwt_extended import view_decorators as _views
from flask_jwt_extended.config import config as _jwt_config

from .context import services
from .statecache import StateCache

MAX_TOKENS = 10_000


class CachingJWTManager(JWTManager):
    """flask-jwt-extended's manager, remembering the tokens it has verified."""

    def __init__(self, app: Flask | None = None):
        self._verified: dict[tuple, dict] = {}
        super().__init__(app)

    def _decode_jwt_from_config(self, encoded_token: str, csrf_value=None, allow_expired: bool = False) -> dict:
        key = (encoded_token, csrf_value)
        claims = self._verified.get(key)
        if claims is not None and (allow_expired or claims.get("exp", 0) > time.time() - _jwt_config.leeway):
            return dict(claims)
        # Not seen, or expired: the library's own checks, which raise the right error.
        claims = super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        if "exp" in claims:  # only tokens that end are remembered (ours all do)
            if len(self._verified) >= MAX_TOKENS:
                del self._verified[next(iter(self._verified))]
            self._verified[key] = dict(claims)
        return claims


_headers: dict[str, dict] = {}


def _unverified_headers(encoded_token: str) -> dict:
    # The header of a token string never changes (and is not trusted for anything: the token
    # is verified on its own); the library asks for it once per request.
    header = _headers.get(encoded_token)
    if header is None:
        header = pyjwt.get_unverified_header(encoded_token)
        if len(_headers) >= MAX_TOKENS:
            del _headers[next(iter(_headers))]
        _headers[encoded_token] = header
    return dict(header)


def install(app: Flask, jwt: JWTManager, state: StateCache) -> None:
    """The revocation check and read-your-writes for `app`'s tokens."""
    _views.get_unverified_jwt_headers = _unverified_headers

    @jwt.token_in_blocklist_loader
    def _token_revoked(_header, payload) -> bool:
        # Revoked by logout (the token, or the refresh token it was minted from), or the account
        # disabled/removed: from the state cache when it knows every part, else one round trip.
        jtis = [payload["jti"]] + ([payload["parent"]] if isinstance(payload.get("parent"), str) else [])
        user_id = int(payload["sub"]) if str(payload.get("sub", "")).isdigit() else -1
        if state.get("user", user_id) is True and all(state.get("token", jti) is True for jti in jtis):
            return False
        generation = state.generation()
        with services().db.read() as conn:
            row = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ANY (%s)) AS revoked,"
                " (SELECT is_disabled FROM users WHERE id = %s) AS disabled",
                (jtis, user_id),
            ).fetchone()
        refused = row["revoked"] or row["disabled"] is None or row["disabled"]
        if not refused:  # only good news is cached: "enabled", "not revoked"
            state.put("user", user_id, True, generation)
            for jti in jtis:
                state.put("token", jti, True, generation)
        return refused

    @app.after_request
    def _changes_seen_here(response):
        # A change this worker just committed is in its own cache before its next request
        # (read-your-writes); other workers see it within the cache's bound.
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            state.sync()
        return response
