"""`python -m imagerepo seed-demo` as a developer runs it: a subprocess on the same database and
chunk store, progress on stderr; the API then lists what it made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from imagesamples import quick_user

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def seed(config, *args):
    env = {
        **os.environ,
        "DATABASE_URL": config.database_url,
        "IMAGEREPO_BLOB_DIR": str(config.blob_dir),
        "IMAGEREPO_ENV": "test",
        "IMAGEREPO_JWT_SECRET": "seed-test-secret-" + "z" * 40,
        "IMAGEREPO_GC_INTERVAL_SECONDS": "0",
    }
    return subprocess.run(
        [sys.executable, "-m", "imagerepo", "seed-demo", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_seed_demo_fills_the_catalog(config, client, app):
    result = seed(config, "--users", "2", "--images", "12", "--seed", "7")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["users"] == 2 and summary["images"] == 12
    assert "images: 12/12 (100%)" in result.stderr, "progress is shown on stderr"

    viewer = quick_user(app, "viewer")
    public = client.get("/images?limit=100", headers=viewer["headers"]).get_json()["images"]
    assert len(public) == 12 - summary["private"]
    assert {i["contentType"] for i in public} <= {"image/png", "image/jpeg"}
    assert all(i["tags"] for i in public), "every demo image has at least one tag"
    for image in public[:3]:
        assert client.get(image["url"]).status_code == 200
    with app.app_context():
        stats = app.extensions["imagerepo"].blobs.stats()
    assert stats["objects"] == 12 - summary["duplicates"], "repeated files share one stored object"
    tags = client.get("/tags?limit=100", headers=viewer["headers"]).get_json()["tags"]
    assert sum(t["images"] for t in tags) == sum(len(i["tags"]) for i in public)

    again = seed(config, "--users", "2", "--images", "1", "--seed", "8")
    assert again.returncode == 0, again.stderr
    with app.app_context():
        with app.extensions["imagerepo"].db.transaction() as conn:
            assert conn.execute("SELECT count(*) AS n FROM users WHERE name LIKE 'demo%%'").fetchone()["n"] == 2
            assert conn.execute("SELECT count(*) AS n FROM images").fetchone()["n"] == 13


def test_seed_demo_refuses_nonsense_numbers(config):
    result = seed(config, "--users", "0", "--images", "3")
    assert result.returncode == 2 and "--users" in result.stderr
