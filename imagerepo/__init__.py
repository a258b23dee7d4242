"""ImageRepo: a content-addressed blob store microservice for images."""
from .app import create_app

__all__ = ["create_app"]
