"""Health, metrics, the OpenAPI document, configuration rules."""

import pytest

from conftest import with_changes
from imagerepo import create_app
from imagerepo.config import Config, ConfigError


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "blobStore": "ok"}


def test_healthz_reports_unwritable_store(client, config):
    import shutil

    shutil.rmtree(config.blob_dir)
    config.blob_dir.write_text("a file where the chunk store should be")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "unhealthy"


def test_metrics_is_prometheus_text_for_admins_and_the_scraper_token(app, client, alice, bob, config):
    import psycopg

    from conftest import assert_error, auth_header

    # Public counters would reveal whether an upload was deduplicated against someone's private image.
    assert_error(client.get("/metrics"), 401)
    assert_error(client.get("/metrics", headers=bob["headers"]), 403)
    with psycopg.connect(config.database_url) as conn:
        conn.execute("UPDATE users SET is_admin = true WHERE name = 'alice'")
    response = client.get("/metrics", headers=alice["headers"])
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert "# TYPE imagerepo_cache_hits_total counter" in text
    assert "imagerepo_db_pool_size" in text

    scraper = create_app(with_changes(config, metrics_token="scrape-" + "s" * 30))
    try:
        scraper_client = scraper.test_client()
        assert scraper_client.get("/metrics", headers=auth_header("scrape-" + "s" * 30)).status_code == 200
        assert_error(scraper_client.get("/metrics", headers=auth_header("wrong")), 401)
    finally:
        scraper.extensions["imagerepo"].db.close()


def test_openapi_lists_routes_with_schemas(client):
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    register = doc["paths"]["/register"]["post"]
    schema_ref = register["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref.endswith("/RegisterIn")
    assert set(doc["components"]["schemas"]["RegisterIn"]["required"]) == {"name", "email", "password"}
    assert "401" in doc["paths"]["/me"]["get"]["responses"]
    assert client.get("/docs").status_code == 200


def test_production_requires_jwt_secret():
    with pytest.raises(ConfigError):
        Config.from_env({"IMAGEREPO_ENV": "production"})
    with pytest.raises(ConfigError):
        Config.from_env({"IMAGEREPO_ENV": "production", "IMAGEREPO_JWT_SECRET": "short"})
    config = Config.from_env({"IMAGEREPO_ENV": "production", "IMAGEREPO_JWT_SECRET": "s" * 40})
    assert config.jwt_secret == "s" * 40


def test_dev_secret_is_generated_and_stable():
    first = Config.from_env({"IMAGEREPO_ENV": "dev"}).jwt_secret
    second = Config.from_env({"IMAGEREPO_ENV": "dev"}).jwt_secret
    assert first == second and len(first) >= 32


@pytest.mark.parametrize(
    "env",
    [
        {"IMAGEREPO_CHUNK_SIZE": "abc"},
        {"IMAGEREPO_CHUNK_SIZE": "10"},
        {"IMAGEREPO_FSYNC": "maybe"},
        {"IMAGEREPO_ENV": "staging"},
    ],
)
def test_bad_settings_are_refused(env):
    with pytest.raises(ConfigError):
        Config.from_env(env)
