"""The variant phase over HTTP, against the real service under gunicorn (bench/variants.py runs it).

On the same source images as the in-process phase:

  * first request of a new 500 px variant, one at a time: the server's CPU per variant (user +
    system of gunicorn's master and workers, from psutil, around each request; PostgreSQL's own
    CPU is not in it) and wall time; to the in-process pyvips figure it is the service's overhead
    (the issue's target: within 30%);
  * the same at c=4 (four clients, each asking for new variants): requests/s;
  * peak RSS growth of the server (RssSampler) while it makes those variants;
  * a cached variant: GET of a variant that exists, c=4 for a few seconds, beside GET of an
    original of the same bytes (the variant uploaded as an image: same object), requests/s.

Every request needs a variant that does not exist yet, so each source is uploaded as many
copies, made distinct by a comment (a JPEG COM segment, a PNG tEXt chunk) that no variant keeps.
"""

from __future__ import annotations

import statistics
import struct
import threading
import time
import zlib
from pathlib import Path

import psutil

from bench import clients
from bench.servers import JWT_SECRET, Gunicorn, RssSampler, database, log

CONCURRENCY = 4
CACHED_SECONDS = 2.0
ROUNDS = 3


def distinct_copy(data: bytes, source_type: str, n: int) -> bytes:
    """The same image with a comment naming `n`: other bytes, the same pixels."""
    text = f"bench copy {n}".encode()
    if source_type == "image/jpeg":
        return data[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + data[2:]
    chunk = b"tEXt" + b"Comment\x00" + text
    packed = struct.pack(">I", len(chunk) - 4) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return data[:33] + packed + data[33:]  # after the signature (8) and IHDR (25)


def _server_cpu(server: Gunicorn) -> float:
    total = 0.0
    for pid in server.pids():
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def _token(url: str) -> str:
    client = clients.Client(url)
    client.json("POST", "/register", {"name": "bench_v", "email": "v@example.com", "password": "benchmark pw"}, 201)
    token = client.json("POST", "/login", {"username": "bench_v", "password": "benchmark pw"})["access_token"]
    client.close()
    return token


def _first_requests(server: Gunicorn, ids: list[int]) -> dict:
    """CPU is the total over all requests / their number: psutil's CPU times tick every 10 ms,
    too coarse to time one small variant."""
    client = clients.Client(server.url)
    wall = []
    c0 = _server_cpu(server)
    for image_id in ids:
        w0 = time.perf_counter()
        client.request("GET", f"/images/{image_id}/content?width=500")
        wall.append((time.perf_counter() - w0) * 1000)
    cpu_ms = (_server_cpu(server) - c0) * 1000 / len(ids)
    client.close()
    return {"cpu_ms": cpu_ms, "wall_ms": statistics.median(wall), "requests": len(ids)}


def _parallel(url: str, paths: list[list[str]], seconds: float | None = None) -> float:
    """Requests/s of CONCURRENCY clients, each walking its own list (once, or round and round
    for `seconds`)."""
    done = [0] * len(paths)

    def run(index: int) -> None:
        client = clients.Client(url)
        deadline = time.perf_counter() + seconds if seconds else None
        position = 0
        while True:
            if deadline is None and position == len(paths[index]):
                break
            if deadline is not None and time.perf_counter() >= deadline:
                break
            client.download(paths[index][position % len(paths[index])])
            position += 1
            done[index] += 1
        client.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(paths))]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.perf_counter() - start)


def measure(sources: list[tuple[str, str, Path]], runs: dict[str, int], workdir: Path) -> dict:
    figures: dict[str, dict] = {}
    with database() as database_url:
        env = {
            "DATABASE_URL": database_url,
            "IMAGEREPO_ENV": "production",
            "IMAGEREPO_JWT_SECRET": JWT_SECRET,
            "IMAGEREPO_BLOB_DIR": str(workdir / "blobs"),
            "IMAGEREPO_WORKERS": "2",
            "IMAGEREPO_THREADS": "4",
            "IMAGEREPO_GC_INTERVAL_SECONDS": "0",
            "IMAGEREPO_MAX_UPLOAD_BYTES": str(256 * 1024 * 1024),
        }
        with Gunicorn("imagerepo:create_app()", env, workdir / "server.log") as server:
            uploader = clients.Client(server.url, _token(server.url))
            for name, source_type, path in sources:
                data = path.read_bytes()
                count = runs[name] + CONCURRENCY * max(2, runs[name] // 2)
                log(f"{name}: uploading {count} distinct copies")
                ids = [
                    uploader.upload_raw(distinct_copy(data, source_type, n), f"{name}.img")["id"] for n in range(count)
                ]
                sequential, parallel = ids[: runs[name]], ids[runs[name] :]
                log(f"{name}: {len(sequential)} first requests one at a time, {len(parallel)} at c={CONCURRENCY}")
                with RssSampler(server) as rss:
                    entry = _first_requests(server, sequential)
                    lists = [
                        [f"/images/{i}/content?width=500" for i in parallel[k::CONCURRENCY]] for k in range(CONCURRENCY)
                    ]
                    entry["first_rps_c4"] = _parallel(server.url, lists)
                entry["rss_growth_MiB"] = rss.growth / 2**20
                _, _, variant = uploader.request("GET", f"/images/{sequential[0]}/content?width=500")
                same_bytes = uploader.upload_raw(variant, f"{name}-as-original.jpg")["id"]
                log(f"{name}: cached variant vs original of the same {len(variant)} bytes, c={CONCURRENCY}")
                cached = [[f"/images/{sequential[0]}/content?width=500"]] * CONCURRENCY
                original = [[f"/images/{same_bytes}/content"]] * CONCURRENCY
                # Alternating rounds, medians: the machine's load drifts (other work on the cores).
                rounds = [
                    (_parallel(server.url, cached, CACHED_SECONDS), _parallel(server.url, original, CACHED_SECONDS))
                    for _ in range(ROUNDS)
                ]
                entry["cached_rps_c4"] = statistics.median(r[0] for r in rounds)
                entry["original_rps_c4"] = statistics.median(r[1] for r in rounds)
                entry["cached_vs_original"] = statistics.median(r[0] / r[1] for r in rounds)
                entry["variant_bytes"] = len(variant)
                figures[name] = entry
            uploader.close()
    return figures


def table(figures: dict, in_process: dict) -> str:
    lines = [
        f"over HTTP (gunicorn 2 workers x 4 threads): first request of a new 500 px variant, c=1 and c={CONCURRENCY};"
        " a cached one beside the original of the same bytes",
        f"{'source':<16} | {'server CPU ms':>13} {'vs pyvips':>9} {'wall ms':>8} {'new/s c4':>8} {'RSS MiB':>8}"
        f" | {'cached/s':>8} {'original/s':>10} {'ratio':>6}",
    ]
    for name, entry in figures.items():
        ratio = entry["cpu_ms"] / in_process[name]["pyvips"]["cpu_ms"]
        lines.append(
            f"{name:<16} | {entry['cpu_ms']:>13.1f} {ratio:>8.2f}x {entry['wall_ms']:>8.1f}"
            f" {entry['first_rps_c4']:>8.1f} {entry['rss_growth_MiB']:>8.1f}"
            f" | {entry['cached_rps_c4']:>8.0f} {entry['original_rps_c4']:>10.0f} {entry['cached_vs_original']:>6.2f}"
        )
    return "\n".join(lines)
