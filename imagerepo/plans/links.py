"""Share links: made by an image's owner when the plan permits, used by anyone holding the
URL until the link expires or is revoked.

The token is HMAC-SHA256(key, nonce) with a random 128-bit nonce and a key derived from the
server's secret (256 bits, base64url): unguessable, and the owner's listings can show it again,
while a copy of the database alone opens nothing. Lookups go by the token's SHA-256, compared
again in constant time; every failure (unknown, forged, altered, expired, revoked, the image
gone, the plan no longer giving it) is the same 404.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from .. import access
from ..context import services
from ..images.content import variant_row
from ..images.queries import find_image
from ..variants import pipeline
from ..variants import transform as vt
from ..variants.images import off_grid
from ..variants.service import get_or_create_variant, variant_for
from . import link_queries, queries
from .errors import InvalidLifetime, LinkNotFound, PlanForbids
from .schemas import LinkIn

_KEY_LABEL = b"imagerepo share link tokens v1"
_MAX_TOKEN_CHARS = 64


def _key() -> bytes:
    return hmac.new(services().config.jwt_secret.encode(), _KEY_LABEL, hashlib.sha256).digest()


def token_of(nonce: bytes) -> str:
    return base64.urlsafe_b64encode(hmac.new(_key(), nonce, hashlib.sha256).digest()).rstrip(b"=").decode()


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def link_url(row) -> str:
    return f"/s/{token_of(bytes(row['nonce']))}"


def allowed(plan, height: int | None) -> str | None:
    """Why `plan` does not give a link to this variant (None: it does)."""
    if not plan["expiring_links"]:
        return f"the {plan['name']} plan does not give expiring share links"
    if height is None and not plan["original_via_links"]:
        return f"the {plan['name']} plan does not give links to the original (thumbnail heights: {plan['thumbnail_heights']})"
    if height is not None and height not in plan["thumbnail_heights"]:
        return f"the {plan['name']} plan gives thumbnails of heights {plan['thumbnail_heights']}, not {height}"
    return None


def link_transform(image, height: int | None, fmt: str | None) -> vt.Transform:
    """The variant a link serves: `height` px high (never enlarged) in format `fmt` (default:
    the image's own, as the content route's), or the full size converted to `fmt`. Any height
    the plan names is allowed (administrators pick them), as for the owner's own requests."""
    return vt.normalise(
        0,
        height or 0,
        "inside",
        fmt or vt.default_format(image["content_type"]),
        vt.DEFAULT_QUALITY,
        any_size=True,
        formats=pipeline.supported_formats(),
    )


def create_link(owner: int, image_id: int, body: LinkIn):
    """A new link to the owner's image (or a variant of it); the link row with its nonce. A
    variant is made now, on the owner's request (and its limits), so that opening the link
    only ever finds it."""
    config = services().config
    if not config.link_min_seconds <= body.expiresIn <= config.link_max_seconds:
        raise InvalidLifetime(
            f"expiresIn must be between {config.link_min_seconds} and {config.link_max_seconds} seconds"
        )
    height = body.variant.height if body.variant else None
    fmt = (body.variant.format if body.variant else None) or body.format
    db = services().db
    with db.transaction() as conn:
        image = access.owned_image(conn, image_id, owner)
        problem = allowed(queries.user_plan(conn, owner), height)
        if problem:
            raise PlanForbids(problem)
    if height is not None or fmt is not None:
        wanted = link_transform(image, height, fmt)
        get_or_create_variant(
            bytes(image["object_digest"]).hex(), image["content_type"], wanted, off_grid=off_grid(wanted)
        )
    with db.transaction() as conn:
        access.owned_image(conn, image_id, owner)  # still there, still the caller's
        nonce = secrets.token_bytes(16)
        return link_queries.insert_link(conn, token_hash(token_of(nonce)), nonce, image_id, height, fmt, body.expiresIn)


def image_links(owner: int, image_id: int) -> list[dict]:
    with services().db.transaction() as conn:
        access.owned_image(conn, image_id, owner)
        return link_queries.live_links(conn, [image_id])


def revoke_link(owner: int, image_id: int, link_id: int) -> None:
    with services().db.transaction() as conn:
        access.owned_image(conn, image_id, owner)
        if not link_queries.revoke(conn, image_id, link_id):
            raise LinkNotFound()


def open_link(token: str):
    """The live link for `token` and its image row; LinkNotFound for anything else."""
    if not 0 < len(token) <= _MAX_TOKEN_CHARS or not token.isascii():
        raise LinkNotFound()
    wanted = token_hash(token)
    with services().db.transaction() as conn:
        link = link_queries.resolve(conn, wanted)
        # Found by its hash; the token must also be the one this server's key makes from the
        # link's nonce (compared in constant time), so rotating the secret ends every link.
        if link is None or not hmac.compare_digest(token_of(bytes(link["nonce"])).encode(), token.encode()):
            raise LinkNotFound()
        image = find_image(conn, link["image_id"])
    if image is None:
        raise LinkNotFound()
    return link, image


def prune_links(db) -> int:
    """Delete expired and revoked links (the collector's sweep: runs outside any request)."""
    with db.transaction() as conn:
        return link_queries.prune(conn)


def served_row(link, image):
    """The row content_response serves for a link: the image itself, or its variant (made when
    the link was; made again, without the request limits, should it be missing)."""
    if link["height"] is None and link["format"] is None:
        return image
    wanted = link_transform(image, link["height"], link["format"])
    return variant_row(
        image, variant_for(bytes(image["object_digest"]).hex(), image["content_type"], wanted, made_by="worker")
    )
