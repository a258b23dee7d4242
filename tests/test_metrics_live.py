"""/metrics under the real gunicorn with several workers: one scrape covers every worker
(prometheus_client's multiprocess mode, imagerepo/metrics.py), a worker that dies keeps its
totals, and routes are labelled by endpoint, never by path."""

from __future__ import annotations

import concurrent.futures
import os
import re
import shutil
import signal
import time
from pathlib import Path

import requests
from prometheus_client import CollectorRegistry, multiprocess

from http_helpers import bmp_bytes, signup, upload
from live_server import LiveServer

METRICS_TOKEN = "scrape-" + "w" * 32
SCRAPER = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def scrape(url: str) -> dict[str, float]:
    """One scrape on a fresh connection (whichever worker takes it), as {sample with labels: value}."""
    response = requests.get(url + "/metrics", headers={**SCRAPER, "Connection": "close"}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def uploads_by_worker(metrics_dir: Path, workers: list[int]) -> dict[int, float]:
    """Each worker's own count of new objects, read from its file alone (what a scrape of a
    single worker would have said without multiprocess mode)."""
    counts = {}
    for pid in workers:
        alone = metrics_dir.parent / f"alone-{pid}"
        alone.mkdir(exist_ok=True)
        for path in metrics_dir.glob(f"counter_{pid}.db"):
            shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, str(alone))
        counts[pid] = registry.get_sample_value("imagerepo_objects_created_total") or 0.0
        shutil.rmtree(alone)
    return counts


def test_one_scrape_reports_the_uploads_made_through_every_worker(config, tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {"IMAGEREPO_METRICS_TOKEN": METRICS_TOKEN, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    server = LiveServer(config.database_url, config.blob_dir, workers=3, threads=4, extra_env=env).start()
    try:
        workers = server.pids()[1:]
        assert len(workers) == 3
        headers = signup(server.url, "metrics")

        def one(seed: int) -> None:
            with requests.Session() as session:  # a fresh connection: any worker may take it
                response = upload(session, server.url, headers, f"m-{seed}.bmp", [bmp_bytes(40, 30, seed=seed)])
                assert response.status_code == 201, response.text

        # Concurrent uploads on fresh connections, until every worker has stored some.
        made = 0
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            while made < 400:
                list(pool.map(one, range(made, made + 16)))
                made += 16
                per_worker = uploads_by_worker(metrics_dir, workers)
                if all(per_worker.values()):
                    break
        assert all(per_worker.values()), f"uploads never reached every worker: {per_worker}"
        assert sum(per_worker.values()) == made

        # Every scrape, whichever worker answers it, reports all of them.
        for _ in range(6):
            samples = scrape(server.url)
            assert samples["imagerepo_objects_created_total"] == made
            assert samples['imagerepo_http_requests_total{endpoint="images.upload",method="POST",status="201"}'] == made
            assert samples['imagerepo_upload_bytes_total{endpoint="images.upload"}'] > made * 40 * 30 * 3
            assert (
                samples['imagerepo_http_request_duration_seconds_count{endpoint="images.upload",method="POST"}'] == made
            )
            assert samples["imagerepo_db_pool_size"] >= 3, "one pool per live worker, summed"
        # Labels are endpoint names: no raw path (no image id) ever becomes a label.
        requests.get(server.url + "/images/123456789/content", timeout=10)
        requests.get(server.url + "/no/such/path/xyz", timeout=10)
        samples = scrape(server.url)
        assert not [name for name in samples if "123456789" in name or "xyz" in name]
        assert samples['imagerepo_http_requests_total{endpoint="images.get_content",method="GET",status="404"}'] == 1
        assert samples['imagerepo_http_requests_total{endpoint="unmatched",method="GET",status="404"}'] == 1

        # A worker that dies (and is replaced) keeps its uploads in the totals.
        victim = max(per_worker, key=per_worker.get)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (victim in server.pids() or len(server.pids()) < 4):
            time.sleep(0.1)
        assert victim not in server.pids()
        assert scrape(server.url)["imagerepo_objects_created_total"] == made
        assert not list(metrics_dir.glob(f"gauge_live*_{victim}.db")), "the dead worker's live gauges were dropped"
    finally:
        server.stop()


def test_downloads_and_cache_counts_reach_the_scrape(config, tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {"IMAGEREPO_METRICS_TOKEN": METRICS_TOKEN, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    server = LiveServer(config.database_url, config.blob_dir, workers=2, threads=4, extra_env=env).start()
    try:
        headers = signup(server.url, "downloads")
        data = bmp_bytes(200, 150, seed=7)
        with requests.Session() as session:
            created = upload(session, server.url, headers, "d.bmp", [data])
        assert created.status_code == 201
        url = server.url + created.json()["url"]
        for _ in range(10):
            assert requests.get(url, headers={"Connection": "close"}, timeout=10).content == data
        samples = scrape(server.url)
        assert samples['imagerepo_download_bytes_total{via="app"}'] == 10 * len(data)
        # Each read is one chunk lookup in one worker's cache: a hit or a miss, all counted.
        assert samples["imagerepo_cache_hits_total"] + samples["imagerepo_cache_misses_total"] == 10
        assert samples["imagerepo_cache_bytes"] > 0
        assert (
            samples['imagerepo_http_request_duration_seconds_count{endpoint="images.get_content",method="GET"}'] == 10
        )
    finally:
        server.stop()


def test_the_metrics_directory_gunicorn_makes_is_removed_when_it_stops(config, tmp_path):
    scratch = tmp_path / "tmp"  # where gunicorn.conf.py's mkdtemp puts it
    scratch.mkdir()
    server = LiveServer(
        config.database_url,
        config.blob_dir,
        workers=2,
        threads=2,
        extra_env={"IMAGEREPO_METRICS_TOKEN": METRICS_TOKEN, "TMPDIR": str(scratch)},
    )
    server.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server.start()
    try:
        assert scrape(server.url)["imagerepo_db_pool_size"] >= 2, "both workers' pools, summed"
        made = [p for p in scratch.iterdir() if re.match(r"imagerepo-metrics-", p.name)]
        assert len(made) == 1 and list(made[0].glob("*.db"))
    finally:
        server.stop()
    assert not made[0].exists()


def test_one_process_counts_collector_runs_and_corrupt_reads(app, client, alice, config):
    """The dev server's shape (one process, values in memory): the same metrics, with no
    multiprocess directory."""
    import io

    import psycopg

    with psycopg.connect(config.database_url) as conn:
        conn.execute("UPDATE users SET is_admin = true WHERE name = 'alice'")

    def metrics() -> dict[str, float]:
        response = client.get("/metrics", headers=alice["headers"])
        assert response.status_code == 200
        return {
            name: float(value)
            for name, _, value in (line.rpartition(" ") for line in response.get_data(as_text=True).splitlines())
            if name and not name.startswith("#")
        }

    before = metrics()
    data = bmp_bytes(30, 20, seed=3)
    created = client.post("/images", headers=alice["headers"], data={"file": (io.BytesIO(data), "c.bmp")})
    assert created.status_code == 201
    created.close()  # the test client closes an answer only when told: that is when it is counted
    app.extensions["imagerepo"].blobs.collect_garbage(grace_seconds=0)
    for path in config.blob_dir.rglob("*"):
        if path.is_file() and len(path.name) == 64:
            path.write_bytes(b"not the bytes its name promises")
    with client.get(created.get_json()["url"]) as refused:
        assert refused.status_code == 500
    after = metrics()
    for name in ("imagerepo_gc_runs_total", "imagerepo_chunks_corrupt_total", "imagerepo_objects_created_total"):
        assert after[name] == before.get(name, 0) + 1, name
    key = 'imagerepo_http_requests_total{endpoint="images.get_content",method="GET",status="500"}'
    assert after[key] == before.get(key, 0) + 1
    assert after['imagerepo_upload_bytes_total{endpoint="images.upload"}'] >= before.get(
        'imagerepo_upload_bytes_total{endpoint="images.upload"}', 0
    ) + len(data)
