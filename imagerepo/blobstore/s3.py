"""Chunks on S3-compatible object storage (AWS S3, SeaweedFS, MinIO, Ceph RGW).

The same interface as the local store (see interface.py): `put`, `get`, `exists`, `delete`,
`iterate`, plus the staging area, which stays on local disk (each node stages its own uploads
under `local_dir/tmp`, held with flock, exactly as the local store does).

One object per chunk, named `<prefix>/<sha256 hex>` — flat, no fan-out: object stores index
keys, not directories, and a flat key space lists in digest order.

What this relies on from the store, all of which AWS S3, SeaweedFS, MinIO and Ceph RGW provide:
  * a PUT is atomic: a reader sees no object or the whole object, never a part;
  * read-after-write: once a PUT has answered 200, every GET, HEAD and listing sees it;
  * `x-amz-checksum-sha256` is verified on PUT: the chunk's name *is* its SHA-256, so every PUT
    carries it and the server refuses bytes that do not hash to their name (400 BadDigest,
    raised here as ChunkRejected). Nothing is hashed again for this: the digest is the name.
  * `If-None-Match: *` on PUT (412 when the key exists) makes "store unless present" one
    request. A store that ignores the header overwrites the object with identical bytes
    (they passed the same checksum), which is harmless.

GETs are not verified here, as with the local store: the blob store re-hashes every chunk it
reads before sending or caching it.

Every call has bounded retries and timeouts (botocore's standard retry mode). What still fails
is raised as StoreUnavailable (the API answers 503); a missing object is ChunkMissing. The
client is created per process, because gunicorn forks workers and a connection pool must not
be shared across a fork.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from .errors import StoreUnavailable
from .interface import ChunkFile, ChunkMissing
from .local import LocalChunkStore, StagingArea

__all__ = ["ChunkRejected", "S3ChunkStore", "StoreUnavailable"]

log = logging.getLogger(__name__)

_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class ChunkRejected(StoreUnavailable):
    """The store refused a chunk because its bytes do not hash to its name (the checksum
    sent with the PUT did not match what arrived)."""


def _check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not _HEX_DIGEST.match(digest):
        raise ValueError(f"not a SHA-256 hex digest: {digest!r}")
    return digest


class S3ChunkStore:
    def __init__(
        self,
        bucket: str,
        local_dir: Path,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        prefix: str = "",
        timeout_seconds: float = 10,
        max_attempts: int = 3,
        max_connections: int = 32,
        credentials: tuple[str, str] | None = None,
        list_page_size: int = 1000,
    ):
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.timeout_seconds = timeout_seconds
        self.max_attempts = max_attempts
        self.max_connections = max_connections
        self.list_page_size = list_page_size
        # None: boto3's usual chain (AWS_ACCESS_KEY_ID/..., AWS_PROFILE, ~/.aws, instance roles).
        self._credentials = credentials
        # Staging is the local store's, on this node's disk: same flock protocol, same sweep.
        self._staging = LocalChunkStore(Path(local_dir), fsync=False)
        self.staging_dir = self._staging.staging_dir
        self._client_lock = threading.Lock()
        self._client_pid: int | None = None
        self._client_instance = None

    @classmethod
    def for_config(cls, config) -> S3ChunkStore:
        return cls(
            config.s3_bucket,
            config.blob_dir,
            endpoint_url=config.s3_endpoint,
            region=config.s3_region,
            prefix=config.s3_prefix,
            timeout_seconds=config.s3_timeout_seconds,
            max_attempts=config.s3_max_attempts,
            max_connections=config.s3_max_connections,
        )

    def __repr__(self) -> str:
        where = self.endpoint_url or "aws"
        return f"S3ChunkStore(s3://{self.bucket}/{self.prefix} at {where})"

    # -- the client ------------------------------------------------------------------------
    def client(self):
        pid = os.getpid()
        if self._client_instance is None or self._client_pid != pid:
            with self._client_lock:
                if self._client_instance is None or self._client_pid != pid:
                    self._client_instance = self._new_client()
                    self._client_pid = pid
        return self._client_instance

    def _new_client(self):
        import boto3
        from botocore.config import Config

        config = Config(
            connect_timeout=self.timeout_seconds,
            read_timeout=self.timeout_seconds,
            # total_max_attempts counts the first try (botocore's max_attempts would not).
            retries={"mode": "standard", "total_max_attempts": self.max_attempts},
            # Sized for parallel PUTs of one upload times the threads of a worker.
            max_pool_connections=self.max_connections,
            tcp_keepalive=True,
            # Other stores than AWS are addressed by path (no DNS name per bucket).
            s3={"addressing_style": "path"} if self.endpoint_url else None,
            # We send the one checksum that matters (SHA-256 = the name) ourselves; botocore
            # would otherwise add a CRC32 of every body, and check one on every GET.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        access_key, secret_key = self._credentials or (None, None)
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=config,
        )

    def key_for(self, digest: str) -> str:
        return self.prefix + _check_digest(digest)

    # -- staging -------------------------------------------------------------------------
    def new_staging_area(self) -> StagingArea:
        return self._staging.new_staging_area()

    def sweep_staging(self, older_than_seconds: float) -> int:
        return self._staging.sweep_staging(older_than_seconds)

    # -- the interface -------------------------------------------------------------------
    def put(self, digest: str, data: bytes | Path) -> bool:
        """Make `digest` present: one PUT. `data` is bytes, or a staged file, which is
        consumed (deleted) once the store holds the chunk. False if it was already there."""
        key = self.key_for(digest)
        checksum = base64.b64encode(bytes.fromhex(digest)).decode()
        if isinstance(data, Path):
            with open(data, "rb") as body:
                created = self._put_object(key, body, checksum)
            data.unlink(missing_ok=True)
            return created
        return self._put_object(key, bytes(data), checksum)

    def _put_object(self, key: str, body, checksum: str) -> bool:
        client = self.client()
        for attempt in range(self.max_attempts):
            if attempt and hasattr(body, "seek"):
                body.seek(0)
            try:
                client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    ChecksumSHA256=checksum,
                    IfNoneMatch="*",
                    ContentType="application/octet-stream",
                )
                return True
            except (ClientError, BotoCoreError) as err:
                status, code = _error_status(err)
                if status == 412:
                    return False  # present already (If-None-Match)
                if code in ("BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch"):
                    raise ChunkRejected(f"{self}: the store refused {key}: checksum mismatch ({code})") from None
                if status == 409:
                    # A concurrent conditional PUT of the same key is in flight (AWS); once it
                    # lands, ours answers 412.
                    time.sleep(0.05 * 2**attempt)
                    continue
                raise _unavailable(self, f"PUT {key}", err) from None
        if self.exists(key[len(self.prefix) :]):
            return False
        raise StoreUnavailable(f"{self}: PUT {key} kept conflicting with another writer")

    def get(self, digest: str) -> bytes:
        """The object's bytes, unverified (the blob store re-hashes them)."""
        key = self.key_for(digest)
        client = self.client()
        for attempt in range(self.max_attempts):
            try:
                response = client.get_object(Bucket=self.bucket, Key=key)
            except (ClientError, BotoCoreError) as err:
                if _error_status(err)[0] == 404:
                    raise ChunkMissing(digest) from None
                raise _unavailable(self, f"GET {key}", err) from None
            # botocore retried the request; a body cut short or stalled while it is read
            # comes after that, so it is retried here, within the same number of attempts.
            try:
                return response["Body"].read()
            except BotoCoreError as err:
                if attempt + 1 == self.max_attempts:
                    raise _unavailable(self, f"GET {key} (body)", err) from None
        raise AssertionError("unreachable")

    def stat(self, digest: str) -> ChunkFile:
        """Size and time of one chunk (HEAD). ChunkMissing when absent."""
        key = self.key_for(digest)
        try:
            head = self.client().head_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as err:
            if _error_status(err)[0] == 404:
                raise ChunkMissing(digest) from None
            raise _unavailable(self, f"HEAD {key}", err) from None
        return ChunkFile(digest, head["ContentLength"], head["LastModified"].timestamp())

    def exists(self, digest: str) -> bool:
        try:
            self.stat(digest)
            return True
        except ChunkMissing:
            return False

    def delete(self, digest: str) -> bool:
        """Remove the chunk; False if it was already gone. S3's DELETE answers the same either
        way, so this asks first (only the collector deletes, off the request path)."""
        key = self.key_for(digest)
        if not self.exists(digest):
            return False
        try:
            self.client().delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as err:
            raise _unavailable(self, f"DELETE {key}", err) from None
        return True

    def iterate(self) -> Iterator[ChunkFile]:
        """Every chunk under the prefix, in digest order, page by page (keys that are not a
        digest are someone else's and skipped)."""
        paginator = self.client().get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket, Prefix=self.prefix, PaginationConfig={"PageSize": self.list_page_size}
        )
        try:
            for page in pages:
                for entry in page.get("Contents", ()):
                    name = entry["Key"][len(self.prefix) :]
                    if _HEX_DIGEST.match(name):
                        yield ChunkFile(name, entry["Size"], entry["LastModified"].timestamp())
        except (ClientError, BotoCoreError) as err:
            raise _unavailable(self, f"LIST {self.prefix or '/'}", err) from None

    def warm_up(self) -> None:
        """Import boto3, build this process's client and check the bucket now (~0.7 s), so a
        fresh worker's first request does not pay for it. A store that is down is logged, not
        raised: the node still starts, and its requests answer 503 until the store is back."""
        try:
            self.ping()
        except StoreUnavailable as err:
            log.error("the chunk store is not available at start-up: %s", err)

    def ping(self) -> None:
        """Raise StoreUnavailable unless the bucket answers (for start-up and health checks)."""
        try:
            self.client().head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as err:
            raise _unavailable(self, "HEAD bucket", err) from None


def _error_status(err: Exception) -> tuple[int | None, str | None]:
    """(HTTP status, S3 error code) of a botocore ClientError; (None, None) for anything else."""
    response = getattr(err, "response", None)
    if not isinstance(response, dict):
        return None, None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status, response.get("Error", {}).get("Code")


def _unavailable(store: S3ChunkStore, what: str, err: ClientError | BotoCoreError) -> StoreUnavailable:
    """One error for everything that is not a clean answer: the cause stays in the message
    (it is logged), the type is what callers map (503)."""
    if isinstance(err, ClientError):
        status, code = _error_status(err)
        return StoreUnavailable(f"{store}: {what} failed: {status} {code}")
    return StoreUnavailable(f"{store}: {what} failed: {type(err).__name__}: {err}")
