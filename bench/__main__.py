"""python -m bench [--quick] [--runs N] [--only PHASES] [--json PATH] [--profile DIR]

Starts the real service under gunicorn with the production config file on a database of its
own, measures uploads, re-uploads, cold and hot downloads, small-image GETs under load, the
listing at 100,000 images, the servers' memory and the chunk cache's scan resistance, next to
baselines measured in the same run, and prints a table and each target with its same-run
baseline, ratio and verdict (progress goes to stderr). See README, "Performance".

One module per measure: transfers.py (uploads, downloads), small_gets.py, listing.py, scan.py;
baselines.py the limits, report.py the targets and the table, harness.py the shared state.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import clients, listing, reads, scan, small_gets, transfers
from bench.harness import FULL, QUICK, Bench, accounts, cache_size, machine
from bench.report import evaluate_targets, table, write_json
from bench.servers import Gunicorn, Profiler, database, log
from imagerepo.config import Config

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = PROJECT_ROOT / "bench" / "results" / "latest.json"
PHASES = ("uploads", "downloads", "scan", "gets", "listing")


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
    parser.add_argument(
        "--only",
        type=lambda text: set(text.split(",")),
        default=set(PHASES),
        metavar="PHASES",
        help=f"comma-separated, of {','.join(PHASES)} (uploads always run: the others read what they stored)",
    )
    parser.add_argument("--workdir", type=Path, help="where the chunk stores go (default: the system temp dir)")
    return parser.parse_args(argv)


def run(bench: Bench, phases: set[str]) -> None:
    log(f"hashing baseline ({bench.plan.sizes['large'] / 1e6:g} MB, {bench.plan.runs} runs)")
    transfers.sha256_baseline(bench)
    blob_dir = bench.workdir / "blobs"
    with database() as database_url:
        env = bench.server_env(database_url, blob_dir)
        log("starting ImageRepo under gunicorn (production config)")
        with Gunicorn("imagerepo:create_app()", env, bench.workdir / "server.log") as server:
            users, tokens = accounts(server.url)
            stored = transfers.uploads(bench, server, tokens[0])
            if "downloads" in phases:
                transfers.downloads(bench, {"hot": server}, stored)
                log("starting ImageRepo with the chunk cache off (cold reads), with and without read-ahead")
                cold_env = bench.server_env(database_url, blob_dir, IMAGEREPO_CACHE_BYTES=0)
                inline_env = {**cold_env, "IMAGEREPO_READ_AHEAD": "0"}
                with (
                    Gunicorn("imagerepo:create_app()", cold_env, bench.workdir / "server-cold.log") as cold,
                    Gunicorn("imagerepo:create_app()", inline_env, bench.workdir / "server-inline.log") as inline,
                ):
                    transfers.downloads(bench, {"cold": cold, "cold_inline": inline}, stored)
            if "scan" in phases:
                server.stop()
                log("scan resistance: fresh servers, a hot set read while big objects stream")
                scan.measure(bench, database_url, blob_dir, stored)
                server.start()
            if "gets" in phases:
                log("starting the framework ceiling (minimal Flask app, same gunicorn settings)")
                ceiling_env = {**env, "BENCH_CEILING_BYTES": str(bench.plan.small_get_bytes)}
                with Gunicorn("bench.ceiling_app:app", ceiling_env, bench.workdir / "ceiling.log") as ceiling:
                    small_gets.small_gets(bench, server, ceiling, tokens[0])
            if "listing" in phases:
                listed = clients.Client(server.url, tokens[0]).upload_multipart(
                    bench.payload(bench.plan.small_get_bytes), "listed.png"
                )
                listing.listing(bench, server, database_url, tokens[0], users, listed["sha256"])
                log("search: a word in 10% of as many images again (bench/reads.py)")
                reads.search_into(bench, server, database_url, users[0], tokens[0])
    bench.notes += [
        "MB = 10^6 bytes. Each figure: median of the runs (min-max).",
        "Cold downloads come from a server with IMAGEREPO_CACHE_BYTES=0, so every chunk is read from"
        " its file and verified; the OS page cache is warm (the files were just written), so 'cold'"
        " means not in ImageRepo's cache, not off the disk. 'In line': a second such server with"
        " IMAGEREPO_READ_AHEAD=0, its runs interleaved with the first's (the default reads one chunk"
        " ahead for 8 chunks or more).",
        "Upload limit: SHA-256 of the whole content + SHA-256 of each 256 KiB chunk + temp file, fsync,"
        " rename, fsync of the directory per chunk (the same durability as the store), one thread; measured just"
        " before and just after each run's uploads, and each upload ratio is the median over runs of"
        " that run's figure / the mean of its two limits (paired; the shared disk drifts).",
        "Download limit: reading those chunk files and verifying each with SHA-256, one thread.",
        f"Concurrent GETs: {bench.load_generator}, c={bench.plan.concurrency}, {bench.plan.load_seconds:g} s a run,"
        " on the same 2 cores as the server. Listing: one client, sequential, keep-alive, user with a token.",
        "RSS: sum over the gunicorn master and workers, sampled every 20 ms; growth = peak - just before.",
        f"Scan resistance: a fresh server per run (cache {cache_size(bench.plan)}); RSS over a"
        f" {bench.plan.sizes['large'] / 1e6:g} MB upload plus two downloads of it at once; then"
        f" {bench.plan.hot_images} small images read by {scan.HOT_READERS} keep-alive clients while that"
        " object and the one stored earlier are each downloaded twice, two at a time: hit rate ="
        " hits / (hits + misses) over every worker's /metrics.",
    ]
    if bench.plan.sizes["large"] > Config.cache_bytes // 8:
        bench.notes.append(
            f"The {bench.plan.sizes['large'] / 1e6:g} MB object is over the chunk cache's size gate (1/8 of"
            " IMAGEREPO_CACHE_BYTES), so its 'hot' download reads past the cache like a cold one."
        )


def main(argv=None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.runs:
        plan = dataclasses.replace(plan, runs=args.runs)
    workdir = Path(tempfile.mkdtemp(prefix="imagerepo-bench-", dir=args.workdir))
    began = time.monotonic()
    bench = Bench(plan, workdir, Profiler(args.profile))
    try:
        run(bench, args.only)
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
