"""Two app nodes on one PostgreSQL and one bucket, as on two machines: separate server processes,
each with its own chunk cache and its own staging directory (no disk is shared), both on the
test SeaweedFS under one prefix. An upload on one is readable on the other at once; deletes and
collection on either node are safe, also while both collectors run under traffic; only one node
walks the bucket for orphans at a time (the collector's advisory lock)."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests

from http_helpers import bmp_bytes, signup, upload
from imagerepo.blobstore.collector import _SWEEP_LOCK_KEY
from live_server import LiveServer
from s3_helpers import bucket_keys, cli, files_under, new_prefix

CHUNK = 32 * 1024


@pytest.fixture
def cluster(seaweed, clean_db, tmp_path):
    """Nodes A and B, their settings (for the CLI on each), and the bucket prefix they share."""
    prefix = new_prefix()
    env = {
        **seaweed.environment(prefix),
        "IMAGEREPO_CHUNK_SIZE": str(CHUNK),
        # Both nodes collect all the time, with no grace period: the hardest case for safety.
        "IMAGEREPO_GC_INTERVAL_SECONDS": "1",
        "IMAGEREPO_GC_GRACE_SECONDS": "0",
    }
    nodes = {}
    for node in ("a", "b"):
        (tmp_path / f"node-{node}").mkdir()
        nodes[node] = LiveServer(clean_db, tmp_path / f"node-{node}" / "blobs", extra_env=env, workers=1)
    # Started and stopped side by side: each boot imports boto3 and builds its client.
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(LiveServer.start, nodes.values()))
    try:
        yield {**nodes, "env": env, "prefix": prefix, "db": clean_db, "tmp": tmp_path}
    finally:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(LiveServer.stop, nodes.values()))


def node_cli(cluster, node: str, *args):
    return cli(cluster["db"], cluster["tmp"] / f"node-{node}" / "blobs", cluster["env"], *args)


def chunks_of(data: bytes) -> set[str]:
    return {hashlib.sha256(data[i : i + CHUNK]).hexdigest() for i in range(0, len(data), CHUNK)}


def content(session, node, image_id, headers, **params):
    return session.get(f"{node.url}/images/{image_id}/content", headers=headers, params=params, timeout=60)


def test_an_upload_on_one_node_is_readable_on_the_other_at_once(cluster, seaweed):
    a, b = cluster["a"], cluster["b"]
    headers = signup(a.url, "alice")  # the account, and its token, work on both nodes
    session = requests.Session()
    data = bmp_bytes(400, 300, seed=1)  # 360 KB: 11 chunks
    created = upload(session, a.url, headers, "a.bmp", [data])
    assert created.status_code == 201, created.text
    image = created.json()
    got = content(session, b, image["id"], headers)
    assert got.status_code == 200 and got.content == data, "B reads A's upload at once"
    assert session.get(f"{b.url}/images/{image['id']}", headers=headers, timeout=30).json()["id"] == image["id"]
    # A private image uploaded on B opens on A with its key, and only with it.
    private = session.post(
        f"{b.url}/images",
        headers=headers,
        files={"file": ("p.bmp", bmp_bytes(64, 64, seed=2))},
        data={"isPrivate": "true"},
        timeout=60,
    ).json()
    assert content(session, a, private["id"], {}).status_code == 404
    assert content(session, a, private["id"], {}, accesskey=private["accessKey"]).content == bmp_bytes(64, 64, 2)
    assert set(bucket_keys(seaweed, cluster["prefix"])) == chunks_of(data) | chunks_of(bmp_bytes(64, 64, 2))
    for node in ("a", "b"):
        assert files_under(cluster["tmp"] / f"node-{node}" / "blobs") == [], "no chunk on a node's disk"


def test_delete_on_one_node_and_collection_on_the_other_are_safe(cluster, seaweed):
    a, b = cluster["a"], cluster["b"]
    headers = signup(a.url, "bob")
    session = requests.Session()
    shared = bmp_bytes(256, 256, seed=3)
    first = upload(session, a.url, headers, "x.bmp", [shared]).json()
    second = upload(session, b.url, headers, "y.bmp", [shared]).json()  # the same bytes, on B
    assert content(session, b, first["id"], headers).content == shared  # now in B's cache too
    assert session.delete(f"{b.url}/images/{first['id']}", headers=headers, timeout=30).status_code == 202
    code, report, stderr = node_cli(cluster, "a", "gc", "--grace", "0")
    assert code == 0, stderr
    for node in (a, b):
        assert content(session, node, first["id"], headers).status_code == 404
        assert content(session, node, second["id"], headers).content == shared, "the other reference holds"
    assert session.delete(f"{a.url}/images/{second['id']}", headers=headers, timeout=30).status_code == 202
    code, report, stderr = node_cli(cluster, "b", "gc", "--grace", "0")
    assert code == 0, stderr
    for node in (a, b):
        assert content(session, node, second["id"], headers).status_code == 404, "never served from a cache"
    deadline = time.monotonic() + 20  # the nodes' own collectors may have freed it first
    while bucket_keys(seaweed, cluster["prefix"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert bucket_keys(seaweed, cluster["prefix"]) == {}


def test_traffic_on_both_nodes_with_both_collectors_running_loses_nothing(cluster):
    a, b = cluster["a"], cluster["b"]
    headers = signup(a.url, "carol")
    blocks = [bmp_bytes(128, 85, seed=10 + i)[54:] for i in range(4)]  # ~32 KB each: shared chunks
    files = [bmp_bytes(128, 85, seed=20 + i)[:54] + blocks[i % 4] + blocks[(i + 1) % 4] for i in range(6)]
    held: dict[int, int] = {}
    lock = threading.Lock()
    errors: list[str] = []
    counts = {"uploads": 0, "deletes": 0, "cross_reads": 0}
    deadline = time.monotonic() + 6

    def work(seed: int) -> None:
        rng = random.Random(seed)
        session = requests.Session()
        while time.monotonic() < deadline:
            writer, reader = rng.sample([a, b], 2)
            with lock:
                victim = rng.choice(sorted(held)) if len(held) > 3 and rng.random() < 0.5 else None
                if victim is not None:
                    held.pop(victim)
            if victim is not None:
                if session.delete(f"{writer.url}/images/{victim}", headers=headers, timeout=30).status_code != 202:
                    errors.append(f"delete {victim} failed")
                counts["deletes"] += 1
                continue
            which = rng.randrange(len(files))
            response = upload(session, writer.url, headers, f"f{which}.bmp", [files[which]])
            if response.status_code != 201:
                errors.append(f"upload: {response.status_code} {response.text}")
                continue
            image = response.json()["id"]
            got = content(session, reader, image, headers)
            if got.status_code != 200 or got.content != files[which]:
                errors.append(f"image {image} on the other node: {got.status_code}, {len(got.content)} bytes")
            with lock:
                held[image] = which
                counts["uploads"] += 1
                counts["cross_reads"] += 1

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
    assert errors == [], errors[:5]
    assert counts["uploads"] > 20 and counts["deletes"] > 5, counts
    time.sleep(1.5)  # a collector run on each node after the last delete
    session = requests.Session()
    for image, which in held.items():
        for node in (a, b):
            assert content(session, node, image, headers).content == files[which]
    code, report, stderr = node_cli(cluster, "b", "fsck", "--verify-content")
    assert code == 0 and report["problems"] == 0, (report, stderr)
    print(counts)


def test_only_one_node_walks_the_bucket_for_orphans_at_a_time(cluster, seaweed):
    """Orphans (objects without a row, as a crash between PUT and commit leaves) are swept by
    whichever node holds the sweep lock; another node's gc skips that part meanwhile."""
    raw = seaweed.client()
    orphans = {}
    for seed in range(40):
        data = hashlib.sha256(b"orphan %d" % seed).digest() * 100
        orphans[hashlib.sha256(data).hexdigest()] = data
    for digest, data in orphans.items():
        raw.put_object(Bucket=seaweed.bucket, Key=f"{cluster['prefix']}/{digest}", Body=data)
    with psycopg.connect(cluster["db"], autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (_SWEEP_LOCK_KEY,))  # "another node is sweeping"
        code, report, stderr = node_cli(cluster, "a", "gc", "--grace", "0")
        assert code == 0, stderr
        assert report["orphan_files_removed"] == 0
        assert set(bucket_keys(seaweed, cluster["prefix"])) == set(orphans)
        holder.execute("SELECT pg_advisory_unlock(%s)", (_SWEEP_LOCK_KEY,))
    # Both nodes at once: each orphan is removed exactly once, by whichever node got the lock.
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda node: node_cli(cluster, node, "gc", "--grace", "0"), ["a", "b"]))
    assert [code for code, _, _ in results] == [0, 0], [stderr for _, _, stderr in results]
    # The nodes' own collectors take part too: their first file sweep, held off while the lock
    # was held above, is due and may run now. Whoever removes an orphan, none is counted twice.
    assert sum(report["orphan_files_removed"] for _, report, _ in results) <= len(orphans)
    deadline = time.monotonic() + 30
    while bucket_keys(seaweed, cluster["prefix"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert bucket_keys(seaweed, cluster["prefix"]) == {}
