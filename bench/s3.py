"""python -m bench.s3 [--chunks N] [--threads 1,4,16] [--endpoint URL --bucket NAME] [--json PATH]
                    [--service-size BYTES] [--service-runs N] [--no-service]

The S3 limit: what one client process gets from the object store for 256 KiB chunks, PUT and
GET, sequential and from N threads, measured two ways on the same botocore client:

  raw     plain boto3 put_object / get_object (no checksum header, no condition);
  store   S3ChunkStore.put / get: the same request plus x-amz-checksum-sha256 (verified by the
          server) and If-None-Match: * (one request, 412 when present). `store_reput` PUTs
          chunks that are present already (the server answers 412 before the body is sent).

Then the service itself on the same server (bench/s3_service.py): uploads and cold downloads
through the real gunicorn server beside raw PUT/GET of the same chunks, and S3 requests per
chunk. Every chunk PUT is a new key, every GET reads a chunk of this run once. Without --endpoint a
SeaweedFS (`weed mini`, tests/seaweed.py) is started on loopback for the run; with it,
credentials come from the standard AWS variables. Progress goes to stderr, a table to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from hashlib import sha256
from pathlib import Path

from imagerepo.blobstore.s3 import S3ChunkStore

PROJECT_ROOT = Path(__file__).resolve().parent.parent

MiB = 1024 * 1024


def log(message: str) -> None:
    print(f"[bench.s3 {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.s3", description=__doc__.split("\n\n")[1])
    parser.add_argument("--chunks", type=int, default=256, help="chunks per measure (default 256 = 64 MiB)")
    parser.add_argument("--chunk-size", type=int, default=256 * 1024)
    parser.add_argument("--threads", default="1,4,16", help="thread counts, comma-separated (default 1,4,16)")
    parser.add_argument("--endpoint", help="an S3 endpoint to measure instead of a SeaweedFS started here")
    parser.add_argument("--bucket", help="the bucket at --endpoint")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--service-size", type=int, default=32 * MiB, help="image size for the service measure")
    parser.add_argument("--service-runs", type=int, default=3)
    parser.add_argument("--no-service", action="store_true", help="only the chunk-level limit")
    args = parser.parse_args(argv)
    args.threads = [int(t) for t in args.threads.split(",")]
    if args.endpoint and not args.bucket:
        parser.error("--endpoint needs --bucket")
    return args


def fresh_chunks(count: int, size: int, seed: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    chunks = []
    for _ in range(count):
        data = rng.randbytes(size)
        chunks.append((sha256(data).hexdigest(), data))
    return chunks


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(name: str, threads: int, items: list, call) -> dict:
    """Run `call(item)` for every item on `threads` threads; throughput, latency, client CPU."""
    latencies = []
    done = 0
    last_report = time.monotonic()

    def timed(item):
        began = time.perf_counter()
        call(item)
        latencies.append(time.perf_counter() - began)

    cpu_before, began = cpu_seconds(), time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(timed, items):
            done += 1
            if time.monotonic() - last_report > 2:
                log(f"  {name} x{threads}: {done}/{len(items)}")
                last_report = time.monotonic()
    elapsed = time.perf_counter() - began
    cpu = cpu_seconds() - cpu_before
    latencies.sort()
    return {
        "requests_per_s": len(items) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "client_cpu_ms_per_request": cpu / len(items) * 1000,
    }


def run(store: S3ChunkStore, args) -> dict:
    client = store.client()
    results: dict[str, dict] = {}
    seed = 0
    for threads in args.threads:
        prefix = f"bench-{uuid.uuid4().hex[:8]}/raw/"

        seed += 1
        raw = fresh_chunks(args.chunks, args.chunk_size, seed)
        log(f"raw PUT x{threads}")
        results[f"raw_put_x{threads}"] = measure(
            "raw PUT",
            threads,
            raw,
            lambda c, prefix=prefix: client.put_object(Bucket=store.bucket, Key=prefix + c[0], Body=c[1]),
        )
        log(f"raw GET x{threads}")
        results[f"raw_get_x{threads}"] = measure(
            "raw GET",
            threads,
            raw,
            lambda c, prefix=prefix: client.get_object(Bucket=store.bucket, Key=prefix + c[0])["Body"].read(),
        )

        seed += 1
        chunks = fresh_chunks(args.chunks, args.chunk_size, seed)
        log(f"store PUT x{threads}")
        results[f"store_put_x{threads}"] = measure("store PUT", threads, chunks, lambda c: store.put(*c))
        log(f"store re-PUT (present: 412) x{threads}")
        results[f"store_reput_x{threads}"] = measure("store re-PUT", threads, chunks, lambda c: store.put(*c))
        log(f"store GET x{threads}")
        results[f"store_get_x{threads}"] = measure("store GET", threads, chunks, lambda c: store.get(c[0]))
        for figures in results.values():
            figures.setdefault("MiB_per_s", figures["requests_per_s"] * args.chunk_size / MiB)
    return results


def table(results: dict, chunk_size: int) -> str:
    lines = [
        f"S3 limit, {chunk_size // 1024} KiB chunks, one client process",
        f"{'measure':<20}{'MiB/s':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'client CPU ms/req':>19}",
    ]
    for name, f in results.items():
        lines.append(
            f"{name:<20}{f['MiB_per_s']:>9.1f}{f['requests_per_s']:>9.0f}{f['p50_ms']:>9.1f}"
            f"{f['p99_ms']:>9.1f}{f['client_cpu_ms_per_request']:>19.2f}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    server = None
    local = Path(tempfile.mkdtemp(prefix="bench-s3-"))
    max_connections = max(args.threads) * 2
    if args.endpoint:
        store = S3ChunkStore(
            args.bucket,
            local,
            endpoint_url=args.endpoint,
            region=args.region,
            prefix=f"bench-{uuid.uuid4().hex[:8]}",
            max_connections=max_connections,
        )
        s3_env = {
            "IMAGEREPO_CHUNK_STORE": "s3",
            "IMAGEREPO_S3_ENDPOINT": args.endpoint,
            "IMAGEREPO_S3_BUCKET": args.bucket,
            "IMAGEREPO_S3_PREFIX": store.prefix.rstrip("/"),
            "IMAGEREPO_S3_REGION": args.region,
        }
    else:
        sys.path.insert(0, str(PROJECT_ROOT / "tests"))
        from seaweed import SeaweedServer

        log("starting SeaweedFS (weed mini) on loopback")
        server = SeaweedServer(local / "seaweed").start()
        log(f"SeaweedFS up in {server.start_seconds:.1f} s at {server.endpoint}")
        store = S3ChunkStore(
            server.bucket,
            local,
            endpoint_url=server.endpoint,
            region="us-east-1",
            prefix="bench",
            credentials=(server.access_key, server.secret_key),
            max_connections=max_connections,
        )
        s3_env = server.environment("bench")
    service = None
    try:
        store.ping()
        results = run(store, args)
        if not args.no_service:
            from bench import s3_service

            service = s3_service.measure(store, s3_env, local, args.service_size, args.service_runs, args.chunk_size)
    finally:
        if server is not None:
            log("stopping SeaweedFS")
            server.stop()
        shutil.rmtree(local, ignore_errors=True)
    print(table(results, args.chunk_size))
    if service is not None:
        from bench import s3_service

        print()
        print(s3_service.table(service))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        figures = {"chunk_size": args.chunk_size, "chunks": args.chunks, **results, "service": service}
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
