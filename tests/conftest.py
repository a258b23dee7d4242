"""Test fixtures: a real PostgreSQL (embedded unless DATABASE_URL is set), a database of this
run's own, a fresh chunk store per test, the Flask app, and the real server over HTTP."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo, sql

from imagerepo import create_app, pgembed
from imagerepo.config import Config, instance_home, pgdata_root
from imagerepo.db import apply_schema

# The browser tests' fixtures (chromium, gallery_server, open_tab), shared by tests/e2e/*.
pytest_plugins = ["e2e.harness"]


@contextlib.contextmanager
def _embedded_test_server(database: str):
    """Several pytest runs may share the embedded test server; the last one out stops it."""
    home = instance_home()
    sessions = pgdata_root(home) / "test.sessions"
    sessions.parent.mkdir(parents=True, exist_ok=True)
    with open(sessions, "a") as marker:
        fcntl.flock(marker, fcntl.LOCK_SH)
        url, _ = pgembed.ensure_running(home, "test", database=database)
        try:
            yield url
        finally:
            fcntl.flock(marker, fcntl.LOCK_UN)
            try:
                fcntl.flock(marker, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # another run still uses it
            # Belt and braces: another run's database still there means it may still be running.
            if not _other_test_databases(url, database):
                pgembed.stop(home, "test")


def _other_test_databases(url: str, own: str) -> list[str]:
    admin = conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'imagerepo\\_test\\_%%' AND datname <> %s", (own,)
            )
        ]


@contextlib.contextmanager
def _external_test_database(server_url: str, database: str):
    admin = conninfo.make_conninfo(server_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        yield conninfo.make_conninfo(server_url, dbname=database)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


def _drop_embedded(url: str, database: str) -> None:
    admin = conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


@pytest.fixture(scope="session")
def database_url():
    database = f"imagerepo_test_{uuid.uuid4().hex[:12]}"
    server_url = os.environ.get("DATABASE_URL")
    if server_url:
        with _external_test_database(server_url, database) as url:
            apply_schema(url)
            yield url
    else:
        with _embedded_test_server(database) as url:
            apply_schema(url)
            try:
                yield url
            finally:
                _drop_embedded(url, database)


def truncate_all(database_url: str) -> None:
    """Empty every table but the migration record."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
            )
        ]
        conn.execute(
            sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                sql.SQL(", ").join(sql.Identifier(t) for t in tables)
            )
        )


@pytest.fixture
def clean_db(database_url):
    truncate_all(database_url)
    return database_url


@pytest.fixture
def config(clean_db, tmp_path: Path) -> Config:
    return Config(
        env="test",
        database_url=clean_db,
        jwt_secret="test-secret-" + "x" * 52,  # 64 bytes: long enough for HS512 too (tests forge those)
        blob_dir=tmp_path / "blobs",
        gc_interval_seconds=0,
        db_pool_max=8,
    )


@pytest.fixture
def app(config):
    application = create_app(config)
    yield application
    # Read audit records are written by a background thread: let it finish, or its late insert
    # can deadlock with the next test's TRUNCATE.
    application.extensions["imagerepo_audit"].flush()
    svc = application.extensions["imagerepo"]
    svc.blobs.stop_background_collector()
    application.extensions["imagerepo_state"].close()  # its listener thread and connection
    svc.db.close()


@pytest.fixture
def blobs(config):
    """A blob store on this test's database and chunk store, with small chunks."""
    from blob_helpers import make_blobs

    store = make_blobs(config)
    yield store
    store.db.close()


@pytest.fixture
def client(app):
    return app.test_client()


def with_changes(config: Config, **changes) -> Config:
    return dataclasses.replace(config, **changes)


def register(client, name="alice", email=None, password="correct horse battery"):
    response = client.post(
        "/register", json={"name": name, "email": email or f"{name}@example.com", "password": password}
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def login(client, name="alice", password="correct horse battery") -> dict:
    response = client.post("/login", json={"username": name, "password": password})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def auth_header(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def alice(client):
    """A registered user and its access token header."""
    user = register(client, "alice")
    tokens = login(client, "alice")
    return {"user": user, "tokens": tokens, "headers": auth_header(tokens["access_token"])}


@pytest.fixture
def bob(client):
    user = register(client, "bob")
    tokens = login(client, "bob")
    return {"user": user, "tokens": tokens, "headers": auth_header(tokens["access_token"])}


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:500])
    body = response.get_json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)
    if code is not None:
        assert body["error"]["code"] == code, body
    return body


@pytest.fixture
def server(config):
    """The real server over HTTP on this test's database and chunk store."""
    from live_server import live_server

    with live_server(config.database_url, config.blob_dir) as running:
        yield running


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    """A real SeaweedFS (S3 gateway) on loopback, started once per run by the first test that
    asks for it. Skipped, saying why, only where `weed` cannot start; under CI that fails."""
    from seaweed import SeaweedServer, SeaweedUnavailable

    server = SeaweedServer(tmp_path_factory.mktemp("seaweed"))
    try:
        server.start()
    except SeaweedUnavailable as err:
        if os.environ.get("CI"):
            pytest.fail(f"SeaweedFS did not start: {err}")
        pytest.skip(f"SeaweedFS cannot start here, S3 tests skipped: {err}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_store(seaweed, tmp_path):
    """An S3 chunk store on the test SeaweedFS, under a key prefix of its own (so every test
    starts from an empty store without a bucket of its own)."""
    from imagerepo.blobstore.s3 import S3ChunkStore

    return S3ChunkStore(
        seaweed.bucket,
        tmp_path / "s3-local",
        endpoint_url=seaweed.endpoint,
        region="us-east-1",
        prefix=f"test-{uuid.uuid4().hex[:12]}",
        credentials=(seaweed.access_key, seaweed.secret_key),
    )


@pytest.fixture(params=["local", "s3"])
def backend_config(request, config, monkeypatch) -> Config:
    """`config` on each chunk backend: files under blob_dir, or the test SeaweedFS under a key
    prefix of its own (credentials through the standard AWS variables, which spawned processes
    and live servers inherit)."""
    if request.param == "local":
        return config
    seaweed = request.getfixturevalue("seaweed")
    env = seaweed.environment(f"test-{uuid.uuid4().hex[:12]}")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, env[name])
    return dataclasses.replace(
        config,
        chunk_store="s3",
        s3_endpoint=env["IMAGEREPO_S3_ENDPOINT"],
        s3_bucket=env["IMAGEREPO_S3_BUCKET"],
        s3_prefix=env["IMAGEREPO_S3_PREFIX"],
        s3_region=env["IMAGEREPO_S3_REGION"],
    )
