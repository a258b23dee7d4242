"""python -m bench [--quick] [--runs N] [--json PATH] [--profile DIR]

Starts the real service under gunicorn with the production config file on a database of its
own, measures uploads, re-uploads, cold and hot downloads, small-image GETs under load, the
listing at 100,000 images, the servers' memory and the chunk cache's scan resistance, next to
baselines measured in the same run, and prints a table (progress goes to stderr). See README,
"Performance".
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import hashlib
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psutil
import psycopg

from bench import baselines, clients, scan
from bench.payloads import PngFactory
from bench.report import Figures, evaluate_targets, table, write_json
from bench.servers import JWT_SECRET, Gunicorn, Profiler, RssSampler, database, log
from imagerepo.config import Config

PROJECT_ROOT = Path(__file__).resolve().parent.parent

MiB = 1024 * 1024
DEFAULT_JSON = PROJECT_ROOT / "bench" / "results" / "latest.json"


@dataclasses.dataclass(frozen=True)
class Plan:
    sizes: dict[str, int]
    small_get_bytes: int
    runs: int
    load_seconds: float
    concurrency: int
    list_rows: int
    list_samples: int
    hot_images: int  # the hot set of the scan-resistance measure (bench/scan.py)
    scan_cache_bytes: int | None  # its server's IMAGEREPO_CACHE_BYTES (None: the default)


FULL = Plan(
    sizes={"small": 1 * MiB, "medium": 20 * MiB, "large": 150_000_000},
    small_get_bytes=100 * 1024,
    runs=3,
    load_seconds=5,
    concurrency=16,
    list_rows=100_000,
    list_samples=200,
    hot_images=100,
    scan_cache_bytes=None,
)
QUICK = Plan(
    sizes={"small": 64 * 1024, "medium": 512 * 1024, "large": 2 * MiB},
    small_get_bytes=100 * 1024,
    runs=2,
    load_seconds=1,
    concurrency=16,
    list_rows=2_000,
    list_samples=20,
    hot_images=20,
    scan_cache_bytes=8 * MiB,  # its size gate (1 MiB) then keeps the 2 MiB "large" image out
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few runs (a smoke test, not figures)")
    parser.add_argument("--runs", type=int, help="runs per figure (default 3, quick 2)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write the figures ({DEFAULT_JSON})")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record the first run of each phase with py-spy (pip install py-spy) into DIR as"
        " collapsed stacks; the profiled runs are slower, so do not publish those figures",
    )
    parser.add_argument("--workdir", type=Path, help="where the chunk stores go (default: the system temp dir)")
    return parser.parse_args(argv)


def machine() -> dict:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_GiB": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def mbps(nbytes: int, seconds: float) -> float:
    return nbytes / 1e6 / seconds


class Bench:
    def __init__(self, plan: Plan, workdir: Path, profiler: Profiler):
        self.plan = plan
        self.workdir = workdir
        self.profiler = profiler
        self.figures = Figures()
        self.factory = PngFactory(max(plan.sizes.values()))
        self.variant = 0
        self.notes: list[str] = []
        self.load_generator = "none"

    def payload(self, size: int) -> bytes:
        self.variant += 1
        return self.factory.make(size, self.variant)

    def server_env(self, database_url: str, blob_dir: Path, **extra) -> dict:
        return {
            "DATABASE_URL": database_url,
            "IMAGEREPO_ENV": "production",
            "IMAGEREPO_JWT_SECRET": JWT_SECRET,
            "IMAGEREPO_BLOB_DIR": str(blob_dir),
            "IMAGEREPO_WORKERS": str(os.cpu_count() or 2),
            "IMAGEREPO_THREADS": "8",
            "IMAGEREPO_MAX_UPLOAD_BYTES": str(max(self.plan.sizes.values()) + MiB),
            **{k: str(v) for k, v in extra.items()},
        }

    # -- phases -------------------------------------------------------------------------------
    def sha256_baseline(self) -> None:
        data = self.payload(self.plan.sizes["large"])
        for _ in range(self.plan.runs):
            self.figures.add("sha256_MBps", baselines.sha256_rate(data), "MB/s")

    def limits(self, role: str, data: bytes) -> None:
        rate, _, digests, root = baselines.upload_limit(data, self.workdir)
        self.figures.add(f"upload_limit_{role}_MBps", rate, "MB/s")
        self.figures.add(f"download_limit_{role}_MBps", baselines.download_limit(root, digests, len(data)), "MB/s")
        baselines.remove(root)

    def uploads(self, server: Gunicorn, token: str) -> dict[str, tuple[int, bytes]]:
        """Every size through both routes, then the same bytes again (dedup), each run interleaved
        with the upload limit so both see the same noise. Returns role -> (image id, bytes)."""
        stored = {}
        client = clients.Client(server.url, token)
        for run in range(self.plan.runs):
            for role, size in self.plan.sizes.items():
                data = self.payload(size)
                self.limits(role, data)
                for route in ("raw", "multipart"):
                    if route == "multipart":
                        data = self.payload(size)
                    send = client.upload_raw if route == "raw" else client.upload_multipart
                    sampler = RssSampler(server) if role == "large" else contextlib.nullcontext()
                    profile = (
                        self.profiler.phase(f"upload_{route}_large", server)
                        if role == "large" and run == 0
                        else contextlib.nullcontext()
                    )
                    with profile, sampler:
                        start = time.perf_counter()
                        image = send(data)
                        seconds = time.perf_counter() - start
                    _check_image(image, data)
                    self.figures.add(f"upload_{route}_{role}_MBps", mbps(size, seconds), "MB/s")
                    if role == "large":
                        self.figures.add("rss_growth_upload_large_MiB", sampler.growth / MiB, "MiB")
                    start = time.perf_counter()
                    again = send(data)
                    seconds = time.perf_counter() - start
                    _check_image(again, data)
                    self.figures.add(f"reupload_{route}_{role}_MBps", mbps(size, seconds), "MB/s")
                    stored.setdefault(role, (image["id"], data))
                # The limit again after the server's turn: the report pairs each run's server
                # figures with the mean of the limit just before and just after them, since the
                # shared disk's fsync rate drifts within seconds.
                self.limits(role, self.payload(size))
            log(
                f"upload run {run + 1}/{self.plan.runs}: "
                + ", ".join(
                    f"{role} raw {self.figures.data[f'upload_raw_{role}_MBps']['runs'][-1]:.0f}"
                    f" / multipart {self.figures.data[f'upload_multipart_{role}_MBps']['runs'][-1]:.0f}"
                    f" / limit {self.figures.data[f'upload_limit_{role}_MBps']['runs'][-1]:.0f} MB/s"
                    for role in self.plan.sizes
                )
            )
        client.close()
        return stored

    def downloads(self, server: Gunicorn, stored: dict, kind: str) -> None:
        """`kind` hot: one keep-alive connection (so one worker) that has read each object once;
        cold: a server whose chunk cache is off, so every chunk is read and verified."""
        client = clients.Client(server.url)
        for role, (image_id, data) in stored.items():
            path = f"/images/{image_id}/content"
            # Checked once, untimed: the bytes come back exact.
            _, _, body = client.request("GET", path)
            if hashlib.sha256(body).digest() != hashlib.sha256(data).digest():
                raise RuntimeError(f"{kind} download of image {image_id} returned different bytes")
            del body
            for run in range(self.plan.runs):
                measure_rss = role == "large" and kind == "cold"  # hot: bench/scan.py, fresh servers
                sampler = RssSampler(server) if measure_rss else contextlib.nullcontext()
                profile = (
                    self.profiler.phase(f"download_{kind}_large", server)
                    if role == "large" and run == 0
                    else contextlib.nullcontext()
                )
                with profile, sampler:
                    start = time.perf_counter()
                    got = client.download(path)
                    seconds = time.perf_counter() - start
                assert got == len(data), (got, len(data))
                self.figures.add(f"download_{kind}_{role}_MBps", mbps(got, seconds), "MB/s")
                if measure_rss:
                    self.figures.add(f"rss_growth_download_{kind}_large_MiB", sampler.growth / MiB, "MiB")
            log(f"download {kind} {role}: {self.figures.median(f'download_{kind}_{role}_MBps'):.0f} MB/s")
        client.close()

    def small_gets(self, server: Gunicorn, ceiling: Gunicorn, token: str) -> None:
        owner = clients.Client(server.url, token)
        data = self.payload(self.plan.small_get_bytes)
        image = owner.upload_multipart(data, "small.png")
        owner.close()
        url = f"{server.url}/images/{image['id']}/content"
        # The smoke test (--quick) must not install packages as a side effect of a test run.
        wrk = clients.ensure_wrk(log, install=self.plan is not QUICK)
        self.load_generator = f"wrk ({wrk})" if wrk else "python (2 processes, threaded http.client)"

        def load(target: str, headers=None) -> dict:
            if wrk:
                return clients.run_wrk(
                    wrk, target, self.plan.concurrency, self.plan.load_seconds, headers=headers, log=log
                )
            return clients.run_python_load(target, self.plan.concurrency, self.plan.load_seconds, headers)

        load(url)  # warm-up: pools open, chunk cached in every worker
        load(ceiling.url + "/content")
        for run in range(self.plan.runs):
            with self.profiler.phase("small_get", server) if run == 0 else contextlib.nullcontext():
                result = load(url)
            for key, unit in (("rps", "req/s"), ("p50_ms", "ms"), ("p99_ms", "ms")):
                source = "requests_per_second" if key == "rps" else key
                self.figures.add(f"small_get_{key}", result[source], unit)
            result = load(ceiling.url + "/content")
            for key, unit in (("rps", "req/s"), ("p50_ms", "ms"), ("p99_ms", "ms")):
                source = "requests_per_second" if key == "rps" else key
                self.figures.add(f"ceiling_{key}", result[source], unit)
            with_token = load(url, {"Authorization": f"Bearer {token}"})
            self.figures.add("small_get_token_rps", with_token["requests_per_second"], "req/s")
            log(
                f"100 KiB GET c={self.plan.concurrency} run {run + 1}: ImageRepo "
                f"{self.figures.data['small_get_rps']['runs'][-1]:.0f} req/s, ceiling "
                f"{self.figures.data['ceiling_rps']['runs'][-1]:.0f} req/s, with token "
                f"{with_token['requests_per_second']:.0f} req/s"
            )

    def listing(self, server: Gunicorn, database_url: str, token: str, users: list[int], digest: str) -> None:
        rows = self.plan.list_rows
        log(f"inserting {rows:,} images with SQL")
        with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
            existing = conn.execute("SELECT count(*) FROM images").fetchone()[0]
            # Two owners, every third image private, one second apart, all on one object.
            conn.execute(
                "INSERT INTO images (owner_id, object_digest, filename, content_type, width, height,"
                " description, is_private, access_key, created_at, updated_at)"
                " SELECT (%(users)s::bigint[])[1 + g %% 2], %(digest)s, 'bench-' || g || '.png', 'image/png', 4096, 8,"
                " 'row ' || g, g %% 3 = 0, CASE WHEN g %% 3 = 0 THEN md5(g::text) END,"
                " now() - make_interval(secs => g), now() - make_interval(secs => g)"
                " FROM generate_series(1, %(rows)s) AS g",
                {"users": users, "digest": bytes.fromhex(digest), "rows": rows},
            )
            conn.execute("UPDATE objects SET refcount = refcount + %s WHERE digest = %s", (rows, bytes.fromhex(digest)))
            conn.execute("ANALYZE images")
        client = clients.Client(server.url, token)
        first = "/images?limit=20"
        # The deep page: walk half the visible images with the largest page size, keep the cursor.
        cursor, seen, target = None, 0, (existing + rows) // 2
        while seen < target:
            page = client.json("GET", "/images?limit=100" + (f"&cursor={cursor}" if cursor else ""))
            seen += len(page["images"])
            cursor = page["nextCursor"]
            if cursor is None:
                raise RuntimeError(f"the listing ended after {seen} images, expected more than {target}")
        deep = f"/images?limit=20&cursor={cursor}"
        for path in (first, deep):
            page = client.json("GET", path)
            assert len(page["images"]) == 20 and page["nextCursor"], page
        log(f"deep page cursor after {seen:,} images")
        clients.latencies(client, first, 20)  # warm-up
        for run in range(self.plan.runs):
            with self.profiler.phase("listing", server) if run == 0 else contextlib.nullcontext():
                for page_name, path in (("first", first), ("deep", deep)):
                    samples = clients.latencies(client, path, self.plan.list_samples)
                    self.figures.add(f"list_{page_name}_p50_ms", clients.percentile(samples, 50) * 1000, "ms")
                    self.figures.add(f"list_{page_name}_p95_ms", clients.percentile(samples, 95) * 1000, "ms")
            log(
                f"GET /images run {run + 1}: first p95 {self.figures.data['list_first_p95_ms']['runs'][-1]:.1f} ms,"
                f" deep p95 {self.figures.data['list_deep_p95_ms']['runs'][-1]:.1f} ms"
            )
        client.close()

    # -- the whole run ------------------------------------------------------------------------
    def run(self) -> None:
        log(f"hashing baseline ({self.plan.sizes['large'] / 1e6:g} MB, {self.plan.runs} runs)")
        self.sha256_baseline()
        blob_dir = self.workdir / "blobs"
        with database() as database_url:
            env = self.server_env(database_url, blob_dir)
            log("starting ImageRepo under gunicorn (production config)")
            with Gunicorn("imagerepo:create_app()", env, self.workdir / "server.log") as server:
                users, tokens = _accounts(server.url)
                stored = self.uploads(server, tokens[0])
                self.downloads(server, stored, "hot")
                log("starting ImageRepo with the chunk cache off (cold reads)")
                cold_env = self.server_env(database_url, blob_dir, IMAGEREPO_CACHE_BYTES=0)
                with Gunicorn("imagerepo:create_app()", cold_env, self.workdir / "server-cold.log") as cold:
                    self.downloads(cold, stored, "cold")
                server.stop()
                log("scan resistance: fresh servers, a hot set read while big objects stream")
                scan.measure(self, database_url, blob_dir, stored)
                server.start()
                log("starting the framework ceiling (minimal Flask app, same gunicorn settings)")
                ceiling_env = {**env, "BENCH_CEILING_BYTES": str(self.plan.small_get_bytes)}
                with Gunicorn("bench.ceiling_app:app", ceiling_env, self.workdir / "ceiling.log") as ceiling:
                    self.small_gets(server, ceiling, tokens[0])
                listed = clients.Client(server.url, tokens[0]).upload_multipart(
                    self.payload(self.plan.small_get_bytes), "listed.png"
                )
                self.listing(server, database_url, tokens[0], users, listed["sha256"])
        self.notes += [
            "MB = 10^6 bytes. Each figure: median of the runs (min-max).",
            "Cold downloads come from a server with IMAGEREPO_CACHE_BYTES=0, so every chunk is read from"
            " its file and verified; the OS page cache is warm (the files were just written), so 'cold'"
            " means not in ImageRepo's cache, not off the disk.",
            "Upload limit: SHA-256 of the whole content + SHA-256 of each 256 KiB chunk + temp file, fsync,"
            " rename, fsync of the directory per chunk (the store's durability), one thread; measured just"
            " before and just after each run's uploads, and each upload ratio is the median over runs of"
            " that run's figure / the mean of its two limits (paired; the shared disk drifts).",
            "Download limit: reading those chunk files and verifying each with SHA-256, one thread.",
            f"Concurrent GETs: {self.load_generator}, c={self.plan.concurrency}, {self.plan.load_seconds:g} s a run,"
            " on the same 2 cores as the server. Listing: one client, sequential, keep-alive, user with a token.",
            "RSS: sum over the gunicorn master and workers, sampled every 20 ms; growth = peak - just before.",
            f"Scan resistance: a fresh server per run (cache {_cache_size(self.plan)}); RSS over a"
            f" {self.plan.sizes['large'] / 1e6:g} MB upload plus two downloads of it at once; then"
            f" {self.plan.hot_images} small images read by {scan.HOT_READERS} keep-alive clients while that"
            " object and the one stored earlier are each downloaded twice, two at a time: hit rate ="
            " hits / (hits + misses) over every worker's /metrics.",
        ]
        if self.plan.sizes["large"] > Config.cache_bytes // 8:
            self.notes.append(
                f"The {self.plan.sizes['large'] / 1e6:g} MB object is over the chunk cache's size gate (1/8 of"
                " IMAGEREPO_CACHE_BYTES), so its 'hot' download reads past the cache like a cold one."
            )


def _cache_size(plan: Plan) -> str:
    return f"{plan.scan_cache_bytes // MiB} MiB" if plan.scan_cache_bytes else "default, 256 MiB"


def _accounts(url: str) -> tuple[list[int], list[str]]:
    client = clients.Client(url)
    users, tokens = [], []
    for name in ("bench_alice", "bench_bob"):
        user = client.json(
            "POST",
            "/register",
            {"name": name, "email": f"{name}@example.com", "password": "benchmark password"},
            expect=201,
        )
        users.append(user["id"])
        tokens.append(
            client.json("POST", "/login", {"username": name, "password": "benchmark password"})["access_token"]
        )
    client.close()
    return users, tokens


def _check_image(image: dict, data: bytes) -> None:
    if image.get("size") != len(data) or image.get("sha256") != hashlib.sha256(data).hexdigest():
        raise RuntimeError(f"upload answered {image}, expected size {len(data)}")


def main(argv=None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.runs:
        plan = dataclasses.replace(plan, runs=args.runs)
    workdir = Path(tempfile.mkdtemp(prefix="imagerepo-bench-", dir=args.workdir))
    began = time.monotonic()
    bench = Bench(plan, workdir, Profiler(args.profile))
    try:
        bench.run()
    except BaseException:
        log(f"failed; the servers' logs are kept in {workdir}")
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    targets = evaluate_targets(bench.figures, plan.sizes)
    meta = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "runs": plan.runs,
        "seconds": round(time.monotonic() - began, 1),
        "machine": machine(),
        "sizes": plan.sizes,
        "small_get_bytes": plan.small_get_bytes,
        "list_rows": plan.list_rows,
        "concurrency": plan.concurrency,
        "gunicorn": {"workers": os.cpu_count() or 2, "threads": 8, "config": "gunicorn.conf.py"},
        "load_generator": bench.load_generator,
        "notes": bench.notes,
        "profiled": args.profile is not None,
    }
    write_json(args.json, meta, bench.figures, targets)
    m = meta["machine"]
    print(
        f"\nImageRepo benchmark, {meta['date']}, {m['cpu']}, {m['cores']} cores, {m['memory_GiB']} GiB,"
        f" Python {m['python']}{' (--quick: not representative)' if args.quick else ''}\n"
    )
    print(table(bench.figures, plan.sizes, targets))
    print()
    for note in bench.notes:
        print(f"- {note}")
    missed = sum(not t["pass"] for t in targets)
    log(f"done in {meta['seconds']:.0f} s; {len(targets) - missed}/{len(targets)} targets met; figures in {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
