"""Background variants: the job is enqueued in the upload's own transaction, and made by the
worker running inside the dev server (run_dev_server.py) and by `python -m imagerepo worker`
beside the real server (gunicorn): seed 003's thumbnail heights and seed 002's PNG <-> JPEG twin
exist without anyone asking for them, and a request then finds them made."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import requests
import variant_samples as samples
from http_helpers import signup
from live_server import free_port, live_server, wait_until_healthy
from PIL import Image

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SECRET = "jobs-test-secret-" + "z" * 40


def env_for(config, **extra) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": config.database_url,
        "IMAGEREPO_BLOB_DIR": str(config.blob_dir),
        "IMAGEREPO_JWT_SECRET": SECRET,
        "IMAGEREPO_ENV": "test",
        "IMAGEREPO_GC_INTERVAL_SECONDS": "0",
        **extra,
    }


def upload(url: str, headers: dict, data: bytes, name: str) -> dict:
    response = requests.post(url + "/images", headers=headers, files={"file": (name, data)}, timeout=60)
    assert response.status_code == 201, response.text
    return response.json()


def variants_of(database_url: str, digest: str) -> dict[str, str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT transform, made_by FROM variants WHERE source_digest = %s", (bytes.fromhex(digest),)
        ).fetchall()
    return dict(rows)


def wait_for_variants(database_url: str, digest: str, count: int, timeout: float = 60) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        found = variants_of(database_url, digest)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def jobs(database_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT task_name, status::text FROM procrastinate_jobs ORDER BY id").fetchall()


def png_bytes() -> bytes:
    out = io.BytesIO()
    samples.photo(500, 400).save(out, "PNG")
    return out.getvalue()


JPEG_EXPECTED = {
    "w=0,h=200,fit=inside,fmt=jpeg,q=80": "worker",
    "w=0,h=400,fit=inside,fmt=jpeg,q=80": "worker",
    "w=0,h=0,fit=inside,fmt=png,q=0": "worker",
}


def test_job_is_enqueued_with_the_upload_and_only_for_new_content(server, config):
    """No worker here: the job waits in the queue, one per new content, none for a duplicate,
    none for a refused upload; a request is the fallback and makes the variant itself."""
    alice = signup(server.url, "alice")
    data = samples.photo_jpeg(640, 480)
    image = upload(server.url, alice, data, "a.jpg")
    upload(server.url, alice, data, "same.jpg")
    refused = requests.post(server.url + "/images", headers=alice, files={"file": ("x.jpg", b"not an image")})
    assert refused.status_code == 415
    assert jobs(config.database_url) == [("imagerepo.variants.make_background", "todo")]
    assert variants_of(config.database_url, image["sha256"]) == {}
    got = requests.get(f"{server.url}/images/{image['id']}/content?height=200", timeout=60)
    assert got.status_code == 200 and Image.open(io.BytesIO(got.content)).height == 200
    assert variants_of(config.database_url, image["sha256"]) == {"w=0,h=200,fit=inside,fmt=jpeg,q=80": "request"}


def test_imagerepo_worker_makes_background_variants(config, tmp_path):
    log_path = tmp_path / "worker.log"
    with live_server(config.database_url, config.blob_dir) as server:
        alice = signup(server.url, "alice")
        jpeg = upload(server.url, alice, samples.photo_jpeg(800, 600), "photo.jpg")
        png = upload(server.url, alice, png_bytes(), "drawing.png")
        with open(log_path, "wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "imagerepo", "worker", "--concurrency", "2"],
                cwd=PROJECT_ROOT,
                env=env_for(config),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            made = wait_for_variants(config.database_url, jpeg["sha256"], 3)
            assert made == JPEG_EXPECTED, log_path.read_text()[-3000:]
            made_png = wait_for_variants(config.database_url, png["sha256"], 3)
            assert made_png == {
                "w=0,h=200,fit=inside,fmt=png,q=0": "worker",
                "w=0,h=400,fit=inside,fmt=png,q=0": "worker",
                "w=0,h=0,fit=inside,fmt=jpeg,q=80": "worker",
            }
            # a request finds what the worker made (no new row, the same bytes every time)
            twin = requests.get(f"{server.url}/images/{png['id']}/content?format=jpeg", timeout=30)
            assert twin.headers["Content-Type"] == "image/jpeg"
            assert Image.open(io.BytesIO(twin.content)).size == (500, 400)
            assert len(variants_of(config.database_url, png["sha256"])) == 3
            # a new upload while the worker runs is picked up at once (LISTEN/NOTIFY)
            late = upload(server.url, alice, samples.photo_jpeg(300, 300), "late.jpg")
            assert wait_for_variants(config.database_url, late["sha256"], 3, timeout=30) == JPEG_EXPECTED
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(30) == 0, log_path.read_text()[-3000:]
    # finished jobs are removed; none failed
    assert jobs(config.database_url) == []


def test_dev_server_runs_the_worker_in_process(config, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "dev.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "run_dev_server.py", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=env_for(config),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_healthy(server, url, 30, lambda: log_path.read_text()[-3000:])
        alice = signup(url, "alice")
        image = upload(url, alice, samples.photo_jpeg(800, 600), "photo.jpg")
        assert wait_for_variants(config.database_url, image["sha256"], 3) == JPEG_EXPECTED, log_path.read_text()[-3000:]
        listed = requests.get(f"{url}/images/{image['id']}", timeout=30).json()["variants"]
        assert all(v["exists"] for v in listed) and len(listed) == 3
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(15) == 0
    assert jobs(config.database_url) == []
