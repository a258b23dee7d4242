"""The whole service on S3: a real server process (gunicorn) configured only by the environment
(IMAGEREPO_CHUNK_STORE=s3, ...) against a real SeaweedFS. Uploads PUT their chunks before the
commit; an S3 failure is a clean 503 `storage_unavailable` with nothing referenced that was not
stored; the CLI's gc works on the bucket."""

from __future__ import annotations

import hashlib

import psycopg
import pytest
import requests

from http_helpers import bmp_bytes, signup, upload
from live_server import live_server
from s3_helpers import bucket_keys, cli, files_under, new_prefix
from seaweed import SeaweedServer, SeaweedUnavailable

CHUNK = 64 * 1024


def rows(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 (fixed names)
            for table in ("images", "objects", "chunks", "object_chunks")
        }


def chunk_sizes(data: bytes) -> dict[str, int]:
    return {
        hashlib.sha256(data[i : i + CHUNK]).hexdigest(): len(data[i : i + CHUNK]) for i in range(0, len(data), CHUNK)
    }


def chunk_digests(data: bytes) -> set[str]:
    return set(chunk_sizes(data))


def test_the_whole_service_runs_on_s3_and_keeps_nothing_on_local_disk(seaweed, clean_db, tmp_path):
    prefix = new_prefix()
    env = {**seaweed.environment(prefix), "IMAGEREPO_CHUNK_SIZE": str(CHUNK)}
    blob_dir = tmp_path / "node"
    data = bmp_bytes(300, 300, seed=1)  # ~270 KB: 5 chunks
    with live_server(clean_db, blob_dir, extra_env=env, threads=4) as server:
        headers = signup(server.url, "alice")
        session = requests.Session()
        created = upload(session, server.url, headers, "a.bmp", [data])
        assert created.status_code == 201, created.text
        image = created.json()
        # Every distinct chunk is an object named by its digest, and nothing else is.
        assert bucket_keys(seaweed, prefix) == chunk_sizes(data)
        assert files_under(blob_dir) == [], "the node's disk holds no chunk (staging is emptied)"
        got = session.get(f"{server.url}/images/{image['id']}/content", headers=headers, timeout=30)
        assert got.status_code == 200 and got.content == data
        # The same bytes again: deduplicated, no new object in the bucket.
        again = upload(session, server.url, headers, "b.bmp", [data])
        assert again.status_code == 201
        assert len(bucket_keys(seaweed, prefix)) == len(chunk_digests(data))
        # A variant is rendered from the chunks in the bucket and stored there like an upload.
        small = session.get(
            f"{server.url}/images/{image['id']}/content",
            params={"width": 50, "format": "png"},
            headers=headers,
            timeout=60,
        )
        assert small.status_code == 200 and small.content.startswith(b"\x89PNG"), small.text[:300]
        # Under one chunk: its one object is named by the digest of the bytes served.
        assert set(bucket_keys(seaweed, prefix)) == chunk_digests(data) | {hashlib.sha256(small.content).hexdigest()}
        assert files_under(blob_dir) == []
        for created_image in (image, again.json()):
            gone = session.delete(f"{server.url}/images/{created_image['id']}", headers=headers, timeout=30)
            assert gone.status_code == 202
    # gc from the command line, on the same configuration: the bucket is emptied.
    code, report, stderr = cli(clean_db, tmp_path / "cli", env, "gc", "--grace", "0")
    assert code == 0, stderr
    assert report["chunks_freed"] == len(chunk_digests(data)) + 1, "the image's chunks and its variant's"
    assert bucket_keys(seaweed, prefix) == {}
    assert rows(clean_db) == {"images": 0, "objects": 0, "chunks": 0, "object_chunks": 0}


def test_wrong_credentials_fail_an_upload_with_503_and_store_nothing(seaweed, clean_db, tmp_path):
    prefix = new_prefix()
    env = {**seaweed.environment(prefix), "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    blob_dir = tmp_path / "node"
    with live_server(clean_db, blob_dir, extra_env=env) as server:
        headers = signup(server.url, "bob")
        refused = upload(requests.Session(), server.url, headers, "a.bmp", [bmp_bytes(200, 200, seed=2)])
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "storage_unavailable"
        assert refused.headers["Retry-After"]
        assert "secret" not in refused.text.lower() and "s3://" not in refused.text
    assert rows(clean_db) == {"images": 0, "objects": 0, "chunks": 0, "object_chunks": 0}
    assert bucket_keys(seaweed, prefix) == {}
    assert files_under(blob_dir) == [], "the staged chunks were dropped"


@pytest.fixture
def own_seaweed(tmp_path):
    """A SeaweedFS of this test's own, to take down mid-test."""
    server = SeaweedServer(tmp_path / "own-seaweed")
    try:
        server.start()
    except SeaweedUnavailable as err:
        pytest.skip(f"SeaweedFS cannot start here: {err}")
    yield server
    server.stop(grace=1)


def test_a_store_that_goes_down_fails_uploads_and_cold_reads_with_503_and_commits_nothing(
    own_seaweed, clean_db, tmp_path
):
    prefix = new_prefix()
    env = {
        **own_seaweed.environment(prefix),
        "IMAGEREPO_CHUNK_SIZE": str(CHUNK),
        "IMAGEREPO_S3_TIMEOUT_SECONDS": "2",
        "IMAGEREPO_S3_MAX_ATTEMPTS": "2",
        "IMAGEREPO_CACHE_BYTES": "0",  # every read goes to the store
    }
    blob_dir = tmp_path / "node"
    first = bmp_bytes(250, 250, seed=3)
    with live_server(clean_db, blob_dir, extra_env=env) as server:
        headers = signup(server.url, "carol")
        session = requests.Session()
        stored = upload(session, server.url, headers, "a.bmp", [first])
        assert stored.status_code == 201, stored.text
        before = rows(clean_db)
        own_seaweed.stop(grace=0)  # SIGTERM then SIGKILL: connections are refused from now on
        refused = upload(session, server.url, headers, "b.bmp", [bmp_bytes(260, 260, seed=4)], timeout=60)
        assert refused.status_code == 503, refused.text
        assert refused.json() == {
            "error": {"code": "storage_unavailable", "message": "the storage backend is unavailable; try again later"}
        }
        assert rows(clean_db) == before, "nothing of the failed upload was committed"
        cold = session.get(f"{server.url}/images/{stored.json()['id']}/content", headers=headers, timeout=60)
        assert cold.status_code == 503 and cold.json()["error"]["code"] == "storage_unavailable"
        listed = session.get(f"{server.url}/images", headers=headers, timeout=30)
        assert listed.status_code == 200 and len(listed.json()["images"]) == 1, "the catalogue still answers"
    assert files_under(blob_dir) == [], "the failed upload's staged chunks were dropped"
