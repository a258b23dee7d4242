"""The per-app services (config, database, blob store) and how views reach them."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from flask import Flask, current_app

from .config import Config
from .db import Database

if TYPE_CHECKING:
    from .blobstore import BlobStore


@dataclasses.dataclass
class Services:
    config: Config
    db: Database
    blobs: BlobStore


def services(app: Flask | None = None) -> Services:
    return (app or current_app).extensions["imagerepo"]
