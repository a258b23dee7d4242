"""Images: the `images` table and the /images routes. (Being built: issue 4.)"""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("images", __name__)

# Every image holds one reference to its object; the blob store's fsck counts them with this.
OBJECT_REFERENCES_SQL = "SELECT object_digest FROM images"
