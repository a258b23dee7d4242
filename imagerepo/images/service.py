"""What can be done to an image, as functions the routes (and seed-demo) call: create one from
staged bytes, change it, replace its tags, delete it.

Each runs in one transaction and returns image rows with their tags. Who may do what is
decided by imagerepo.access; the HTTP answer is shaped by the routes.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Sequence

from .. import access, imagetypes
from ..blobstore import StagedObject
from ..context import services
from ..plans import link_queries, usage
from ..tags import queries as tag_queries
from ..variants import jobs as variant_jobs
from . import queries

_MAX_NAME = 255


def display_name(raw: str | None) -> str:
    """A file name fit to show and to put in a header: no directories, no control characters."""
    name = unicodedata.normalize("NFC", raw or "")
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if name in ("", ".", ".."):
        name = "image"
    return name[:_MAX_NAME]


def with_tags(conn, row):
    return tag_queries.attach_tags(conn, [row])[0]


def tagged(row):
    """`row` with its tags, read on a connection of its own."""
    with services().db.read() as conn:
        return with_tags(conn, row)


def create_image(
    owner_id: int,
    staged: StagedObject,
    filename: str | None,
    description: str,
    is_private: bool,
    access_key: str | None,
    tags: Sequence[str] = (),
):
    """Store the staged bytes as a new image of `owner_id`; `tags` are normalised names."""
    kind = imagetypes.sniff(staged.head, staged.reader)
    if is_private and not access_key:
        access_key = secrets.token_urlsafe(24)
    svc = services()
    with svc.db.transaction() as conn:
        usage.precheck(conn, owner_id, staged.size)  # refused before any chunk is committed
        stored = svc.blobs.commit(conn, staged)
        if stored.created:  # same bytes stored before: their variants exist or are queued
            variant_jobs.enqueue(conn, staged.digest, kind.content_type)
        image_id = queries.insert_image(
            conn,
            owner_id,
            staged.digest,
            display_name(filename),
            kind.content_type,
            kind.width,
            kind.height,
            description,
            is_private,
            access_key,
        )
        usage.charge(conn, owner_id, staged.size)  # last: the account's row is locked until commit
        if tags:
            tag_queries.set_image_tags(conn, image_id, list(tags))
        return with_tags(conn, queries.find_image(conn, image_id))


def update_image(image_id: int, owner: int, changes: dict):
    with services().db.transaction() as conn:
        row = access.owned_image(conn, image_id, owner)
        description = changes.get("description", row["description"])
        is_private = changes.get("isPrivate", row["is_private"])
        access_key = changes.get("accessKey") or row["access_key"]
        if is_private and not access_key:
            access_key = secrets.token_urlsafe(24)
        queries.update_image(conn, image_id, description, is_private, access_key)
        if is_private and not row["is_private"]:
            link_queries.end_links_of_image(conn, image_id)  # making it private ends its share links
        return with_tags(conn, queries.find_image(conn, image_id))


def replace_tags(image_id: int, owner: int, names: list[str]):
    with services().db.transaction() as conn:
        access.owned_image(conn, image_id, owner)
        tag_queries.set_image_tags(conn, image_id, names)
        queries.touch_image(conn, image_id)
        return with_tags(conn, queries.find_image(conn, image_id))


def delete_image(image_id: int, owner: int) -> None:
    svc = services()
    with svc.db.transaction() as conn:
        row = access.owned_image(conn, image_id, owner)
        queries.delete_image(conn, image_id)
        svc.blobs.release(conn, bytes(row["object_digest"]).hex())
        usage.refund(conn, owner, row["size"])
