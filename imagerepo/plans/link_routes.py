"""The share-link routes: the owner makes, lists and revokes links to an image; anyone holding
a link's URL (/s/<token>) gets the bytes, with the same HTTP semantics as /images/<id>/content,
until it expires or is revoked."""

from __future__ import annotations

import math

from flask import Blueprint, Response

from .. import access
from ..images.content import content_response
from ..validation import api
from . import links
from .schemas import LinkIn, LinkOut, LinksOut
from .view import link_out

bp = Blueprint("share_links", __name__)

_OWNER_ERRORS = {403: "Not the owner, or the plan does not give this link", 404: "Absent or not visible to you"}


@bp.post("/images/<int:image_id>/links")
@api(
    body=LinkIn,
    response=LinkOut,
    status=201,
    responses={
        **_OWNER_ERRORS,
        400: "Malformed JSON",
        415: "A variant of an image type that cannot be converted",
        422: "expiresIn out of bounds, an invalid variant, or the image's variant limit is reached",
        429: "Too many off-grid variant sizes of this image lately",
    },
    summary="Make an expiring share link to an image or a thumbnail of it (owner only, plan permitting)",
)
def create_route(image_id: int, body: LinkIn):
    return link_out(links.create_link(access.caller_id(), image_id, body))


@bp.get("/images/<int:image_id>/links")
@api(response=LinksOut, responses=_OWNER_ERRORS, summary="An image's live share links (owner only)")
def list_route(image_id: int):
    return LinksOut(links=[link_out(r) for r in links.image_links(access.caller_id(), image_id)])


@bp.delete("/images/<int:image_id>/links/<int:link_id>")
@api(status=204, responses={**_OWNER_ERRORS, 404: "No such live link"}, summary="Revoke a share link (owner only)")
def delete_route(image_id: int, link_id: int):
    links.revoke_link(access.caller_id(), image_id, link_id)
    return Response(status=204)


@bp.get("/s/<token>")
@api(
    auth=False,
    responses={
        404: "Unknown, forged, expired or revoked link",
        415: "The variant cannot be made from this image",
        416: "Range not satisfiable",
        422: "The variant cannot be made",
    },
    summary="The bytes a share link gives (GET or HEAD; Range, If-None-Match); no token or key needed",
    response_doc={
        "description": "The bytes, as /images/<id>/content answers them; cacheable privately for at most the"
        " link's remaining life",
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
    },
)
def open_route(token: str):
    link, image = links.open_link(token)
    row = links.served_row(link, image)
    response = content_response(row, download=False)
    # No cache may keep it past the link's end: private (no shared cache), and fresh for at
    # most the seconds the link has left.
    response.headers["Cache-Control"] = f"private, max-age={max(0, math.floor(link['seconds_left']))}"
    response.headers["Vary"] = "Accept-Encoding"
    return response
