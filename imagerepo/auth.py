"""Accounts and tokens: the `users` and `revoked_tokens` tables, JWT set-up, and the
/register, /login, /token/refresh, /logout and /me routes."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated

import psycopg
import pydantic
from flask import Blueprint, Flask, current_app, request
from flask_jwt_extended import (
    create_access_token,
    create_refresh_token,
    get_jwt,
    get_jwt_identity,
)
from flask_jwt_extended.exceptions import CSRFError
from pydantic_core import PydanticCustomError

from . import login_limits, names, passwords, statecache, tokenstate
from .accounts import AccountDisabled, AccountGone, InvalidCredentials, NameTaken
from .context import services
from .errors import error_response
from .fieldtypes import NOT_BLANK
from .plans import service as plans
from .plans.schemas import PlanOut, UsageOut
from .validation import Schema, SparseSchema, api

bp = Blueprint("auth", __name__)

# The one form of Authorization header the service reads (RFC 6750's b64token, loosely).
_BEARER_HEADER = re.compile(r"Bearer +[^\s,]+")

Name = Annotated[str, pydantic.StringConstraints(strip_whitespace=True, min_length=1, max_length=names.MAX_NAME_CHARS)]
Password = Annotated[str, pydantic.StringConstraints(min_length=passwords.MIN_CHARS, max_length=passwords.MAX_CHARS)]


class RegisterIn(Schema):
    name: Name = pydantic.Field(
        description="User name: no spaces, '@', control or invisible characters; unique ignoring case, width"
        " and Unicode form"
    )
    email: pydantic.EmailStr
    password: Password = pydantic.Field(
        description="8 to 1024 characters, any Unicode; not a common or breached password, not only spaces,"
        " not a repeated piece or a run, not little more than the name or email"
    )

    @pydantic.field_validator("name")
    @classmethod
    def _name_rules(cls, value: str) -> str:
        problem = names.name_problem(value)
        if problem:
            raise PydanticCustomError("invalid_name", problem)
        return value

    @pydantic.field_validator("password")
    @classmethod
    def _password_rules(cls, value: str, info: pydantic.ValidationInfo) -> str:
        problem = passwords.password_problem(value, (info.data.get("name", ""), str(info.data.get("email", ""))))
        if problem:
            raise PydanticCustomError("weak_password", problem)
        return value


class LoginIn(Schema):
    username: Annotated[
        str,
        pydantic.StringConstraints(strip_whitespace=True, min_length=1, max_length=320),
        pydantic.WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 320, "pattern": NOT_BLANK}),
    ] = pydantic.Field(description="User name or email")
    password: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=1024)]


class UserOut(SparseSchema):
    """An account as every route shows it (to itself, or to an administrator); never its
    password hash."""

    sparse_fields = ("images", "plan", "usage")

    id: int
    name: str
    email: str
    isAdmin: bool
    isDisabled: bool
    images: int | None = pydantic.Field(None, description="Images the account owns (administrators' listings)")
    createdAt: dt.datetime
    plan: PlanOut | None = pydantic.Field(None, description="The account's plan (/me only)")
    usage: UsageOut | None = pydantic.Field(None, description="Use of each quota of the plan (/me only)")


class TokensOut(Schema):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"
    expires_in: int


class AccessTokenOut(Schema):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int


class LogoutOut(Schema):
    revoked: bool = True


_USER_COLUMNS = "id, name, email, password_hash, is_admin, is_disabled, created_at"


def user_out(row) -> UserOut:
    """The one user-to-JSON function; `images` is shown when the row counts them."""
    fields = dict(
        id=row["id"],
        name=row["name"],
        email=row["email"],
        isAdmin=row["is_admin"],
        isDisabled=row["is_disabled"],
        createdAt=row["created_at"],
    )
    if "images" in row:
        fields["images"] = row["images"]
    return UserOut(**fields)


def create_user(db, name: str, email: str, password: str, is_admin: bool = False) -> dict:
    password_hash = passwords.hash_password(password)
    try:
        with db.transaction() as conn:
            return conn.execute(
                f"INSERT INTO users (name, email, password_hash, is_admin) VALUES (%s, %s, %s, %s)"
                f" RETURNING {_USER_COLUMNS}",
                (name, email, password_hash, is_admin),
            ).fetchone()
    except psycopg.errors.UniqueViolation as err:
        taken = "email" if "email" in (err.diag.constraint_name or "") else "name"
        raise NameTaken(taken) from None


def find_user_by_login(db, login: str) -> dict | None:
    # By key, so every spelling of a name finds it. Accounts that collided before keys existed
    # share one: the exact spelling wins, then the one that holds the name (see names.py).
    with db.transaction() as conn:
        return conn.execute(
            f"SELECT {_USER_COLUMNS} FROM users WHERE name_key = user_name_key(%s) OR lower(email) = lower(%s)"
            " ORDER BY (name = %s) DESC, name_collision, id LIMIT 1",
            (login, login, login),
        ).fetchone()


def set_password_hash(db, user_id: int, password_hash: str) -> None:
    with db.transaction() as conn:
        conn.execute("UPDATE users SET password_hash = %s WHERE id = %s", (password_hash, user_id))


def get_user(db, user_id: int) -> dict | None:
    with db.transaction() as conn:
        return conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = %s", (user_id,)).fetchone()


def current_user_id() -> int:
    return int(get_jwt_identity())


def _tokens_for(user) -> TokensOut:
    identity = str(user["id"])
    # Access tokens name the refresh token of their login (`parent`), so revoking that refresh
    # token (logout) revokes them too, checked in the same query as their own jti.
    refresh_jti = str(uuid.uuid4())
    claims = {"name": user["name"]}
    return TokensOut(
        access_token=create_access_token(identity=identity, additional_claims={**claims, "parent": refresh_jti}),
        refresh_token=create_refresh_token(identity=identity, additional_claims={**claims, "jti": refresh_jti}),
        expires_in=int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()),
    )


@bp.post("/register")
@api(
    body=RegisterIn, response=UserOut, status=201, auth=False, responses={409: "", 422: ""}, summary="Create an account"
)
def register(body: RegisterIn):
    return user_out(create_user(services().db, body.name, str(body.email), body.password))


@bp.post("/login")
@api(
    body=LoginIn,
    response=TokensOut,
    auth=False,
    responses={401: "Wrong name or password", 422: "", 429: "Too many failed logins: wait Retry-After seconds"},
    summary="Exchange a name (or email) and password for tokens",
)
def login(body: LoginIn):
    svc = services()
    # Limited before the password is checked, the same way for a name that does not exist.
    attempt = login_limits.begin(
        svc.db, svc.config, names.login_key(body.username), login_limits.client_key(request.remote_addr)
    )
    user = find_user_by_login(svc.db, body.username)
    password_ok, rehash = passwords.verify_password(user["password_hash"] if user else None, body.password)
    if not password_ok:
        login_limits.failed(svc.db, attempt)
        raise InvalidCredentials()
    assert user is not None  # a password only verifies against a real account's hash
    login_limits.succeeded(svc.db, attempt)
    if rehash:  # hashed before passwords were normalised: store the NFKC form's hash
        set_password_hash(svc.db, user["id"], passwords.hash_password(body.password))
    if user["is_disabled"]:
        raise AccountDisabled()
    return _tokens_for(user)


@bp.post("/token/refresh")
@api(response=AccessTokenOut, auth="refresh", summary="A new access token for a refresh token")
def refresh():
    claims = get_jwt()
    token = create_access_token(
        identity=get_jwt_identity(), additional_claims={"name": claims.get("name"), "parent": claims["jti"]}
    )
    return AccessTokenOut(
        access_token=token, expires_in=int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds())
    )


@bp.post("/logout")
@api(response=LogoutOut, auth="any", summary="Revoke the token sent (access or refresh)")
def logout():
    revoke_token(services().db, get_jwt())
    return LogoutOut()


def revoke_token(db, claims: dict) -> None:
    """Refuse this token from now on (logout here, and the gallery's cookie logout)."""
    # A refresh token's entry must outlive it by one access-token lifetime: an access token it
    # minted just before it expired is still alive and still names it.
    outlives = current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds() if claims.get("type") == "refresh" else 0
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO revoked_tokens (jti, expires_at) VALUES (%s, to_timestamp(%s)) ON CONFLICT DO NOTHING",
            (claims["jti"], claims["exp"] + outlives),
        )
        # Dead tokens need no blocklist entry; prune as we go instead of a cron job.
        conn.execute("DELETE FROM revoked_tokens WHERE expires_at < now() - interval '1 minute'")


@bp.get("/me")
@api(response=UserOut, summary="The account the token belongs to, with its plan and the use of each quota")
def me():
    user = get_user(services().db, current_user_id())
    plan = plans.account_plan(services().db, current_user_id())
    if user is None or plan is None:
        raise AccountGone()
    out = user_out(user)
    out.plan, out.usage = plans.plan_out(plan), plans.usage_out(plan)
    return out


def init_jwt(app: Flask) -> None:
    config = services(app).config
    app.config.update(
        JWT_SECRET_KEY=config.jwt_secret,
        JWT_ALGORITHM="HS256",
        JWT_DECODE_ALGORITHMS=["HS256"],
        # API clients send `Authorization: Bearer`; browsers (the gallery, imagerepo/web) hold the
        # tokens in HttpOnly cookies set by /web/session. A bearer header wins when both are sent,
        # and needs no CSRF token; a cookie-authenticated POST/PUT/PATCH/DELETE must echo the
        # csrf_access_token cookie in X-CSRF-TOKEN (double submit), which another site cannot read.
        JWT_TOKEN_LOCATION=["headers", "cookies"],
        JWT_COOKIE_CSRF_PROTECT=True,
        # Strict: no cookie on any request another site starts; the gallery's pages are the same
        # for everyone (the data comes from same-site API calls), so nothing is lost by it.
        JWT_COOKIE_SAMESITE="Strict",
        JWT_COOKIE_SECURE=config.env == "production",
        # Cookies expire with their tokens (web sets max_age), so a browser never sends a dead one.
        JWT_SESSION_COOKIE=False,
        # The refresh token travels only to the session routes (refresh, logout), nowhere else.
        JWT_REFRESH_COOKIE_PATH="/web/session",
        JWT_ACCESS_TOKEN_EXPIRES=dt.timedelta(minutes=config.access_token_minutes),
        JWT_REFRESH_TOKEN_EXPIRES=dt.timedelta(days=config.refresh_token_days),
        JWT_ERROR_MESSAGE_KEY="message",
    )
    jwt = tokenstate.CachingJWTManager(app)

    # Token checks: verified tokens remembered, revocation and accounts from the state cache.
    state = statecache.StateCache(services(app).db.url, enabled=config.state_cache)
    app.extensions["imagerepo_state"] = state
    services(app).db.on_close(state.close)  # its listener connection goes with the pool
    tokenstate.install(app, jwt, state)

    def unauthorized(message: str):
        return error_response(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})

    @app.before_request
    def _authorization_well_formed():
        # flask-jwt-extended skips a header that is not "Bearer <token>" where a token is
        # optional, so a token sent without "Bearer " was silently ignored (the owner's private
        # image answered 404 as if anonymous). A header that is sent must be one we can read.
        sent = request.headers.get("Authorization")
        if sent is not None and not _BEARER_HEADER.fullmatch(sent.strip()):
            return unauthorized("malformed Authorization header: expected 'Bearer <token>'")
        return None

    jwt.unauthorized_loader(lambda reason: unauthorized("missing bearer token"))
    jwt.invalid_token_loader(lambda reason: unauthorized(f"invalid token: {reason}"))
    jwt.expired_token_loader(lambda _h, _p: unauthorized("token has expired"))
    jwt.revoked_token_loader(lambda _h, _p: unauthorized("token has been revoked"))
    jwt.needs_fresh_token_loader(lambda _h, _p: unauthorized("a fresh token is required"))
    jwt.token_verification_failed_loader(lambda _h, _p: unauthorized("token verification failed"))
    jwt.user_lookup_error_loader(lambda _h, _p: unauthorized("unknown user"))

    @app.errorhandler(CSRFError)
    def _csrf_failed(err):
        # A valid session cookie on a request that did not come from our own pages.
        return error_response(
            403,
            "csrf_failed",
            f"{err}: send the csrf_access_token cookie's value (csrf_refresh_token's to /web/session/refresh)"
            " in X-CSRF-TOKEN",
        )
