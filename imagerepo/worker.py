"""`python -m imagerepo worker`: the background job worker (variants made after upload), and the
same worker run inside the dev server's process so `make run` needs nothing else.

The worker is procrastinate's, on its async psycopg connector (a small pool of its own plus one
LISTEN connection, so a job starts within milliseconds of its upload's commit, with a poll
every few seconds as the fallback). Jobs are synchronous (libvips, blocking SQL) and run on
procrastinate's threads, `--concurrency` at a time; on SIGINT/SIGTERM it stops taking jobs and
finishes the running ones. A job that raises is tried again twice, a minute apart, then marked
failed in procrastinate_jobs and logged; the variants it did not make are then made on their
first request.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING

from . import db as dbmod
from .config import Config
from .context import Services

if TYPE_CHECKING:
    import argparse

    import procrastinate

log = logging.getLogger(__name__)


def worker_services(config: Config) -> Services:
    from .blobstore import BlobStore
    from .images.queries import OBJECT_REFERENCES_SQL

    database = dbmod.Database(dbmod.resolve_url(config), 1, max(2, config.db_pool_max // 2))
    dbmod.apply_schema(database.url)
    return Services(config=config, db=database, blobs=BlobStore.for_config(config, database, OBJECT_REFERENCES_SQL))


def build_app(svc: Services) -> procrastinate.App:
    """A procrastinate App whose task makes a source's background variants with `svc`."""
    import procrastinate

    from .variants import jobs

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=svc.db.url, min_size=1, max_size=4))

    # A job that raises (the database or the chunk store briefly away; a variant a source
    # cannot have is not an error, see jobs.make_background) is tried again twice, a minute apart.
    @app.task(name=jobs.TASK_NAME, queue=jobs.QUEUE, retry=procrastinate.RetryStrategy(max_attempts=3, wait=60))
    def make_background(source_digest: str, source_type: str) -> int:
        return jobs.make_background(svc, source_digest, source_type)

    return app


async def _work(app: procrastinate.App, concurrency: int, install_signal_handlers: bool) -> None:
    from .variants import jobs

    async with app.open_async():
        await app.run_worker_async(
            queues=[jobs.QUEUE],
            concurrency=concurrency,
            install_signal_handlers=install_signal_handlers,
            delete_jobs="successful",  # failed ones stay, for an operator to look at
        )


def cmd_worker(args, config: Config) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    svc = worker_services(config)
    log.info("worker: making background variants, %d at a time", args.concurrency)
    try:
        asyncio.run(_work(build_app(svc), args.concurrency, install_signal_handlers=True))
    finally:
        svc.db.close()
    return 0


def add_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="run the background job worker (variants after upload) until stopped")
    p.add_argument("--concurrency", type=int, default=2, help="jobs run at once (default 2)")
    p.set_defaults(func=cmd_worker)


class InProcessWorker:
    """The worker on a daemon thread with its own event loop, for the dev server."""

    def __init__(self, svc: Services, concurrency: int = 1):
        self.app = build_app(svc)
        self.concurrency = concurrency
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._thread = threading.Thread(target=self._run, name="imagerepo-worker", daemon=True)

    def start(self) -> InProcessWorker:
        self._thread.start()
        return self

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._task = self._loop.create_task(_work(self.app, self.concurrency, install_signal_handlers=False))
        try:
            self._loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("the in-process worker stopped")
        finally:
            self._loop.close()

    def stop(self, timeout: float = 10) -> None:
        if self._loop is not None and self._task is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(timeout)
