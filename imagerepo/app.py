"""The application factory."""

from __future__ import annotations

import functools
import logging

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from . import db as dbmod
from . import request_body
from .config import Config
from .context import Services
from .errors import register_error_handlers


def create_app(config: Config | None = None) -> Flask:
    config = config or Config.from_env()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = Flask(__name__)
    if config.trusted_proxy_hops:
        from .proxy import TrustedProxyFix

        app.wsgi_app = TrustedProxyFix(  # type: ignore[method-assign]  # Flask documents wrapping it
            app.wsgi_app, config.trusted_proxy_hops, config.trusted_proxies
        )
    json_provider = DefaultJSONProvider(app)
    json_provider.sort_keys = False
    app.json = json_provider
    # Every body is read through a checked stream, with a limit per route (small for JSON).
    request_body.install(app, config.max_upload_bytes)

    database = dbmod.Database(dbmod.resolve_url(config), config.db_pool_min, config.db_pool_max)
    dbmod.apply_schema(database.url)

    from . import admin, audit, auth, docs, health, web
    from .blobstore import BlobStore
    from .images import routes as images
    from .images.queries import OBJECT_REFERENCES_SQL
    from .plans import link_routes
    from .plans import links as plan_links
    from .plans import routes as plan_routes
    from .plans import service as plans
    from .tags import routes as tags

    services = Services(config=config, db=database, blobs=BlobStore.for_config(config, database, OBJECT_REFERENCES_SQL))
    app.extensions["imagerepo"] = services

    auth.init_jwt(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(images.bp)
    app.register_blueprint(tags.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(audit.bp)
    app.register_blueprint(admin.bp)
    plans.install(database, config.default_plan)  # shipped plans present, new accounts' default set
    app.register_blueprint(plan_routes.bp)
    app.register_blueprint(link_routes.bp)
    web.init_web(app)  # the gallery, /docs and the browser's cookie session
    audit.init_audit(app)
    register_error_handlers(app)

    @app.after_request
    def _security_headers(response):
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    services.blobs.collector.extra_sweeps.append(functools.partial(plan_links.prune_links, database))
    from .metrics import init_metrics

    init_metrics(app, services)  # outermost: times each request to its answer's last byte
    if config.gc_interval_seconds > 0:
        services.blobs.start_background_collector(config.gc_interval_seconds)
    return app
