"""The service on S3 against the S3 limit, in the same run on the same server (bench/s3.py).

Uploads: POST /images/raw of a fresh image to the real service (gunicorn, production config,
IMAGEREPO_CHUNK_STORE=s3) beside raw boto3 put_object of the same chunk bytes (to keys of
their own) from as many threads as the service's writer pool uses (8): the fastest those
chunks can go into that server from one process.

Cold downloads: GET /images/<id>/content from a server with no chunk cache (every chunk read
from S3 and verified) beside raw boto3 get_object of the same chunks, one after the other, as
the reader reads them (no read-ahead: README, "Performance"); also from 8 threads, to show
what read-ahead could gain.

Requests per chunk: counted on the client's own botocore events, in process, on the code path
the service runs (stage, commit, cold read, a duplicate upload).

Each run interleaves the service with its limit, so both see the same noise; the ratios are
taken run by run and their median shown, beside the median rates.
"""

from __future__ import annotations

import collections
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from hashlib import sha256
from pathlib import Path

from bench import clients
from bench.payloads import PngFactory
from bench.servers import JWT_SECRET, Gunicorn, database, log

MiB = 1024 * 1024
WRITER_THREADS = 8  # imagerepo/blobstore/writer.py's pool


def cut(data: bytes, chunk_size: int) -> list[tuple[str, bytes]]:
    pieces = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
    return [(sha256(piece).hexdigest(), piece) for piece in pieces]


def measure(store, s3_env: dict, workdir: Path, size: int, runs: int, chunk_size: int) -> dict:
    client = store.client()
    factory = PngFactory(size)
    figures: dict[str, list[float]] = collections.defaultdict(list)
    with database() as database_url:
        env = {
            **s3_env,
            "DATABASE_URL": database_url,
            "IMAGEREPO_ENV": "production",
            "IMAGEREPO_JWT_SECRET": JWT_SECRET,
            "IMAGEREPO_BLOB_DIR": str(workdir / "node"),
            "IMAGEREPO_CHUNK_SIZE": str(chunk_size),
            "IMAGEREPO_MAX_UPLOAD_BYTES": str(size + MiB),
            "IMAGEREPO_WORKERS": "2",
            "IMAGEREPO_THREADS": "8",
            "IMAGEREPO_CACHE_BYTES": "0",  # every download is cold
        }
        with Gunicorn("imagerepo:create_app()", env, workdir / "service.log") as server:
            token = _token(server.url)
            http = clients.Client(server.url, token)
            for run in range(runs):
                data = factory.make(size, run + 1)
                chunks = cut(data, chunk_size)
                raw_prefix = f"{store.prefix}raw-{uuid.uuid4().hex[:8]}/"

                began = time.perf_counter()
                image = http.upload_raw(data)
                figures["upload_MBps"].append(size / (time.perf_counter() - began) / 1e6)
                if image.get("sha256") != sha256(data).hexdigest():
                    raise RuntimeError(f"upload answered {image}")

                def put(chunk, prefix=raw_prefix):
                    client.put_object(Bucket=store.bucket, Key=prefix + chunk[0], Body=chunk[1])

                began = time.perf_counter()
                with ThreadPoolExecutor(WRITER_THREADS) as pool:
                    list(pool.map(put, chunks))
                figures["raw_put_x8_MBps"].append(size / (time.perf_counter() - began) / 1e6)

                began = time.perf_counter()
                got = http.download(f"/images/{image['id']}/content")
                figures["cold_download_MBps"].append(size / (time.perf_counter() - began) / 1e6)
                if got != size:
                    raise RuntimeError(f"downloaded {got} bytes of {size}")

                def get(chunk, prefix=raw_prefix):
                    return client.get_object(Bucket=store.bucket, Key=prefix + chunk[0])["Body"].read()

                began = time.perf_counter()
                for chunk in chunks:
                    get(chunk)
                figures["raw_get_x1_MBps"].append(size / (time.perf_counter() - began) / 1e6)
                began = time.perf_counter()
                with ThreadPoolExecutor(WRITER_THREADS) as pool:
                    list(pool.map(get, chunks))
                figures["raw_get_x8_MBps"].append(size / (time.perf_counter() - began) / 1e6)
                log(
                    f"service run {run + 1}/{runs}: upload {figures['upload_MBps'][-1]:.0f} MB/s"
                    f" (raw PUT x8 {figures['raw_put_x8_MBps'][-1]:.0f}), cold download"
                    f" {figures['cold_download_MBps'][-1]:.0f} MB/s (raw GET {figures['raw_get_x1_MBps'][-1]:.0f},"
                    f" x8 {figures['raw_get_x8_MBps'][-1]:.0f})"
                )
            http.close()
        requests_per_chunk = count_requests(store, database_url, factory.make(size, runs + 1), chunk_size)
    # Ratios run by run (each pair saw the same noise), then their median.
    for ratio, (served, limit) in {
        "upload_vs_raw_put": ("upload_MBps", "raw_put_x8_MBps"),
        "cold_download_vs_raw_get": ("cold_download_MBps", "raw_get_x1_MBps"),
        "cold_download_vs_raw_get_x8": ("cold_download_MBps", "raw_get_x8_MBps"),
    }.items():
        figures[ratio] = [s / lim for s, lim in zip(figures[served], figures[limit], strict=True)]
    result: dict = {name: statistics.median(values) for name, values in figures.items()}
    result["all_runs"] = dict(figures)
    result["requests_per_chunk"] = requests_per_chunk
    result["size_bytes"] = size
    result["runs"] = runs
    return result


def _token(url: str) -> str:
    client = clients.Client(url)
    password = "benchmark password"
    client.json("POST", "/register", {"name": "bench_s3", "email": "s3@example.com", "password": password}, expect=201)
    token = client.json("POST", "/login", {"username": "bench_s3", "password": password})["access_token"]
    client.close()
    return token


def count_requests(store, database_url: str, data: bytes, chunk_size: int) -> dict:
    """S3 requests per chunk on the service's code path: a new upload, a cold read of it, and
    the same bytes uploaded again (deduplicated: a conditional PUT per chunk heals any lost one)."""
    from imagerepo.blobstore import BlobStore
    from imagerepo.blobstore.cache import ChunkCache
    from imagerepo.db import Database

    sent: collections.Counter = collections.Counter()
    store.client().meta.events.register(
        "before-send.s3", lambda request, **kw: sent.update([kw["event_name"].rsplit(".", 1)[-1]])
    )
    db = Database(database_url, 1, 2)
    blobs = BlobStore(db, store, ChunkCache(0), chunk_size)
    chunks = len(cut(data, chunk_size))
    phases = {}
    try:
        for phase in ("new_upload", "cold_read", "duplicate_upload"):
            sent.clear()
            if phase == "cold_read":
                b"".join(blobs.open(sha256(data).hexdigest()))
            else:
                staged = blobs.stager().stage_stream(_Stream(data)).finish()
                try:
                    with db.transaction() as conn:
                        blobs.commit(conn, staged)
                finally:
                    staged.discard()
            phases[phase] = {operation: count / chunks for operation, count in sorted(sent.items())}
    finally:
        db.close()
    return phases


class _Stream:
    def __init__(self, data: bytes):
        self.view, self.at = memoryview(data), 0

    def read(self, size: int) -> bytes:
        piece = bytes(self.view[self.at : self.at + size])
        self.at += len(piece)
        return piece


def table(result: dict) -> str:
    lines = [
        f"The service on S3: {result['size_bytes'] / MiB:.0f} MiB images, median of {result['runs']} runs",
        f"  upload          {result['upload_MBps']:8.1f} MB/s   raw PUT x8 {result['raw_put_x8_MBps']:8.1f} MB/s"
        f"   {100 * result['upload_vs_raw_put']:.0f}%",
        f"  cold download   {result['cold_download_MBps']:8.1f} MB/s   raw GET x1 {result['raw_get_x1_MBps']:8.1f} MB/s"
        f"   {100 * result['cold_download_vs_raw_get']:.0f}%  (raw GET x8 {result['raw_get_x8_MBps']:.1f} MB/s:"
        f" {100 * result['cold_download_vs_raw_get_x8']:.0f}%)",
        "  S3 requests per chunk: "
        + "; ".join(
            f"{phase} " + ", ".join(f"{op} {n:.2f}" for op, n in counts.items())
            for phase, counts in result["requests_per_chunk"].items()
        ),
    ]
    return "\n".join(lines)
