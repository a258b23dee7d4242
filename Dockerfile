# The app under gunicorn; docker-compose.yml pairs it with PostgreSQL.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Dependencies first: this layer is rebuilt only when requirements.txt changes.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY gunicorn.conf.py ./
COPY schema/ schema/
COPY imagerepo/ imagerepo/

# Not root. /data/blobs is created and owned here so a fresh named volume mounted on it
# inherits the owner.
RUN useradd --system --uid 10001 --no-create-home --home-dir /app imagerepo \
    && mkdir -p /data/blobs && chown imagerepo:imagerepo /data/blobs
USER imagerepo

ENV IMAGEREPO_ENV=production \
    IMAGEREPO_BLOB_DIR=/data/blobs \
    IMAGEREPO_BIND=0.0.0.0:5666
EXPOSE 5666

# The slim image has no curl; the standard library can ask /healthz.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5666/healthz', timeout=4)"]

CMD ["gunicorn", "-c", "gunicorn.conf.py", "imagerepo:create_app()"]
