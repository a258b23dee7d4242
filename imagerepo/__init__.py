"""ImageRepo: a content-addressed blob store microservice for images.

This package owns the HTTP service (`create_app`), the command line (`python -m imagerepo`) and
the command-line client (imagerepo.client). One sub-package or module per feature: images, tags,
blobstore, client, auth, admin, audit, health; access holds the rules on who sees what, errors
the one mapping from domain errors to HTTP answers (README, "Layout").

Nothing in it may read a server setting outside config.py (the client, a program of its own,
reads its own two), run DDL outside schema/NNN_*.sql, or import in a cycle
(tests/test_import_graph.py).
"""

__all__ = ["create_app"]


def __getattr__(name):
    # Lazy, so `python -m imagerepo.client` does not pay for importing Flask and psycopg.
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
