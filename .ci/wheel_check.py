"""The package as an operator gets it: build the wheel, install it into a fresh venv outside the
checkout with the runtime dependencies only, and use it from another directory.

    .venv/bin/python .ci/wheel_check.py postgresql://postgres@127.0.0.1:5432/postgres

Checks: `imagerepo --help`; `imagerepo reinstall-schema --yes` on a new, empty database;
`gunicorn 'imagerepo:create_app()'` serving a register, login, upload and download; the state
(dev JWT secret, chunk store) in the per-user data directory; without DATABASE_URL, a clear
message that the embedded database is an extra; `imagerepo-client` saying it needs its extra;
and nothing written inside site-packages. Standard library only; exits 1 on the first failure.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import zlib
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent


def step(message: str) -> None:
    print(f"-- {message}", flush=True)


def fail(message: str) -> None:
    print(f"wheel check FAILED: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def run(args, *, expect: int = 0, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)
    if result.returncode != expect:
        fail(
            f"{' '.join(map(str, args))} exited {result.returncode} (expected {expect}):\n{result.stdout}{result.stderr}"
        )
    return result


def png(width: int = 3, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes([40, 90, 200]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def database_commands(admin_url: str):
    """CREATE/DROP DATABASE through psql-free means: the checkout's psycopg (this script runs
    in the checkout's venv)."""
    import psycopg
    from psycopg import conninfo, sql

    name = f"imagerepo_wheel_{uuid.uuid4().hex[:10]}"

    def create() -> str:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return conninfo.make_conninfo(admin_url, dbname=name)

    def tables(url: str) -> set[str]:
        with psycopg.connect(url) as conn:
            return {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    return create, tables, drop


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    admin_url = sys.argv[1]
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="imagerepo-wheel-"))
    create_db, tables_of, drop_db = database_commands(admin_url)
    server = None
    try:
        step("build the wheel")
        # Through the sdist, as a release is built: a stale build/ directory in the checkout
        # (setuptools reuses it) would otherwise put modules deleted since into the wheel.
        run([CHECKOUT / ".venv/bin/uv", "build", "--quiet", "--out-dir", work / "dist", CHECKOUT])
        wheels = list((work / "dist").glob("imagerepo-*.whl"))
        if len(wheels) != 1:
            fail(f"expected one wheel, found {wheels}")
        wheel = wheels[0]

        step(f"fresh venv outside the checkout ({work / 'venv'}): runtime lock, then pip install {wheel.name}")
        run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", work / "venv"])
        venv_python = work / "venv/bin/python"
        # The locked runtime versions (as the Docker image installs them; compiled as pip would, or
        # the first import writes .pyc files into site-packages), then the wheel with pip, which
        # checks its declared dependencies against what is there.
        run(
            [
                CHECKOUT / ".venv/bin/uv",
                "pip",
                "sync",
                "--quiet",
                "--compile-bytecode",
                "--python",
                venv_python,
                "--require-hashes",
            ]
            + [CHECKOUT / "requirements-runtime.txt"]
        )
        run([venv_python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel])
        site = Path(
            run([venv_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
        )
        # Every tracked file of the package (sub-packages, migrations, templates, data), no more.
        tracked = set(run(["git", "-C", CHECKOUT, "ls-files", "imagerepo"]).stdout.split())
        installed = {
            str(p.relative_to(site))
            for p in (site / "imagerepo").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }
        if tracked != installed:
            fail(
                f"the wheel's package differs from the checkout's: missing {sorted(tracked - installed)}, "
                f"extra {sorted(installed - tracked)}"
            )
        if (site / "imagerepo" / "migrations").resolve().is_relative_to(CHECKOUT):
            fail("the installed package points into the checkout")
        before = snapshot(site)

        cwd = work / "elsewhere"
        cwd.mkdir()
        home = work / "home"
        home.mkdir()
        env = {
            "PATH": f"{work / 'venv/bin'}:/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "IMAGEREPO_ENV": "dev",
            "IMAGEREPO_GC_INTERVAL_SECONDS": "0",
        }
        data_home = home / ".local/share/imagerepo"

        step("imagerepo --help")
        helped = run(["imagerepo", "--help"], cwd=cwd, env=env)
        if "reinstall-schema" not in helped.stdout:
            fail(f"imagerepo --help does not list the commands:\n{helped.stdout}")

        step("without DATABASE_URL: the embedded database is an extra, and the command says so")
        missing = run(["imagerepo", "db", "url"], cwd=cwd, env=env, expect=2)
        if "imagerepo[embedded]" not in missing.stderr:
            fail(f"unclear message without the embedded extra: {missing.stderr!r}")

        step("imagerepo-client without its extra says how to get it")
        client = run(["imagerepo-client", "--help"], cwd=cwd, env=env, expect=1)
        if "imagerepo[client]" not in client.stderr:
            fail(f"unclear message without the client extra: {client.stderr!r}")

        step("imagerepo reinstall-schema --yes on an empty database")
        env["DATABASE_URL"] = create_db()
        run(["imagerepo", "reinstall-schema", "--yes"], cwd=cwd, env=env)
        tables = tables_of(env["DATABASE_URL"])
        if not {"users", "images", "chunks", "objects", "schema_migrations"} <= tables:
            fail(f"tables after reinstall-schema: {sorted(tables)}")

        step("gunicorn 'imagerepo:create_app()' serving an upload")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log_path = work / "gunicorn.log"
        with open(log_path, "wb") as log:
            server = subprocess.Popen(
                [
                    "gunicorn",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "1",
                    "--threads",
                    "2",
                    "imagerepo:create_app()",
                ],
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while not _healthy(base):
            if server.poll() is not None or time.monotonic() > deadline:
                fail(f"gunicorn did not become healthy:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        as_json = {"Content-Type": "application/json"}
        account = {"name": "wheel", "email": "wheel@example.com", "password": "correct horse"}
        status, body = http("POST", base + "/register", json.dumps(account).encode(), as_json)
        if status != 201:
            fail(f"register: {status} {body[:300]!r}")
        login = {"username": "wheel", "password": "correct horse"}
        status, body = http("POST", base + "/login", json.dumps(login).encode(), as_json)
        if status != 200:
            fail(f"login: {status} {body[:300]!r}")
        auth = {"Authorization": "Bearer " + json.loads(body)["access_token"]}
        image = png()
        status, body = http("POST", base + "/images/raw?name=wheel.png", image, auth)
        if status != 201:
            fail(f"upload: {status} {body[:300]!r}")
        uploaded = json.loads(body)
        status, content = http("GET", base + uploaded["url"], headers=auth)
        if status != 200 or content != image or uploaded["sha256"] != hashlib.sha256(image).hexdigest():
            fail(f"download: {status}, {len(content)} bytes, {uploaded}")

        step(f"state in the per-user data directory ({data_home}), nothing inside site-packages")
        if not (data_home / ".instance" / "jwt_secret").is_file():
            fail("the dev JWT secret is not in the per-user data directory")
        if not any(p.is_file() for p in (data_home / "blobs").rglob("*")):
            fail("no chunk file in the per-user data directory's blobs/")
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
        server = None
        after = snapshot(site)
        changed = sorted(set(after) ^ set(before) | {k for k in before.keys() & after.keys() if before[k] != after[k]})
        if changed:
            fail(f"files written inside site-packages: {changed[:20]}")
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
        drop_db()
        shutil.rmtree(work, ignore_errors=True)
    print(f"wheel check passed ({time.monotonic() - started:.0f} s)", flush=True)
    return 0


def _healthy(base: str) -> bool:
    try:
        return http("GET", base + "/healthz")[0] == 200
    except OSError:  # not listening yet
        return False


if __name__ == "__main__":
    sys.exit(main())
