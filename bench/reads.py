"""python -m bench.reads [--seconds S] [--runs N] [--search-rows N]

The read paths of issue 16 on their own, quicker than the whole `python -m bench`:

- 100 KiB content GET under wrk (c=16), anonymous (a public image) and with a bearer token,
  against the framework ceiling (bench/ceiling_app.py: a minimal Flask app returning the same
  bytes from memory under the same gunicorn settings), each run interleaved with the ceiling so
  both see the same noise; verdicts: token >= 0.6, anonymous >= 0.7, p99 < 20 ms.
- search: a word that matches 10% of N images (default 100,000), p95 of the first page and of
  a deep page (half-way through the matches) < 20 ms, one client, sequential.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import tempfile
from pathlib import Path

import psycopg

from bench import clients
from bench.payloads import PngFactory
from bench.servers import JWT_SECRET, Gunicorn, database, log

CONCURRENCY = 16


def server_env(database_url: str, blob_dir: Path) -> dict:
    return {
        "DATABASE_URL": database_url,
        "IMAGEREPO_ENV": "production",
        "IMAGEREPO_JWT_SECRET": JWT_SECRET,
        "IMAGEREPO_BLOB_DIR": str(blob_dir),
        "IMAGEREPO_WORKERS": str(os.cpu_count() or 2),
        "IMAGEREPO_THREADS": "8",
    }


def account(url: str, name: str) -> tuple[int, str]:
    client = clients.Client(url)
    user = client.json(
        "POST", "/register", {"name": name, "email": f"{name}@example.com", "password": "benchmark password"}, 201
    )
    token = client.json("POST", "/login", {"username": name, "password": "benchmark password"})["access_token"]
    client.close()
    return user["id"], token


def small_gets(server: Gunicorn, ceiling: Gunicorn, token: str, runs: int, seconds: float) -> dict:
    owner = clients.Client(server.url, token)
    image = owner.upload_multipart(PngFactory(100 * 1024).make(100 * 1024, 1), "small.png")
    owner.close()
    url = f"{server.url}/images/{image['id']}/content"
    wrk = clients.ensure_wrk(log)
    if not wrk:
        raise SystemExit("bench.reads needs wrk (apt-get install wrk)")
    auth = {"Authorization": f"Bearer {token}"}

    def load(target, headers=None):
        return clients.run_wrk(wrk, target, CONCURRENCY, seconds, headers=headers, log=log)

    load(url), load(url, auth), load(ceiling.url + "/content")  # warm-up: pools, caches
    got: dict[str, list[dict]] = {"ceiling": [], "anonymous": [], "token": []}
    for run in range(runs):
        for name, target, headers in (
            ("ceiling", ceiling.url + "/content", None),
            ("anonymous", url, None),
            ("token", url, auth),
        ):
            got[name].append(load(target, headers))
        log(
            f"run {run + 1}: "
            + ", ".join(
                f"{k} {v[-1]['requests_per_second']:.0f} req/s p99 {v[-1]['p99_ms']:.1f} ms" for k, v in got.items()
            )
        )
    return got


def seed_search(database_url: str, owner: int, digest: str, rows: int) -> None:
    """`rows` images, one in ten carrying the word 'zebra' (a tenth of those as a tag, a tenth in
    the name, the rest in the description), one in three private, one second apart."""
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        conn.execute(
            "INSERT INTO images (owner_id, object_digest, filename, content_type, width, height,"
            " description, is_private, access_key, created_at, updated_at)"
            " SELECT %(owner)s, %(digest)s,"
            " CASE WHEN g %% 100 = 1 THEN 'zebra-' ELSE 'photo-' END || g || '.png', 'image/png', 8, 8,"
            " CASE WHEN g %% 10 = 0 THEN 'a zebra at the zoo ' ELSE 'a horse in a field ' END || g,"
            " g %% 3 = 0, CASE WHEN g %% 3 = 0 THEN md5(g::text) END,"
            " now() - make_interval(secs => g), now() - make_interval(secs => g)"
            " FROM generate_series(1, %(rows)s) AS g",
            {"owner": owner, "digest": bytes.fromhex(digest), "rows": rows},
        )
        conn.execute("UPDATE objects SET refcount = refcount + %s WHERE digest = %s", (rows, bytes.fromhex(digest)))
        tag = conn.execute("INSERT INTO tags (name) VALUES ('zebra') RETURNING id").fetchone()[0]
        conn.execute(
            "INSERT INTO image_tags (image_id, tag_id) SELECT id, %s FROM images"
            " WHERE filename ~ '^photo-[0-9]*05[.]png$'",
            (tag,),
        )
        conn.execute("ANALYZE")


def search(server: Gunicorn, database_url: str, owner: int, token: str, rows: int, runs: int, samples=100) -> dict:
    client = clients.Client(server.url, token)
    listed = client.upload_multipart(PngFactory(4096).make(4096, 2), "listed.png")
    log(f"inserting {rows:,} images with SQL")
    seed_search(database_url, owner, listed["sha256"], rows)
    first = "/images?q=zebra&limit=20"
    cursor, seen = None, 0
    while seen < rows // 20:  # half the matches
        page = client.json("GET", "/images?q=zebra&limit=100" + (f"&cursor={cursor}" if cursor else ""))
        seen += len(page["images"])
        cursor = page["nextCursor"]
        assert cursor, f"the search ended after {seen} images"
    deep = f"/images?q=zebra&limit=20&cursor={cursor}"
    clients.latencies(client, first, 20)
    # The same-run baseline: the unfiltered first page (newest first, an index walk of 21 rows),
    # sampled between the search pages so that both see the same load.
    got: dict[str, list[float]] = {"first": [], "deep": [], "unfiltered": []}
    for _ in range(runs):
        taken: dict[str, list[float]] = {name: [] for name in got}
        for _ in range(samples):
            for name, path in (("first", first), ("deep", deep), ("unfiltered", "/images?limit=20")):
                taken[name] += clients.latencies(client, path, 1)
        for name, values in taken.items():
            got[name].append(clients.percentile(values, 95) * 1000)
    client.close()
    log("search p95: " + ", ".join(f"{k} {statistics.median(v):.1f} ms" for k, v in got.items()))
    return got


def search_into(bench, server: Gunicorn, database_url: str, owner: int, token: str) -> None:
    """The search measure inside `python -m bench` (after the listing, on the same server):
    figures search_{first,deep,unfiltered}_p95_ms. The listing's rows go first, so that the word
    is in 10% of the images there are."""
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        gone = conn.execute("DELETE FROM images WHERE filename LIKE 'bench-%%.png' RETURNING object_digest").fetchall()
        for digest, count in collections.Counter(row[0] for row in gone).items():
            conn.execute("UPDATE objects SET refcount = refcount - %s WHERE digest = %s", (count, digest))
    got = search(server, database_url, owner, token, bench.plan.list_rows, bench.plan.runs, bench.plan.list_samples)
    for name, values in got.items():
        for value in values:
            bench.figures.add(f"search_{name}_p95_ms", value, "ms")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reads", description=__doc__.split("\n\n")[1])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--search-rows", type=int, default=100_000)
    parser.add_argument("--skip-gets", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="imagerepo-bench-reads-"))
    lines = []
    with database() as url:
        env = server_env(url, workdir / "blobs")
        with Gunicorn("imagerepo:create_app()", env, workdir / "server.log") as server:
            owner, token = account(server.url, "bench_reader")
            if not args.skip_gets:
                ceiling_env = {**env, "BENCH_CEILING_BYTES": str(100 * 1024)}
                with Gunicorn("bench.ceiling_app:app", ceiling_env, workdir / "ceiling.log") as ceiling:
                    got = small_gets(server, ceiling, token, args.runs, args.seconds)
                # Each run's ratio against that run's ceiling, then the median over runs.
                for name, need in (("token", 0.6), ("anonymous", 0.7)):
                    ratios = [
                        r["requests_per_second"] / c["requests_per_second"]
                        for r, c in zip(got[name], got["ceiling"], strict=True)
                    ]
                    rps = statistics.median(r["requests_per_second"] for r in got[name])
                    p99 = statistics.median(r["p99_ms"] for r in got[name])
                    ratio = statistics.median(ratios)
                    lines.append(
                        f"100 KiB GET {name}, c={CONCURRENCY}: {rps:,.0f} req/s, ratio {ratio:.2f} (>= {need}:"
                        f" {'PASS' if ratio >= need else 'FAIL'}), p99 {p99:.1f} ms (< 20: {'PASS' if p99 < 20 else 'FAIL'})"
                    )
                ceiling_rps = statistics.median(r["requests_per_second"] for r in got["ceiling"])
                ceiling_p99 = statistics.median(r["p99_ms"] for r in got["ceiling"])
                lines.append(f"framework ceiling (minimal Flask): {ceiling_rps:,.0f} req/s, p99 {ceiling_p99:.1f} ms")
            if not args.skip_search:
                got = search(server, url, owner, token, args.search_rows, args.runs)
                unfiltered = statistics.median(got.pop("unfiltered"))
                for name, values in got.items():
                    p95 = statistics.median(values)
                    lines.append(
                        f"search, a word in 10% of {args.search_rows:,} images, {name} page p95: {p95:.1f} ms"
                        f" (< 20: {'PASS' if p95 < 20 else 'FAIL'}), {p95 / unfiltered:.1f} x the unfiltered page"
                    )
                lines.append(f"unfiltered first page (same run) p95: {unfiltered:.1f} ms")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
