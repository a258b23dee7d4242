"""Scan resistance through the real server (gunicorn): a hot set of 100 small images keeps its
chunk-cache hit rate while a 150 MB image streams, read from the server's own /metrics.

The cache is 64 MiB here, so that one 150 MB download is larger than it (as two at once are for
the default 256 MiB): under the LRU this replaced, each 75 MB step of the download evicted the
whole hot set. The downloads advance in steps and are paused (connections open, the server's
threads blocked mid-stream) while the hot set is read, so every lookup counted during a round
is a hot-set read. Memory during 150 MB transfers: tests/test_memory_blobstore.py.
"""

from __future__ import annotations

import hashlib
import re
import time

import requests

from http_helpers import bmp_bytes, bmp_stream, digest_of, signup, upload
from live_server import LiveServer

MiB = 1024 * 1024
WIDTH, HEIGHT = 5000, 10000  # 150 MB of pixels
STEP = 75_000_000  # bytes of a download between two hot rounds: more than the cache holds
METRICS_TOKEN = "scrape-" + "m" * 32


def cache_counters(server: LiveServer) -> dict[str, int]:
    text = requests.get(server.url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=30).text
    found = dict(re.findall(r"^imagerepo_cache_(\w+)_total ([0-9.e+]+)$", text, re.MULTILINE))
    return {name: int(float(value)) for name, value in found.items()}


class PausedDownload:
    """A download read in steps; between steps the client reads nothing, so the server's
    thread blocks in its socket write with the rest of the object unread."""

    def __init__(self, session, url: str, headers: dict):
        self.response = session.get(url, headers=headers, stream=True, timeout=300)
        assert self.response.status_code == 200
        self.pieces = self.response.iter_content(1024 * 1024)
        self.received, self.whole = 0, hashlib.sha256()

    def advance(self, nbytes: int) -> None:
        target = self.received + nbytes
        while self.received < target:
            piece = next(self.pieces, None)
            if piece is None:
                return
            self.whole.update(piece)
            self.received += len(piece)


def test_the_hot_set_keeps_90_percent_hits_while_a_150_mb_image_streams(config):
    env = {
        "IMAGEREPO_CACHE_BYTES": str(64 * MiB),
        "IMAGEREPO_MAX_UPLOAD_BYTES": str(200 * MiB),
        "IMAGEREPO_METRICS_TOKEN": METRICS_TOKEN,
    }
    server = LiveServer(config.database_url, config.blob_dir, workers=1, threads=8, extra_env=env).start()
    try:
        headers = signup(server.url, "scan")
        session = requests.Session()
        hot = []
        for seed in range(100):
            data = bmp_bytes(180, 180, seed=seed)  # 97 KB: one chunk each
            response = upload(session, server.url, headers, f"hot-{seed}.bmp", [data])
            assert response.status_code == 201, response.text
            hot.append((response.json()["url"], data))
        big = upload(session, server.url, headers, "big.bmp", bmp_stream(WIDTH, HEIGHT, seed=99), timeout=300)
        assert big.status_code == 201, big.text[:500]
        big_digest, big_size = digest_of(bmp_stream(WIDTH, HEIGHT, seed=99))

        def hot_round() -> float:
            time.sleep(0.2)  # let paused downloads fill their socket buffers and block
            before = cache_counters(server)
            for url, data in hot:
                response = session.get(server.url + url, headers=headers, timeout=30)
                assert response.status_code == 200 and response.content == data
            after = cache_counters(server)
            hits, misses = after["hits"] - before["hits"], after["misses"] - before["misses"]
            assert hits + misses == len(hot), (before, after)  # only the hot set was looked up
            return hits / len(hot)

        hot_round()  # first reads: misses, on probation
        assert hot_round() == 1.0  # second reads: hits, now protected

        url = server.url + big.json()["url"]
        downloads = [PausedDownload(requests.Session(), url, headers) for _ in range(2)]
        rates = []
        for first, second in ((STEP, 0), (big_size, STEP), (0, big_size)):
            downloads[0].advance(first)
            downloads[1].advance(second)
            rates.append(hot_round())
        for download in downloads:
            download.advance(big_size)
            assert download.received == big_size and download.whole.hexdigest() == big_digest
        counters = cache_counters(server)
        print(f"hot-set hit rate per round while the 150 MB image streamed: {rates}; counters {counters}")
        assert min(rates) >= 0.9, rates
        assert counters["bypassed"] >= 2 * (big_size // (256 * 1024)), "the big image was read past the cache"
    finally:
        server.stop()
