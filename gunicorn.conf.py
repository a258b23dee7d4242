"""Production serving: threaded workers, each with its own connection pool and chunk cache.

IMAGEREPO_ENV=production IMAGEREPO_JWT_SECRET=... DATABASE_URL=... gunicorn 'imagerepo:create_app()'
"""

import multiprocessing
import os

bind = os.environ.get("IMAGEREPO_BIND", "0.0.0.0:5666")
workers = int(os.environ.get("IMAGEREPO_WORKERS", multiprocessing.cpu_count()))
# gthread, with every socket read bounded by IMAGEREPO_READ_TIMEOUT_SECONDS (a stalled client
# cannot hold a thread for longer than that).
worker_class = "imagerepo.serving.ReadTimeoutWorker"
threads = int(os.environ.get("IMAGEREPO_THREADS", 8))
# Uploads and downloads stream for as long as the client needs; keep idle sockets short.
timeout = int(os.environ.get("IMAGEREPO_WORKER_TIMEOUT", 120))
keepalive = 5
# The app (and its pool) is created in each worker after fork, never shared.
preload_app = False
accesslog = "-"
# The access key travels in ?accesskey= for compatibility; keep query strings out of the log.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(L)ss'
