"""`GET /images` at 100,000 images: the first page and a page half-way down, p50 and p95."""

from __future__ import annotations

import contextlib

import psycopg

from bench import clients
from bench.servers import Gunicorn, log


def listing(bench, server: Gunicorn, database_url: str, token: str, users: list[int], digest: str) -> None:
    rows = bench.plan.list_rows
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
    for run in range(bench.plan.runs):
        with bench.profiler.phase("listing", server) if run == 0 else contextlib.nullcontext():
            for page_name, path in (("first", first), ("deep", deep)):
                samples = clients.latencies(client, path, bench.plan.list_samples)
                bench.figures.add(f"list_{page_name}_p50_ms", clients.percentile(samples, 50) * 1000, "ms")
                bench.figures.add(f"list_{page_name}_p95_ms", clients.percentile(samples, 95) * 1000, "ms")
        log(
            f"GET /images run {run + 1}: first p95 {bench.figures.data['list_first_p95_ms']['runs'][-1]:.1f} ms,"
            f" deep p95 {bench.figures.data['list_deep_p95_ms']['runs'][-1]:.1f} ms"
        )
    client.close()
