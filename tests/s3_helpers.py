"""Helpers for tests that run the service on S3 (SeaweedFS, tests/seaweed.py): the settings a
server or CLI process needs, and what the bucket holds under a prefix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def new_prefix() -> str:
    """A key prefix of its own per test: an empty store without a bucket of its own."""
    return f"test-{uuid.uuid4().hex[:12]}"


def bucket_keys(seaweed, prefix: str) -> dict[str, int]:
    """Every object under `prefix/` in the test bucket: key without the prefix -> size."""
    client = seaweed.client()
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=seaweed.bucket, Prefix=prefix + "/"):
        for entry in page.get("Contents", ()):
            found[entry["Key"][len(prefix) + 1 :]] = entry["Size"]
    return found


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


def backend_env(config) -> dict[str, str]:
    """The environment a server or CLI process needs for `config`'s chunk backend."""
    if config.chunk_store != "s3":
        return {}
    return {
        "IMAGEREPO_CHUNK_STORE": "s3",
        "IMAGEREPO_S3_ENDPOINT": config.s3_endpoint or "",
        "IMAGEREPO_S3_BUCKET": config.s3_bucket,
        "IMAGEREPO_S3_PREFIX": config.s3_prefix,
        "IMAGEREPO_S3_REGION": config.s3_region or "",
    }


def cli(database_url: str, blob_dir: Path, env: dict, *args, timeout: float = 180):
    """`python -m imagerepo ARGS` as an operator runs it: (exit code, JSON stdout, stderr)."""
    result = subprocess.run(
        [sys.executable, "-m", "imagerepo", *args],
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "DATABASE_URL": database_url,
            "IMAGEREPO_BLOB_DIR": str(blob_dir),
            "IMAGEREPO_ENV": "test",
            "IMAGEREPO_JWT_SECRET": "cli-test-secret-" + "z" * 40,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    try:
        output = json.loads(result.stdout) if result.stdout.strip() else None
    except json.JSONDecodeError:
        raise AssertionError(f"stdout is not JSON: {result.stdout!r} (stderr: {result.stderr})") from None
    return result.returncode, output, result.stderr
