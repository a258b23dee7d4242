"""The framework ceiling: the least a Flask app under the same gunicorn settings can do to
answer a content GET, i.e. return the same bytes from memory. ImageRepo's small-GET figures
are read against this."""

import os

from flask import Flask, Response

app = Flask(__name__)
_BODY = os.urandom(int(os.environ.get("BENCH_CEILING_BYTES", 100 * 1024)))


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.get("/content")
def content():
    return Response(_BODY, mimetype="image/png")
