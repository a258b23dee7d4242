"""ImageRepo: a content-addressed blob store microservice for images."""

__all__ = ["create_app"]


def __getattr__(name):
    # Lazy, so `python -m imagerepo.client` does not pay for importing Flask and psycopg.
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
