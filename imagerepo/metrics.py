"""Prometheus metrics: what is counted, how each request is measured, and the scrape.

Under gunicorn, `gunicorn.conf.py` points PROMETHEUS_MULTIPROC_DIR at a fresh directory for
each run; every worker then keeps its values in memory-mapped files there and a scrape, whichever
worker takes it, reads all of them: one /metrics answer covers every worker. Counters of a worker
that exited stay (a total never goes backwards); its gauges go with it (gunicorn's `child_exit`
hook calls `mark_process_dead`). Without the variable (the dev server, one process) the values
live in this process.

Routes are labelled by their endpoint name (`images.content`), never by the raw path, so ids and
junk URLs cannot grow the label set; methods outside the standard ones count as `other`.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY as PROCESS_REGISTRY
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

if TYPE_CHECKING:
    from flask import Flask

    from .context import Services

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
ENDPOINT_KEY = "imagerepo.endpoint"
UPLOAD_ENDPOINTS = frozenset({"images.upload", "images.upload_raw", "images.upload_batch"})

REQUESTS = Counter(
    "imagerepo_http_requests",
    "Requests answered, by route (endpoint name), method and status",
    ["endpoint", "method", "status"],
)
LATENCY = Histogram(
    "imagerepo_http_request_duration_seconds",
    "From the request reaching the app to its last body byte handed to the server, by route",
    ["endpoint", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
UPLOAD_BYTES = Counter("imagerepo_upload_bytes", "Request body bytes read by the upload routes", ["endpoint"])
DOWNLOAD_BYTES = Counter(
    "imagerepo_download_bytes",
    "Image content bytes served: by the app (via=app), or handed to nginx to send (via=nginx, X-Accel-Redirect)",
    ["via"],
)
CACHE = {
    "hits": Counter("imagerepo_cache_hits", "Chunk reads served from the chunk cache"),
    "misses": Counter("imagerepo_cache_misses", "Cacheable chunk reads that went to the store"),
    "bypassed": Counter(
        "imagerepo_cache_bypassed",
        "Chunk reads of objects over the cache's size gate (read from the store, not cached)",
    ),
}
CACHE_BYTES = Gauge(
    "imagerepo_cache_bytes", "Bytes held by the chunk caches (all live workers)", multiprocess_mode="livesum"
)
CACHE_CHUNKS = Gauge(
    "imagerepo_cache_chunks", "Chunks held by the chunk caches (all live workers)", multiprocess_mode="livesum"
)
BLOBSTORE = {
    "objects_created": Counter("imagerepo_objects_created", "Uploads that stored new content"),
    "uploads_deduplicated": Counter("imagerepo_uploads_deduplicated", "Uploads of content already stored"),
    "chunks_written": Counter("imagerepo_chunks_written", "Chunk files written"),
    "chunks_corrupt": Counter("imagerepo_chunks_corrupt", "Chunk reads that failed verification (corrupt reads)"),
    "chunks_healed": Counter("imagerepo_chunks_healed", "Missing chunk files rewritten from an identical upload"),
    "gc_runs": Counter("imagerepo_gc_runs", "Collector runs"),
    "gc_chunks_freed": Counter("imagerepo_gc_chunks_freed", "Chunks freed by the collector"),
}
POOL_SIZE = Gauge(
    "imagerepo_db_pool_size", "Connections open in the pools (all live workers)", multiprocess_mode="livesum"
)
POOL_AVAILABLE = Gauge("imagerepo_db_pool_available", "Idle connections in the pools", multiprocess_mode="livesum")
POOL_WAITING = Gauge(
    "imagerepo_db_pool_waiting", "Requests waiting for a pooled connection", multiprocess_mode="livesum"
)
POOL_MAX = Gauge("imagerepo_db_pool_max", "Largest size of the pools (all live workers)", multiprocess_mode="livesum")
POOL_REQUESTS = Counter("imagerepo_db_pool_requests", "Connections taken from the pools")
POOL_WAIT = Counter("imagerepo_db_pool_wait_seconds", "Time spent waiting for a pooled connection")
POOL_TIMEOUTS = Counter("imagerepo_db_pool_timeouts", "Requests that gave up waiting for a pooled connection")


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render() -> bytes:
    """The scrape: every worker's values under gunicorn, else this process's."""
    path = multiprocess_dir()
    if path is None:
        return generate_latest(PROCESS_REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path)
    return generate_latest(registry)


class Sampler:
    """Copies an app's per-process numbers (the chunk cache's counts, the pool's statistics)
    into the metrics. The cache and the pool keep their own counts cheaply under their own
    locks; their increases are added here at the end of each request and before a scrape,
    so no chunk read pays for a shared-file write."""

    def __init__(self, services: Services):
        self.services = services
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}

    def _add(self, counter: Counter, key: str, now: int) -> None:
        before = self._seen.get(key, 0)
        if now > before:
            counter.inc(now - before)
        self._seen[key] = now

    def _set(self, gauge: Gauge, key: str, now: int) -> None:
        if self._seen.get(key) != now:  # each write is a locked write to a shared file
            gauge.set(now)
            self._seen[key] = now

    def sample(self) -> None:
        with self._lock:
            cache = self.services.blobs.cache
            for name, counter in CACHE.items():
                self._add(counter, name, getattr(cache, name))
            self._set(CACHE_BYTES, "cache_bytes", cache.bytes_used)
            self._set(CACHE_CHUNKS, "cache_chunks", len(cache))
            stats = self.services.db.pool.get_stats()
            for gauge, key in (
                (POOL_SIZE, "pool_size"),
                (POOL_AVAILABLE, "pool_available"),
                (POOL_WAITING, "requests_waiting"),
                (POOL_MAX, "pool_max"),
            ):
                self._set(gauge, key, stats.get(key, 0))
            self._add(POOL_REQUESTS, "requests_num", stats.get("requests_num", 0))
            self._add(POOL_TIMEOUTS, "requests_errors", stats.get("requests_errors", 0))
            wait_ms = stats.get("requests_wait_ms", 0)
            if wait_ms > self._seen.get("requests_wait_ms", 0):
                POOL_WAIT.inc((wait_ms - self._seen.get("requests_wait_ms", 0)) / 1000)
            self._seen["requests_wait_ms"] = wait_ms


class Instrumented:
    """WSGI middleware (outermost): counts and times every request by its endpoint, when its
    answer's body is finished (a download is timed to its last byte), and the bytes it read and
    sent. The endpoint is the rule Flask matched, noted in environ when the request starts."""

    def __init__(self, wsgi_app, sampler: Sampler):
        self.wsgi_app = wsgi_app
        self.sampler = sampler

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        answer: list = []

        def start(status, headers, exc_info=None):
            answer[:] = [status, headers]
            return start_response(status, headers, exc_info)

        try:
            body = self.wsgi_app(environ, start)
        except BaseException:
            self._record(environ, [], started, 0)
            raise
        file_wrapper = environ.get("wsgi.file_wrapper")
        if isinstance(file_wrapper, type) and isinstance(body, file_wrapper):
            # A static file the server may send with sendfile(): left unwrapped, timed to here.
            self._record(environ, answer, started, 0)
            return body
        return _MeasuredBody(body, lambda sent: self._record(environ, answer, started, sent))

    def _record(self, environ, answer: list, started: float, sent: int) -> None:
        status, headers = answer if answer else ("500", [])  # no answer started: it raised
        endpoint = environ.get(ENDPOINT_KEY, "unmatched")
        method = environ.get("REQUEST_METHOD", "")
        method = method if method in METHODS else "other"
        code = status.split(" ", 1)[0]
        REQUESTS.labels(endpoint, method, code).inc()
        LATENCY.labels(endpoint, method).observe(time.perf_counter() - started)
        if endpoint in UPLOAD_ENDPOINTS:
            UPLOAD_BYTES.labels(endpoint).inc(getattr(environ.get("wsgi.input"), "received", 0))
        if code in ("200", "206"):
            names = {name.lower(): value for name, value in headers}
            # Image content is what answers with byte ranges; X-Accel-Redirect hands it to nginx.
            if "x-accel-redirect" in names:
                DOWNLOAD_BYTES.labels("nginx").inc(int(names.get("x-imagerepo-size", 0)))
            elif names.get("accept-ranges") == "bytes":
                DOWNLOAD_BYTES.labels("app").inc(sent)
        self.sampler.sample()


class _MeasuredBody:
    """The answer's body, passed through; counts its bytes and reports when it is closed (WSGI
    servers close the body when the answer is finished or the client went away)."""

    def __init__(self, body, done):
        self._body = body
        self._done = done
        self._sent = 0

    def __iter__(self):
        for piece in self._body:
            self._sent += len(piece)
            yield piece

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._done(self._sent)


def _note_endpoint(sender, **extra) -> None:
    # Sent before any before_request hook runs (one of them may refuse the request).
    from flask import request

    if request.url_rule is not None:
        request.environ[ENDPOINT_KEY] = request.url_rule.endpoint


def init_metrics(app: Flask, services: Services) -> None:
    from flask import request_started

    request_started.connect(_note_endpoint, app)
    sampler = Sampler(services)
    services.blobs.counters.listener = lambda name, amount: BLOBSTORE[name].inc(amount)
    app.extensions["imagerepo.metrics"] = sampler
    app.wsgi_app = Instrumented(app.wsgi_app, sampler)  # type: ignore[method-assign]  # Flask documents wrapping it


def scrape(app: Flask) -> bytes:
    app.extensions["imagerepo.metrics"].sample()
    return render()
