# The app under gunicorn, installed from its wheel with the runtime dependencies only (no
# tests, no client, no embedded PostgreSQL); docker-compose.yml puts nginx and PostgreSQL
# around it.

# Build the wheel.
FROM python:3.11-slim AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN pip install uv==0.13.8
COPY pyproject.toml README.md ./
COPY imagerepo/ imagerepo/
RUN uv build --wheel --out-dir /dist

FROM python:3.11-slim

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
    && mkdir -p /data/blobs && chown -R imagerepo:imagerepo /data
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
