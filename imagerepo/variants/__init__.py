"""Image variants: thumbnails and format conversions of stored images (issue 12).

transform: the request model, its normal form, key and limits (pure).
pipeline:  a variant's bytes from a source image with libvips (dicom: pydicom previews).
source:    a stored object as a seekable file for the pipeline (verified chunks, one at a time).
queries:   the SQL on the `variants` table (migrations/007_variants.sql).
service:   find or make-once-and-store a variant (`variant_for`, `get_or_create_variant`).
images:    variants as the image API asks for and lists them (who may use which sizes, URLs).
jobs:      the background job: enqueued by an upload, run by imagerepo/worker.py.
errors:    the domain errors the API maps to 404 / 415 / 422 / 429.

Background jobs (design, verified with procrastinate 3.10.0 on PostgreSQL 15 at 127.0.0.1:5432
and on the embedded PostgreSQL 18, psycopg 3.3.9, our own ConnectionPool):

* Enqueue in the upload's transaction. procrastinate's public API does it:
  `task.configure(connection=conn).defer(**args)` runs the job INSERT (its SQL function
  `procrastinate_defer_jobs_v1`) on the connection it is given, inside our open transaction
  (a pooled, autocommit, dict_row connection inside `db.transaction()` works as is). Verified:
  one committed upload left exactly one `todo` job; an upload that raised after deferring left
  none. The job's NOTIFY is sent at commit, so a listening worker starts it within ~20 ms.
* Two procrastinate Apps, one function. The web side defers through an App on a
  `SyncPsycopgConnector` that is never opened: `defer` without `connection=` then fails
  (`AppNotOpen`), so no job can be enqueued outside a transaction by mistake. The worker runs
  an App on the async `PsycopgConnector` (its own small pool plus one LISTEN connection). The
  task function is registered on each App under the same name. Why not one App: once the async
  connector is open in a process (the dev server's in-process worker), `defer(connection=<sync
  psycopg connection>)` fails with "TypeError: 'Cursor' object does not support the asynchronous
  context manager protocol" (verified); `App.with_connector` avoids it but is deprecated.
* Schema: `procrastinate schema --read` (its 3.10.0 schema.sql) saved verbatim as
  migrations/008_procrastinate.sql, applied by our runner like any migration: verified that the whole
  file applies in one transaction (tables procrastinate_jobs, _events, _workers,
  _periodic_defers, types, functions, NOTIFY triggers). Upgrades add procrastinate's own files
  from `procrastinate schema --migrations-path` as new NNN files; reset.sql's DROP SCHEMA
  public CASCADE already removes all of it.
* Worker: `python -m imagerepo worker` runs `run_worker(queues=["variants"])` (sync tasks run in
  threads, so libvips never blocks the event loop). The dev server runs the same worker in a
  daemon thread with its own event loop (`run_worker_async(install_signal_handlers=False)`);
  cancelling that asyncio task stops it cleanly (verified), which is how the server's shutdown
  stops it. Jobs are enqueued only when an upload created a new object (a duplicate upload's
  variants exist or are queued already) and are idempotent (a variant is looked up before it is made, under a lock), so a job run
  twice or racing an on-demand request makes nothing twice.
"""
