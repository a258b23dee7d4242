"""`python -m imagerepo …`: database, schema, accounts and chunk-store maintenance."""

from __future__ import annotations

import argparse
import getpass
import json
import shutil
import sys
import time

from . import cli_storage
from . import db as dbmod
from .blobstore.errors import StoreUnavailable
from .config import Config, ConfigError
from .variants.queries import reference_counts
from .worker import add_command as add_worker_command


class ProgressPrinter:
    """One updating line on a terminal, a line every few seconds otherwise (logs, CI). Each
    phase's last count is always shown, however fast the phase went."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()
        self.last = 0.0
        self.phase: str | None = None
        self.unshown: tuple[int, int | None] | None = None  # the phase's latest count, if not printed
        self.open_line = False  # a terminal line is being rewritten in place

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if phase != self.phase:
            self._end_phase()
            self.phase = phase
        final = total is not None and done >= total
        if final or time.monotonic() - self.last >= (0.2 if self.tty else 2.0):
            self._write(phase, done, total)
        else:
            self.unshown = (done, total)

    def finish(self) -> None:
        self._end_phase()

    def _end_phase(self) -> None:
        if self.unshown is not None and self.phase is not None:
            self._write(self.phase, *self.unshown)
        if self.open_line:
            self.stream.write("\n")
            self.open_line = False
        self.stream.flush()

    def _write(self, phase: str, done: int, total: int | None) -> None:
        self.last = time.monotonic()
        self.unshown = None
        text = f"{phase}: {done}" + (f"/{total} ({100 * done // max(total, 1)}%)" if total else "")
        if self.tty:
            self.stream.write("\r" + text.ljust(60))
            self.open_line = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _database(config: Config) -> dbmod.Database:
    database = dbmod.Database(dbmod.resolve_url(config), 1, 4)
    dbmod.apply_schema(database.url)
    return database


def _blobstore(config: Config):
    from .blobstore import BlobStore
    from .images.queries import OBJECT_REFERENCES_SQL

    return BlobStore.for_config(config, _database(config), OBJECT_REFERENCES_SQL)


def cmd_db(args, config: Config) -> int:
    from . import pgembed

    if args.action == "url":
        print(dbmod.resolve_url(config))
    elif args.action == "stop":
        if config.database_url:
            print("DATABASE_URL is set: that server is not ours to stop", file=sys.stderr)
            return 1
        pgembed.stop(config.home, "dev")
        print("embedded PostgreSQL stopped")
    return 0


def reinstall_schema(config: Config, out=sys.stdout) -> None:
    url = dbmod.resolve_url(config)
    print(f"Dropping every table in {_redact(url)} and emptying the chunk store {config.blob_dir} ...", file=out)
    dbmod.drop_everything(url)
    applied = dbmod.apply_schema(url)
    removed = 0
    if config.blob_dir.exists():
        for child in config.blob_dir.iterdir():
            if child.name == ".gitkeep":
                continue
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
            removed += 1
    print(f"Schema reinstalled ({', '.join(applied)}); removed {removed} entries from {config.blob_dir}.", file=out)


def _redact(url: str) -> str:
    import re

    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def cmd_reinstall_schema(args, config: Config) -> int:
    if not args.yes and sys.stdin.isatty():
        answer = input(f"This deletes every user, image and chunk ({config.blob_dir}). Type 'yes': ")
        if answer.strip() != "yes":
            print("aborted")
            return 1
    reinstall_schema(config)
    return 0


def cmd_create_admin(args, config: Config) -> int:
    from .accounts import NameTaken
    from .auth import RegisterIn, create_user

    interactive = sys.stdin.isatty()
    name = args.name or (input("name: ") if interactive else None)
    email = args.email or (input("email: ") if interactive else None)
    password = args.password
    if not password:
        # Like the client's login: asked on a terminal, else the first line of stdin, so a
        # script can pipe it in without it showing in `ps`.
        password = getpass.getpass("password: ") if interactive else sys.stdin.readline().rstrip("\r\n")
    if not (name and email and password):
        print(
            "create-admin needs --name and --email (or a terminal to ask) and a password "
            "(asked on a terminal, or piped on stdin)",
            file=sys.stderr,
        )
        return 2
    try:
        valid = RegisterIn(name=name, email=email, password=password)
    except Exception as err:  # pydantic's ValidationError, shown as the user gave it
        print(f"invalid: {err}", file=sys.stderr)
        return 2
    try:
        user = create_user(_database(config), valid.name, str(valid.email), valid.password, is_admin=True)
    except NameTaken as err:
        print(err, file=sys.stderr)
        return 1
    print(f"admin {user['name']} created (id {user['id']})")
    return 0


def cmd_name_collisions(args, config: Config) -> int:
    from .names import name_collisions

    groups = name_collisions(_database(config))
    print(json.dumps(groups, indent=2))
    if not groups:
        print("name-collisions: none", file=sys.stderr)
        return 0
    print(
        f"name-collisions: {len(groups)} name(s) shared by several accounts; rename-user all but one", file=sys.stderr
    )
    return 1


def cmd_rename_user(args, config: Config) -> int:
    from .names import NameRefused, rename_user

    try:
        user = rename_user(_database(config), args.id, args.name)
    except NameRefused as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"user {user['id']} is now {user['name']}")
    return 0


def cmd_fsck(args, config: Config) -> int:
    blobs = _blobstore(config)
    progress = ProgressPrinter()
    report = blobs.check(verify_content=args.verify_content, repair=args.repair, progress=progress)
    progress.finish()
    print(json.dumps(report.summary(), indent=2))
    if report.clean:
        print("fsck: clean", file=sys.stderr)
        return 0
    if args.repair and not report.data_lost:
        print(f"fsck: repaired {report.repaired} reference counts", file=sys.stderr)
        return 0
    if report.quarantined:
        print(
            f"fsck: moved {len(report.quarantined)} damaged chunk file(s) to quarantine/; they read as missing"
            " until an upload of an image holding them writes them again",
            file=sys.stderr,
        )
    print(f"fsck: {report.problems} problem(s)", file=sys.stderr)
    return 1


def cmd_gc(args, config: Config) -> int:
    blobs = _blobstore(config)
    progress = ProgressPrinter()
    report = blobs.collect_garbage(grace_seconds=args.grace, progress=progress)
    progress.finish()
    print(json.dumps(report.__dict__, indent=2))
    return 0


def cmd_stats(args, config: Config) -> int:
    blobs = _blobstore(config)
    print(json.dumps(reference_counts(blobs.db, blobs.stats()), indent=2))
    return 0


def cmd_seed_demo(args, config: Config) -> int:
    from . import create_app
    from .seed import DEMO_PASSWORD, seed_demo

    if args.users < 1 or args.images < 0:
        print("seed-demo needs --users >= 1 and --images >= 0", file=sys.stderr)
        return 2
    app = create_app(config)
    progress = ProgressPrinter()
    try:
        summary = seed_demo(app, args.users, args.images, seed=args.seed, progress=progress)
    finally:
        progress.finish()
        app.extensions["imagerepo"].blobs.stop_background_collector()
        app.extensions["imagerepo"].db.close()
    print(
        json.dumps(
            {**summary, "logins": [f"demo{n}" for n in range(1, args.users + 1)], "password": DEMO_PASSWORD}, indent=2
        )
    )
    return 0


def cmd_serve(args, config: Config) -> int:
    from .stack import serve

    return serve(config)


def cmd_nginx_conf(args, config: Config) -> int:
    from pathlib import Path

    from .stack import render_nginx_conf

    print(render_nginx_conf(config, Path(args.runtime), Path(args.socket)), end="")
    return 0


def _seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of seconds: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("the grace period cannot be negative")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m imagerepo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("db", help="the embedded PostgreSQL: print its URL (starting it) or stop it")
    p.add_argument("action", choices=["url", "stop"])
    p.set_defaults(func=cmd_db)
    p = sub.add_parser(
        "serve",
        help="nginx in front of gunicorn on IMAGEREPO_PUBLIC_HOST:IMAGEREPO_PUBLIC_PORT (127.0.0.1:8080), "
        "in the foreground",
    )
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("nginx-conf", help="print the nginx configuration `serve` uses, for another setup (compose)")
    p.add_argument("--socket", required=True, help="gunicorn's Unix socket")
    p.add_argument("--runtime", required=True, help="directory for nginx's pid and temporary files")
    p.set_defaults(func=cmd_nginx_conf)
    p = sub.add_parser("reinstall-schema", help="drop and recreate every table, empty the chunk store")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_reinstall_schema)
    p = sub.add_parser("create-admin", help="create an administrator account")
    p.add_argument("--name")
    p.add_argument("--email")
    p.add_argument("--password", help="(default: asked on the terminal, or read from stdin)")
    p.set_defaults(func=cmd_create_admin)
    p = sub.add_parser("name-collisions", help="accounts whose names differ only in case, width or Unicode form")
    p.set_defaults(func=cmd_name_collisions)
    p = sub.add_parser("rename-user", help="give an account a new name (to resolve a name collision)")
    p.add_argument("id", type=int)
    p.add_argument("name")
    p.set_defaults(func=cmd_rename_user)
    p = sub.add_parser("fsck", help="check that every referenced chunk is present and counted right")
    p.add_argument("--verify-content", action="store_true", help="also re-hash every chunk file")
    p.add_argument(
        "--repair", action="store_true", help="fix reference counts, move damaged chunk files aside (never deletes)"
    )
    p.set_defaults(func=cmd_fsck)
    p = sub.add_parser("gc", help="free unreferenced objects, chunks, orphan and staging files now")
    p.add_argument(
        "--grace",
        type=_seconds,
        default=None,
        help="seconds a zero-reference item is kept (default IMAGEREPO_GC_GRACE_SECONDS)",
    )
    p.set_defaults(func=cmd_gc)
    p = sub.add_parser("stats", help="images, objects, chunks, logical and stored bytes, dedup ratio")
    p.set_defaults(func=cmd_stats)
    p = sub.add_parser("seed-demo", help="fill a dev instance with demo users, generated images and tags")
    p.add_argument("--users", type=int, default=3, help="demo accounts demo1..N (existing ones are reused)")
    p.add_argument("--images", type=int, default=200, help="images to generate")
    p.add_argument("--seed", type=int, default=None, help="random seed, for a repeatable demo")
    p.set_defaults(func=cmd_seed_demo)
    add_worker_command(sub)
    from .plans.cli import add_commands  # plans' commands live in their own package

    add_commands(sub, _database)
    cli_storage.register(sub, ProgressPrinter, _database)  # migrate-chunks
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = Config.from_env()
    except ConfigError as err:
        print(f"configuration error: {err}", file=sys.stderr)
        return 2
    import psycopg

    try:
        return args.func(args, config)
    except ConfigError as err:  # e.g. no DATABASE_URL and no embedded PostgreSQL installed
        print(f"configuration error: {err}", file=sys.stderr)
        return 2
    except psycopg.OperationalError as err:
        print(f"cannot reach the database: {str(err).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    except (OSError, StoreUnavailable) as err:  # a disk, or the S3 store, failed
        print(f"error: {err}", file=sys.stderr)
        return 2
