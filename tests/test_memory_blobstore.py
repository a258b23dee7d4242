"""A 150 MB upload and two downloads through the real server: its memory must not grow with the
file (issue 16: less than 50 MiB).

The upload is streamed from a generator and the downloads hashed as they arrive, so the test does
not hold the file either. RSS is summed over the gunicorn master and workers and sampled while
the bytes move. The chunk cache has its default size (256 MiB): a 150 MB object is over its size
gate (1/8 of it), so its chunks are read past the cache, and downloading it twice costs no more
than once. (Before the gate, the first download filled the cache with it: +144 MiB.)
"""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import requests

from http_helpers import bmp_size, bmp_stream, digest_of, signup, upload
from live_server import LiveServer

MiB = 1024 * 1024
WIDTH, HEIGHT = 5000, 10000  # 150 MB of pixels, 50 megapixels
LIMIT = 50 * MiB


class RssSampler:
    def __init__(self, pids: list[int]):
        self.processes = [psutil.Process(pid) for pid in pids]
        self.peak = 0

    def current(self) -> int:
        total = 0
        for process in self.processes:
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            time.sleep(0.05)

    def __enter__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.current())


def download_and_hash(session, url: str, headers: dict, expected_size: int) -> tuple[int, str]:
    received, whole = 0, hashlib.sha256()
    with session.get(url, headers=headers, stream=True, timeout=300) as download:
        assert download.status_code == 200
        assert int(download.headers["Content-Length"]) == expected_size
        for piece in download.iter_content(1024 * 1024):
            whole.update(piece)
            received += len(piece)
    return received, whole.hexdigest()


def test_150_mb_upload_and_two_downloads_keep_server_memory_flat(config):
    env = {"IMAGEREPO_MAX_UPLOAD_BYTES": str(200 * MiB)}
    server = LiveServer(config.database_url, config.blob_dir, workers=1, threads=4, extra_env=env).start()
    try:
        headers = signup(server.url, "memtest")
        session = requests.Session()
        # Warm up (imports, pools, first request paths) so the baseline is the steady state.
        small = b"".join(bmp_stream(64, 64, seed=5))
        warm = upload(session, server.url, headers, "warm.bmp", [small])
        assert warm.status_code == 201, warm.text
        assert session.get(server.url + warm.json()["url"], headers=headers).content == small
        time.sleep(0.5)

        expected_digest, expected_size = digest_of(bmp_stream(WIDTH, HEIGHT, seed=42))
        assert expected_size == bmp_size(WIDTH, HEIGHT) > 150_000_000
        sampler = RssSampler(server.pids())
        baseline = sampler.current()
        with sampler:
            response = upload(session, server.url, headers, "huge.bmp", bmp_stream(WIDTH, HEIGHT, seed=42), timeout=300)
        assert response.status_code == 201, response.text[:500]
        image = response.json()
        assert image["size"] == expected_size and image["sha256"] == expected_digest
        upload_growth = sampler.peak - baseline

        # Two downloads at once, each on its own connection (so two server threads), both hashed.
        url = server.url + image["url"]
        with sampler, ThreadPoolExecutor(2) as pool:
            results = list(
                pool.map(lambda _: download_and_hash(requests.Session(), url, headers, expected_size), (1, 2))
            )
        assert results == [(expected_size, expected_digest)] * 2
        growth = sampler.peak - baseline
        print(
            f"server RSS baseline {baseline / MiB:.0f} MiB, growth after upload"
            f" {upload_growth / MiB:.1f} MiB, after two downloads {growth / MiB:.1f} MiB"
        )
        assert upload_growth < LIMIT, f"upload grew the server by {upload_growth / MiB:.0f} MiB"
        assert growth < LIMIT, f"upload + two downloads grew the server by {growth / MiB:.0f} MiB"
    finally:
        server.stop()
