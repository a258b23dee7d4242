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

# Metrics (imagerepo/metrics.py): every worker writes its values to files in one directory, so a
# scrape of any worker covers them all. A fresh directory per run unless the operator (or
# `imagerepo serve`) names one; set here, before any worker imports prometheus_client.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    import tempfile

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="imagerepo-metrics-")
    os.environ["IMAGEREPO_METRICS_DIR_OWNED"] = str(os.getpid())


def on_starting(server):
    # A directory given by the operator may hold the files of an earlier run: counters would
    # start from that run's totals and its dead workers' gauges would count as live.
    import glob

    for leftover in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(leftover)


def child_exit(server, worker):
    # The worker's live gauges (cache size, pool) leave the sum; its counters stay in the totals.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if os.environ.get("IMAGEREPO_METRICS_DIR_OWNED") == str(os.getpid()):
        import shutil

        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
