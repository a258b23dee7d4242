"""`python -m imagerepo migrate-chunks --to s3|local`: the chunk-store commands that are not in
cli.py (which is at its size limit); `register` adds them to its parser, given cli.py's
progress printer and database opener (so this module does not import cli.py back)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .config import Config


def register(sub, progress_printer, open_database) -> None:
    p = sub.add_parser(
        "migrate-chunks",
        help="copy every chunk of the configured store to another backend and verify it (resumable; "
        "switching is a configuration change once it reports complete)",
    )
    p.add_argument("--to", required=True, choices=["s3", "local"], help="the backend to copy to")
    p.add_argument(
        "--local-dir",
        type=Path,
        default=None,
        help="with --to local: the directory to copy into (default IMAGEREPO_BLOB_DIR)",
    )
    p.add_argument("--jobs", type=int, default=16, help="chunks copied at once (default 16)")
    p.set_defaults(func=cmd_migrate_chunks, progress_printer=progress_printer, open_database=open_database)


def _target(args, config: Config):
    from .blobstore.local import LocalChunkStore

    if args.to == "local":
        directory = (args.local_dir or config.blob_dir).expanduser().resolve()
        return LocalChunkStore(directory, fsync=config.fsync), [
            ("IMAGEREPO_CHUNK_STORE", "local"),
            ("IMAGEREPO_BLOB_DIR", str(directory)),
        ]
    if not config.s3_bucket:
        raise SystemExit("migrate-chunks --to s3 needs IMAGEREPO_S3_BUCKET (and the endpoint, prefix, region)")
    from .blobstore.s3 import S3ChunkStore

    target = S3ChunkStore.for_config(config)
    target.ping()
    settings = [("IMAGEREPO_CHUNK_STORE", "s3"), ("IMAGEREPO_S3_BUCKET", config.s3_bucket)]
    for name, value in [
        ("IMAGEREPO_S3_ENDPOINT", config.s3_endpoint),
        ("IMAGEREPO_S3_PREFIX", config.s3_prefix),
        ("IMAGEREPO_S3_REGION", config.s3_region),
    ]:
        if value:
            settings.append((name, value))
    return target, settings


def _name(store) -> str:
    root = getattr(store, "root", None)
    return f"local files in {root}" if root is not None else repr(store)


def cmd_migrate_chunks(args, config: Config) -> int:
    from .blobstore import chunk_store_for_config
    from .blobstore.s3_migrate import ChunkMigration, describe_switch, summary

    if args.to == config.chunk_store and not (args.to == "local" and args.local_dir):
        print(f"the configured chunk store is already {args.to}; nothing to migrate", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print("--jobs must be at least 1", file=sys.stderr)
        return 2
    source = chunk_store_for_config(config)
    target, settings = _target(args, config)
    print(f"copying chunks from {_name(source)} to {_name(target)}", file=sys.stderr)
    progress = args.progress_printer()
    report = ChunkMigration(args.open_database(config), source, target, jobs=args.jobs).run(progress)
    progress.finish()
    print(json.dumps(summary(report), indent=2))
    if not report.complete:
        print(
            f"migrate-chunks: incomplete ({len(report.missing)} missing, {len(report.corrupt)} corrupt in the source,"
            f" {len(report.bad_copies)} bad copies{', uploads still arriving' if report.still_arriving else ''});"
            " keep the current configuration, fix (fsck) and run again",
            file=sys.stderr,
        )
        return 1
    print(describe_switch(settings), file=sys.stderr)
    return 0
