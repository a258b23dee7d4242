"""Accounts and tokens: the `users` and `revoked_tokens` tables, JWT set-up, and the
/register, /login, /token/refresh, /logout and /me routes."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import psycopg
import pydantic
from flask import Blueprint, Flask, current_app
from flask_jwt_extended import (
    JWTManager,
    create_access_token,
    create_refresh_token,
    get_jwt,
    get_jwt_identity,
)
from werkzeug.security import check_password_hash, generate_password_hash

from .accounts import AccountDisabled, AccountGone, InvalidCredentials, NameTaken
from .context import services
from .errors import error_response
from .validation import Schema, SparseSchema, api

bp = Blueprint("auth", __name__)

# Verified against when the user is unknown, so a wrong name costs the same time as a
# wrong password and login timing does not reveal which accounts exist.
_DUMMY_HASH = generate_password_hash("not a real password", method="scrypt")

Name = Annotated[
    str, pydantic.StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[^\s@]+$")
]
Password = Annotated[str, pydantic.StringConstraints(min_length=8, max_length=1024)]


class RegisterIn(Schema):
    name: Name = pydantic.Field(description="User name: no spaces and no '@'")
    email: pydantic.EmailStr
    password: Password


class LoginIn(Schema):
    username: Annotated[str, pydantic.StringConstraints(strip_whitespace=True, min_length=1, max_length=320)] = (
        pydantic.Field(description="User name or email")
    )
    password: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=1024)]


class UserOut(SparseSchema):
    """An account as every route shows it (to itself, or to an administrator); never its
    password hash."""

    sparse_fields = ("images",)

    id: int
    name: str
    email: str
    isAdmin: bool
    isDisabled: bool
    images: int | None = pydantic.Field(None, description="Images the account owns (administrators' listings)")
    createdAt: dt.datetime


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
    password_hash = generate_password_hash(password, method="scrypt")
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
    with db.transaction() as conn:
        return conn.execute(
            f"SELECT {_USER_COLUMNS} FROM users WHERE name = %s OR lower(email) = lower(%s)"
            " ORDER BY (name = %s) DESC LIMIT 1",
            (login, login, login),
        ).fetchone()


def get_user(db, user_id: int) -> dict | None:
    with db.transaction() as conn:
        return conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = %s", (user_id,)).fetchone()


def current_user_id() -> int:
    return int(get_jwt_identity())


def _tokens_for(user) -> TokensOut:
    identity = str(user["id"])
    claims = {"name": user["name"]}
    return TokensOut(
        access_token=create_access_token(identity=identity, additional_claims=claims),
        refresh_token=create_refresh_token(identity=identity, additional_claims=claims),
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
    responses={401: "Wrong name or password", 422: ""},
    summary="Exchange a name (or email) and password for tokens",
)
def login(body: LoginIn):
    user = find_user_by_login(services().db, body.username)
    password_ok = check_password_hash(user["password_hash"] if user else _DUMMY_HASH, body.password)
    if not user or not password_ok:
        raise InvalidCredentials()
    if user["is_disabled"]:
        raise AccountDisabled()
    return _tokens_for(user)


@bp.post("/token/refresh")
@api(response=AccessTokenOut, auth="refresh", summary="A new access token for a refresh token")
def refresh():
    claims = get_jwt()
    token = create_access_token(identity=get_jwt_identity(), additional_claims={"name": claims.get("name")})
    return AccessTokenOut(
        access_token=token, expires_in=int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds())
    )


@bp.post("/logout")
@api(response=LogoutOut, auth="any", summary="Revoke the token sent (access or refresh)")
def logout():
    claims = get_jwt()
    with services().db.transaction() as conn:
        conn.execute(
            "INSERT INTO revoked_tokens (jti, expires_at) VALUES (%s, to_timestamp(%s)) ON CONFLICT DO NOTHING",
            (claims["jti"], claims["exp"]),
        )
        # Dead tokens need no blocklist entry; prune as we go instead of a cron job.
        conn.execute("DELETE FROM revoked_tokens WHERE expires_at < now() - interval '1 minute'")
    return LogoutOut()


@bp.get("/me")
@api(response=UserOut, summary="The account the token belongs to")
def me():
    user = get_user(services().db, current_user_id())
    if user is None:
        raise AccountGone()
    return user_out(user)


def init_jwt(app: Flask) -> None:
    config = services(app).config
    app.config.update(
        JWT_SECRET_KEY=config.jwt_secret,
        JWT_ALGORITHM="HS256",
        JWT_DECODE_ALGORITHMS=["HS256"],
        JWT_TOKEN_LOCATION=["headers"],
        JWT_ACCESS_TOKEN_EXPIRES=dt.timedelta(minutes=config.access_token_minutes),
        JWT_REFRESH_TOKEN_EXPIRES=dt.timedelta(days=config.refresh_token_days),
        JWT_ERROR_MESSAGE_KEY="message",
    )
    jwt = JWTManager(app)

    @jwt.token_in_blocklist_loader
    def _token_revoked(_header, payload) -> bool:
        # One round trip answers both: revoked by logout, or the account disabled/removed.
        with services().db.read() as conn:
            row = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = %s) AS revoked,"
                " (SELECT is_disabled FROM users WHERE id = %s) AS disabled",
                (payload["jti"], int(payload["sub"]) if str(payload.get("sub", "")).isdigit() else -1),
            ).fetchone()
        return row["revoked"] or row["disabled"] is None or row["disabled"]

    def unauthorized(message: str):
        return error_response(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})

    jwt.unauthorized_loader(lambda reason: unauthorized("missing bearer token"))
    jwt.invalid_token_loader(lambda reason: unauthorized(f"invalid token: {reason}"))
    jwt.expired_token_loader(lambda _h, _p: unauthorized("token has expired"))
    jwt.revoked_token_loader(lambda _h, _p: unauthorized("token has been revoked"))
    jwt.needs_fresh_token_loader(lambda _h, _p: unauthorized("a fresh token is required"))
    jwt.token_verification_failed_loader(lambda _h, _p: unauthorized("token verification failed"))
    jwt.user_lookup_error_loader(lambda _h, _p: unauthorized("unknown user"))
