"""The per-app services (config, database, blob store) and how views reach them."""

from __future__ import annotations

import dataclasses

from flask import Flask, current_app

from .config import Config
from .db import Database


@dataclasses.dataclass
class Services:
    config: Config
    db: Database
    blobs: object = None  # imagerepo.blobstore.BlobStore, set by create_app


def services(app: Flask | None = None) -> Services:
    return (app or current_app).extensions["imagerepo"]
