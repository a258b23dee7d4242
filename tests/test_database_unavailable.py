"""When PostgreSQL goes away (a restart, a failover, no free connection), requests are answered
503 `database_unavailable` in the JSON shape with Retry-After, never a bare 500, and the service
recovers by itself once the database is back: the pool replaces its broken connections."""

from __future__ import annotations

import time

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo


def _admin_url(database_url: str) -> str:
    return make_conninfo(database_url, dbname="postgres")


@pytest.fixture
def database_cut_off(config):
    """A function that cuts the test database off (no new connections, existing ones ended),
    and puts it back afterwards whatever happens."""
    name = conninfo_to_dict(config.database_url)["dbname"]
    admin = psycopg.connect(_admin_url(config.database_url), autocommit=True)

    def cut_off() -> None:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )

    try:
        yield cut_off
    finally:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        admin.close()


def test_a_lost_database_is_503_json_then_the_service_recovers(app, database_cut_off):
    client = app.test_client()
    assert client.get("/images").status_code == 200  # the pool holds a live connection now
    database_cut_off()

    response = client.get("/images")
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "database_unavailable"
    assert response.headers["Retry-After"] == "5"
    login = client.post("/login", json={"username": "zoe", "password": "a long passphrase"})
    assert login.status_code == 503 and login.get_json()["error"]["code"] == "database_unavailable"


def test_the_service_answers_again_once_the_database_is_back(app, config, database_cut_off):
    client = app.test_client()
    assert client.get("/images").status_code == 200
    database_cut_off()
    assert client.get("/images").status_code == 503
    name = conninfo_to_dict(config.database_url)["dbname"]
    with psycopg.connect(_admin_url(config.database_url), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
    deadline = time.monotonic() + 20
    status = None
    while time.monotonic() < deadline:
        status = client.get("/images").status_code
        if status == 200:
            break
        assert status == 503
        time.sleep(0.2)
    assert status == 200
