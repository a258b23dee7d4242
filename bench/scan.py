"""Scan resistance (issue 16), on a fresh server per run with the production settings:

- RSS growth (master + workers) over a 150 MB upload plus two downloads of it at once;
- the chunk-cache hit rate of a hot set of 100 small images, read by 4 keep-alive clients,
  while two 150 MB objects stream, each downloaded twice, two downloads at a time. The hit rate
  is hits / (hits + misses) summed over every worker's /metrics (a chunk of an object over the
  cache's size gate counts as bypassed, not as a miss, so only the hot set is in it).
"""

from __future__ import annotations

import concurrent.futures
import random
import re
import threading
from pathlib import Path

from bench import clients
from bench.servers import Gunicorn, RssSampler, log

MiB = 1024 * 1024
METRICS_TOKEN = "bench-metrics-" + "m" * 32
HOT_READERS = 4


def measure(bench, database_url: str, blob_dir: Path, stored: dict) -> None:
    plan = bench.plan
    big_size = plan.sizes["large"]
    stored_id, _ = stored["large"]
    extra = {"IMAGEREPO_METRICS_TOKEN": METRICS_TOKEN}
    if plan.scan_cache_bytes:
        extra["IMAGEREPO_CACHE_BYTES"] = plan.scan_cache_bytes
    env = bench.server_env(database_url, blob_dir, **extra)
    hot_paths: list[str] = []
    for run in range(plan.runs):
        with Gunicorn("imagerepo:create_app()", env, bench.workdir / "server-scan.log") as server:
            token = _login(server.url)
            owner = clients.Client(server.url, token)
            if not hot_paths:  # distinct one-chunk images (the size is in the PNG header)
                for i in range(plan.hot_images):
                    image = owner.upload_multipart(bench.factory.make(plan.small_get_bytes + i * 1024), f"hot{i}.png")
                    hot_paths.append(image["url"])
            data = bench.payload(big_size)
            with RssSampler(server) as sampler:
                image = owner.upload_raw(data)
                path = image["url"]
                with concurrent.futures.ThreadPoolExecutor(2) as pool:
                    sizes = list(pool.map(_download, [server.url] * 2, [path] * 2))
            owner.close()
            if sizes != [big_size, big_size]:
                raise RuntimeError(f"downloads of the {big_size}-byte image returned {sizes}")
            bench.figures.add("rss_growth_scan_MiB", sampler.growth / MiB, "MiB")
            del data
            stored_path = f"/images/{stored_id}/content"
            rate, reads = _hot_hit_rate(server, token, hot_paths, [path, stored_path], big_size)
            bench.figures.add("scan_hot_hit_rate_pct", rate * 100, "%")
            log(
                f"scan run {run + 1}: RSS +{sampler.growth / MiB:.1f} MiB over a {big_size / 1e6:g} MB upload"
                f" and two downloads; hot set {rate:.1%} hits over {reads} reads while big objects streamed"
            )


def _login(url: str) -> str:
    client = clients.Client(url)
    tokens = client.json("POST", "/login", {"username": "bench_alice", "password": "benchmark password"})
    client.close()
    return tokens["access_token"]


def _download(url: str, path: str, times: int = 1) -> int:
    client = clients.Client(url)
    try:
        return sum(client.download(path) for _ in range(times)) // times
    finally:
        client.close()


def _hot_hit_rate(server: Gunicorn, token: str, hot: list[str], big: list[str], big_size: int) -> tuple[float, int]:
    readers = [clients.Client(server.url, token) for _ in range(HOT_READERS)]
    for reader in readers:  # each connection stays on one worker: warm it there (twice: protected)
        for _ in range(2):
            for path in hot:
                reader.request("GET", path)
    before = cache_counters(server)
    done = threading.Event()

    def read_hot(reader: clients.Client, seed: int) -> int:
        rng, count = random.Random(seed), 0
        while not done.is_set() or count < len(hot):  # at least one pass each
            reader.request("GET", rng.choice(hot))
            count += 1
        return count

    with concurrent.futures.ThreadPoolExecutor(HOT_READERS + len(big)) as pool:
        hot_reads = [pool.submit(read_hot, reader, seed) for seed, reader in enumerate(readers)]
        try:
            sizes = list(pool.map(lambda path: _download(server.url, path, times=2), big))
        finally:
            done.set()
        reads = sum(future.result() for future in hot_reads)
    for reader in readers:
        reader.close()
    if sizes != [big_size] * len(big):
        raise RuntimeError(f"big downloads returned {sizes}")
    after = cache_counters(server)
    hits, misses = after["hits"] - before["hits"], after["misses"] - before["misses"]
    return hits / (hits + misses), reads


def cache_counters(server: Gunicorn) -> dict[str, int]:
    """The chunk-cache counters of every worker: one /metrics scrape covers them all
    (prometheus_client's multiprocess mode, see imagerepo/metrics.py)."""
    client = clients.Client(server.url, METRICS_TOKEN)
    try:
        _, _, text = client.request("GET", "/metrics", headers={"Connection": "close"})
    finally:
        client.close()
    found = dict(re.findall(r"^imagerepo_cache_(\w+)_total ([0-9.e+]+)$", text.decode(), re.MULTILINE))
    return {name: int(float(found[name])) for name in ("hits", "misses", "bypassed")}
