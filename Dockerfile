# The app under gunicorn, installed from its wheel with the runtime dependencies only (no
# tests, no client, no embedded PostgreSQL). Targets: `app` (the default) and `proxy` (the same
# plus nginx, which docker-compose.yml runs in front of the app, as `make serve` does).

# Build the wheel.
FROM python:3.11-slim AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN pip install uv==0.13.8
COPY pyproject.toml README.md ./
COPY imagerepo/ imagerepo/
RUN uv build --wheel --out-dir /dist

FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# The locked runtime dependencies first (hash-checked): this layer is rebuilt only when the
# lock changes, not on every code change.
COPY requirements-runtime.txt .
RUN pip install --require-hashes -r requirements-runtime.txt
COPY --from=wheel /dist/ /tmp/dist/
RUN pip install --no-deps /tmp/dist/*.whl && rm -rf /tmp/dist

COPY gunicorn.conf.py ./

# Not root. /data is the instance directory (IMAGEREPO_HOME); /data/blobs is created and owned
# here so a fresh named volume mounted on it inherits the owner.
RUN useradd --system --uid 10001 --no-create-home --home-dir /app imagerepo \
    && mkdir -p /data/blobs /run/imagerepo && chown -R imagerepo:imagerepo /data /run/imagerepo
USER imagerepo

ENV IMAGEREPO_ENV=production \
    IMAGEREPO_HOME=/data \
    IMAGEREPO_BLOB_DIR=/data/blobs \
    IMAGEREPO_BIND=0.0.0.0:5666
EXPOSE 5666

# The slim image has no curl; the standard library can ask /healthz.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5666/healthz', timeout=4)"]

CMD ["gunicorn", "-c", "gunicorn.conf.py", "imagerepo:create_app()"]

# nginx from Debian, configured by `imagerepo nginx-conf` (the template `make serve` renders).
# Its master runs as root, as in nginx's own images (it opens /dev/stdout for the access log,
# which a non-root process may not reopen); the workers that talk to clients run as nobody.
FROM runtime AS proxy
# hadolint ignore=DL3002
USER root
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends nginx && rm -rf /var/lib/apt/lists/*
# It reads only the address and body-size settings: dev mode spares it the JWT secret (a
# throwaway one is generated under IMAGEREPO_HOME).
ENV IMAGEREPO_ENV=dev IMAGEREPO_HOME=/tmp/imagerepo IMAGEREPO_PUBLIC_HOST=0.0.0.0 IMAGEREPO_PUBLIC_PORT=8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
EXPOSE 8080
CMD ["sh", "-c", "mkdir -p /tmp/nginx && imagerepo nginx-conf --socket /run/imagerepo/gunicorn.sock --runtime /tmp/nginx > /tmp/nginx/nginx.conf && exec nginx -p /tmp/nginx/ -c /tmp/nginx/nginx.conf -e stderr"]

FROM runtime AS app
