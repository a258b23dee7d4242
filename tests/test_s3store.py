"""What the S3 chunk store adds to the contract (tests/test_chunkstore_contract.py runs that on
S3 too): integrity on PUT checked by the server, corrupted objects caught by the blob store's
verification, bounded failures, paginated listings, one request per chunk. Against a real
SeaweedFS (tests/seaweed.py)."""

from __future__ import annotations

import base64
import collections
import hashlib
import multiprocessing
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from imagerepo.blobstore import BlobStore, ChunkCorrupt
from imagerepo.blobstore.cache import ChunkCache
from imagerepo.blobstore.interface import ChunkMissing
from imagerepo.config import Config, ConfigError
from imagerepo.blobstore.s3 import ChunkRejected, S3ChunkStore, StoreUnavailable


def chunk(seed: int, size: int = 3000) -> tuple[str, bytes]:
    data = (hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1))[:size]
    return hashlib.sha256(data).hexdigest(), data


def count_requests(store: S3ChunkStore) -> collections.Counter:
    """Every HTTP request the store's client sends, by operation (retries included)."""
    sent = collections.Counter()

    def on_send(request, **kwargs):
        sent[kwargs["event_name"].rsplit(".", 1)[-1]] += 1

    store.client().meta.events.register("before-send.s3", on_send)
    return sent


def capture_headers(store: S3ChunkStore) -> list[dict]:
    captured = []
    store.client().meta.events.register(
        "before-send.s3.PutObject", lambda request, **kwargs: captured.append(dict(request.headers))
    )
    return captured


def other_store(s3_store: S3ChunkStore, tmp_path, **changes) -> S3ChunkStore:
    settings = dict(
        endpoint_url=s3_store.endpoint_url,
        region="us-east-1",
        prefix=s3_store.prefix,
        credentials=s3_store._credentials,
    )
    settings.update(changes)
    return S3ChunkStore(settings.pop("bucket", s3_store.bucket), tmp_path / "other-local", **settings)


# -- integrity on PUT ---------------------------------------------------------------------------
def test_every_put_carries_the_digest_as_checksum_and_is_one_request(s3_store):
    digest, data = chunk(1)
    headers = capture_headers(s3_store)
    sent = count_requests(s3_store)
    assert s3_store.put(digest, data) is True
    assert s3_store.put(digest, data) is False  # present: the server answers 412, nothing rewritten
    assert sent == {"PutObject": 2}
    for sent_headers in headers:
        assert sent_headers["x-amz-checksum-sha256"] == base64.b64encode(bytes.fromhex(digest))
        assert sent_headers["If-None-Match"] == b"*"
    sent.clear()
    assert s3_store.get(digest) == data
    assert sent == {"GetObject": 1}, "one GET per cold chunk read"


def test_the_server_refuses_bytes_that_do_not_match_their_checksum(s3_store, seaweed):
    """Integrity on PUT is the server's check, not ours: the same request with bytes that do
    not hash to the checksum is refused, and nothing is stored."""
    digest, data = chunk(2)
    damaged = bytes([data[0] ^ 1]) + data[1:]
    with pytest.raises(ChunkRejected):
        s3_store.put(digest, damaged)
    assert not s3_store.exists(digest)
    assert list(s3_store.iterate()) == []
    # The same with a plain client, so the refusal is SeaweedFS's own: 400 BadDigest.
    raw = seaweed.client()
    with pytest.raises(ClientError) as refused:
        raw.put_object(
            Bucket=seaweed.bucket,
            Key=s3_store.key_for(digest),
            Body=damaged,
            ChecksumSHA256=base64.b64encode(bytes.fromhex(digest)).decode(),
        )
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert refused.value.response["Error"]["Code"] == "BadDigest"
    with pytest.raises(ClientError) as refused_md5:
        raw.put_object(
            Bucket=seaweed.bucket,
            Key=s3_store.key_for(digest),
            Body=damaged,
            ContentMD5=base64.b64encode(hashlib.md5(data).digest()).decode(),
        )
    assert refused_md5.value.response["Error"]["Code"] == "BadDigest"
    assert not s3_store.exists(digest)
    # And the right bytes go in.
    assert s3_store.put(digest, data) is True
    assert s3_store.get(digest) == data


def test_a_refused_staged_file_stays_for_its_upload_to_clean_up(s3_store):
    digest, data = chunk(3)
    area = s3_store.new_staging_area()
    handle, path = area.new_file()
    with handle:
        handle.write(data[::-1])
    with pytest.raises(ChunkRejected):
        s3_store.put(digest, path)
    assert path.exists(), "only a stored chunk consumes its staged file"
    area.remove()
    assert not path.exists()


# -- a corrupted object is caught on read ---------------------------------------------------------
def test_an_object_corrupted_behind_the_store_is_caught_by_the_blob_store_verification(s3_store, seaweed):
    digest, data = chunk(4)
    s3_store.put(digest, data)
    # Damage it directly in the bucket (bit rot, a bad replica, a stray writer).
    seaweed.client().put_object(Bucket=seaweed.bucket, Key=s3_store.key_for(digest), Body=b"X" + data[1:])
    raw = s3_store.get(digest)
    assert len(raw) == len(data) and hashlib.sha256(raw).hexdigest() != digest, "the store does not verify"
    # The blob store's read path re-hashes what the store returns: an error, nothing cached.
    cache = ChunkCache(1024 * 1024)
    blobs = BlobStore(None, s3_store, cache, chunk_size=len(data))
    with pytest.raises(ChunkCorrupt):
        blobs.reader.read_chunk(digest)
    assert len(cache) == 0
    assert blobs.counters["chunks_corrupt"] == 1
    # A put of the right bytes does not overwrite what is there (If-None-Match): repairing a
    # corrupt chunk is a delete and a put, which only the collector's protocol may do.
    assert s3_store.put(digest, data) is False
    assert s3_store.delete(digest) is True
    assert s3_store.put(digest, data) is True
    assert blobs.reader.read_chunk(digest) == data


# -- failures are bounded and come out as StoreUnavailable ----------------------------------------
@pytest.fixture
def silent_port():
    """A port that accepts connections (the kernel completes the handshake from the backlog)
    and never answers a byte: the worst case for timeouts."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield sock.getsockname()[1]
    sock.close()


def test_a_store_that_never_answers_fails_within_the_configured_time(s3_store, tmp_path, silent_port):
    store = other_store(
        s3_store, tmp_path, endpoint_url=f"http://127.0.0.1:{silent_port}", timeout_seconds=1, max_attempts=2
    )
    digest, data = chunk(5)
    sent = count_requests(store)
    # Each attempt waits out the timeout (a PUT also waits 1 s for "100 Continue" before it
    # sends the body), plus botocore's backoff between attempts (under 1 s before the second).
    bound = 2 * (1 + 1) + 1 + 1
    for name, call in [
        ("put", lambda: store.put(digest, data)),
        ("get", lambda: store.get(digest)),
        ("exists", lambda: store.exists(digest)),
        ("iterate", lambda: list(store.iterate())),
    ]:
        began = time.monotonic()
        with pytest.raises(StoreUnavailable):
            call()
        took = time.monotonic() - began
        assert 1 <= took <= bound, (name, took)
    assert sent == {"PutObject": 2, "GetObject": 2, "HeadObject": 2, "ListObjectsV2": 2}, "max_attempts each"


def test_a_store_that_refuses_connections_fails_fast(s3_store, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]  # nothing listens there once closed
    store = other_store(s3_store, tmp_path, endpoint_url=f"http://127.0.0.1:{closed}", max_attempts=3)
    digest, data = chunk(6)
    area = store.new_staging_area()
    handle, path = area.new_file()
    with handle:
        handle.write(data)
    began = time.monotonic()
    with pytest.raises(StoreUnavailable):
        store.put(digest, path)
    assert time.monotonic() - began < 5
    assert path.exists(), "a failed PUT leaves the staged file for its upload to clean up"
    area.remove()


def test_wrong_credentials_and_a_missing_bucket_are_store_unavailable(s3_store, tmp_path):
    digest, data = chunk(7)
    wrong_secret = other_store(s3_store, tmp_path, credentials=(s3_store._credentials[0], "not-the-secret"))
    with pytest.raises(StoreUnavailable, match="403"):
        wrong_secret.put(digest, data)
    with pytest.raises(StoreUnavailable):
        wrong_secret.ping()
    no_bucket = other_store(s3_store, tmp_path, bucket="no-such-bucket-here")
    with pytest.raises(StoreUnavailable, match="404"):
        no_bucket.ping()
    with pytest.raises(StoreUnavailable):
        no_bucket.put(digest, data)
    s3_store.ping()


# -- listing --------------------------------------------------------------------------------------
def test_iterate_follows_pages_and_lists_in_digest_order(s3_store, tmp_path):
    stored = dict(chunk(seed, 100 + seed) for seed in range(30))
    for digest, data in stored.items():
        s3_store.put(digest, data)
    small_pages = other_store(s3_store, tmp_path, list_page_size=7)
    sent = count_requests(small_pages)
    listed = list(small_pages.iterate())
    assert [c.digest for c in listed] == sorted(stored)
    assert {c.digest: c.size for c in listed} == {d: len(b) for d, b in stored.items()}
    assert sent == {"ListObjectsV2": 5}  # 30 keys, 7 a page


def test_iterate_over_more_than_the_servers_page_limit(s3_store):
    """1100 objects: more than the 1000 keys a ListObjectsV2 page holds at most."""
    stored = [chunk(seed, 40) for seed in range(1100)]
    with ThreadPoolExecutor(16) as pool:
        assert all(pool.map(lambda c: s3_store.put(*c), stored))
    sent = count_requests(s3_store)
    assert sorted(c.digest for c in s3_store.iterate()) == sorted(d for d, _ in stored)
    assert sent == {"ListObjectsV2": 2}


def test_keys_outside_the_prefix_or_not_digests_are_not_chunks(s3_store, seaweed, tmp_path):
    digest, data = chunk(8)
    s3_store.put(digest, data)
    raw = seaweed.client()
    raw.put_object(Bucket=seaweed.bucket, Key=s3_store.prefix + "notes.txt", Body=b"hi")
    raw.put_object(Bucket=seaweed.bucket, Key=s3_store.prefix + "sub/" + digest, Body=data)
    neighbour = other_store(s3_store, tmp_path, prefix=s3_store.prefix.rstrip("/") + "-neighbour")
    other_digest, other_data = chunk(9)
    neighbour.put(other_digest, other_data)
    assert [c.digest for c in s3_store.iterate()] == [digest]
    assert [c.digest for c in neighbour.iterate()] == [other_digest]
    assert not s3_store.exists(other_digest)
    with pytest.raises(ChunkMissing):
        s3_store.get(other_digest)


def test_concurrent_puts_of_the_same_chunk_store_it_once(s3_store):
    digest, data = chunk(10, 256 * 1024)
    results = []
    barrier = threading.Barrier(8)

    def put():
        barrier.wait()
        results.append(s3_store.put(digest, data))

    threads = [threading.Thread(target=put) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and results.count(True) >= 1
    assert s3_store.get(digest) == data
    assert [c.digest for c in s3_store.iterate()] == [digest]


# -- processes and configuration ------------------------------------------------------------------
def test_a_forked_worker_gets_its_own_connections(s3_store):
    """gunicorn forks workers from a process that may have used the store already."""
    digest, data = chunk(11)
    s3_store.put(digest, data)
    parent_client = s3_store.client()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_read_in_child, args=(s3_store, digest, queue))
    child.start()
    child.join(60)
    assert queue.get(timeout=5) == (True, True)
    assert s3_store.client() is parent_client
    assert child.exitcode == 0


def _read_in_child(store, digest, queue):
    inherited = store._client_instance
    data = store.get(digest)
    queue.put((hashlib.sha256(data).hexdigest() == digest, store.client() is not inherited))


def test_configuration_from_the_environment(seaweed, tmp_path, monkeypatch):
    env = {**seaweed.environment("config-test"), "IMAGEREPO_BLOB_DIR": str(tmp_path / "local")}
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, env.pop(name))  # boto3 reads the standard variables itself
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    config = Config.from_env({**env, "IMAGEREPO_S3_TIMEOUT_SECONDS": "4", "IMAGEREPO_S3_MAX_ATTEMPTS": "2"})
    assert (config.chunk_store, config.s3_bucket, config.s3_prefix) == ("s3", seaweed.bucket, "config-test")
    store = S3ChunkStore.for_config(config)
    assert (store.prefix, store.timeout_seconds, store.max_attempts) == ("config-test/", 4, 2)
    assert store.staging_dir == tmp_path / "local" / "tmp"
    digest, data = chunk(12)
    assert store.put(digest, data) is True
    assert seaweed.client().get_object(Bucket=seaweed.bucket, Key=f"config-test/{digest}")["Body"].read() == data
    assert store.delete(digest) is True
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(StoreUnavailable):
        S3ChunkStore.for_config(config).ping()


@pytest.mark.parametrize(
    "env, message",
    [
        ({"IMAGEREPO_CHUNK_STORE": "ftp"}, "IMAGEREPO_CHUNK_STORE"),
        ({"IMAGEREPO_CHUNK_STORE": "s3"}, "IMAGEREPO_S3_BUCKET"),
        ({"IMAGEREPO_CHUNK_STORE": "s3", "IMAGEREPO_S3_BUCKET": "b", "IMAGEREPO_S3_TIMEOUT_SECONDS": "0"}, "TIMEOUT"),
        ({"IMAGEREPO_CHUNK_STORE": "s3", "IMAGEREPO_S3_BUCKET": "b", "IMAGEREPO_S3_MAX_ATTEMPTS": "x"}, "ATTEMPTS"),
    ],
)
def test_bad_s3_settings_stop_the_service_from_starting(env, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_env({"IMAGEREPO_ENV": "test", "IMAGEREPO_JWT_SECRET": "x" * 40, **env})


def test_the_default_is_the_local_store():
    config = Config.from_env({"IMAGEREPO_ENV": "test", "IMAGEREPO_JWT_SECRET": "x" * 40})
    assert config.chunk_store == "local"


# -- read-ahead -----------------------------------------------------------------------------------
@pytest.fixture
def s3_blobs(s3_store, config):
    from blob_helpers import BlobStoreForTests

    from imagerepo.db import Database

    database = Database(config.database_url, 1, 4)
    yield BlobStoreForTests(database, s3_store, ChunkCache(0), chunk_size=4096)
    database.close()


def test_a_cold_read_fetches_ahead_in_order_one_get_per_chunk_and_verifies_each(s3_blobs, s3_store, seaweed):
    import io

    data = b"".join(chunk(100 + i, 4096)[1] for i in range(12))
    stored = s3_blobs.put(io.BytesIO(data))
    threads = []
    s3_store.client().meta.events.register(
        "before-send.s3.GetObject", lambda **kw: threads.append(threading.current_thread().name)
    )
    assert s3_blobs.read_all(stored.digest) == data
    assert len(threads) == 12, "one GET per cold chunk, read-ahead included"
    assert sum(name.startswith("imagerepo-read") for name in threads) == 11, "all but the first ahead"
    # A download dropped after its first chunk stops fetching: at most the one ahead more.
    threads.clear()
    stream = s3_blobs.open(stored.digest)
    next(stream)
    stream.close()
    time.sleep(0.2)
    assert len(threads) <= 2
    # A corrupt chunk in the middle: the ones before it are sent, then the error, in its turn.
    bad = hashlib.sha256(data[6 * 4096 : 7 * 4096]).hexdigest()
    seaweed.client().put_object(Bucket=seaweed.bucket, Key=s3_store.key_for(bad), Body=b"Z" * 4096)
    received = []
    with pytest.raises(ChunkCorrupt):
        for piece in s3_blobs.open(stored.digest):
            received.append(piece)
    assert b"".join(received) == data[: 6 * 4096]
