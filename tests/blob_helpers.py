"""Helpers for blob-store tests: a BlobStore on a test Config, and references to objects held
the way the image API holds them (a row in `images`, one object reference each)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
from pathlib import Path

import psycopg

from imagerepo.blobstore import BlobStore, StoredObject
from imagerepo.db import Database
from imagerepo.images.queries import OBJECT_REFERENCES_SQL

SMALL_CHUNK = 4096


class BlobStoreForTests(BlobStore):
    """A BlobStore with two shortcuts only tests need: store a whole stream, read a whole object."""

    def put(self, stream, conn=None) -> StoredObject:
        """Store everything `stream` yields and take one reference to it."""
        stager = self.stager()
        try:
            staged = stager.stage_stream(stream).finish()
        except BaseException:
            stager.abort()
            raise
        try:
            if conn is not None:
                return self.commit(conn, staged)
            with self.db.transaction() as own:
                return self.commit(own, staged)
        finally:
            staged.discard()

    def read_all(self, digest: str) -> bytes:
        return b"".join(self.open(digest))


def make_blobs(config, **changes) -> BlobStoreForTests:
    """A BlobStore built from `config` (small chunks by default so tests stay fast)."""
    config = dataclasses.replace(config, **{"chunk_size": SMALL_CHUNK, **changes})
    database = Database(config.database_url, 1, config.db_pool_max)
    return BlobStoreForTests.for_config(config, database, OBJECT_REFERENCES_SQL)


def pseudo_random(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def add_owner(database_url: str, name: str = "owner") -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute(
            "INSERT INTO users (name, email, password_hash) VALUES (%s, %s, 'x') RETURNING id",
            (name, f"{name}@example.com"),
        ).fetchone()[0]


def add_reference(blobs: BlobStore, owner_id: int, data: bytes | None = None, stream=None) -> int:
    """Store content and hold one reference to it in `images`, in one transaction, as an
    upload does. Returns the image id."""
    stager = blobs.stager()
    try:
        if stream is not None:
            stager.stage_stream(stream)
        else:
            stager.write(data)
        staged = stager.finish()
        try:
            with blobs.db.transaction() as conn:
                blobs.commit(conn, staged)
                return conn.execute(
                    "INSERT INTO images (owner_id, object_digest, filename, content_type)"
                    " VALUES (%s, %s, 'test.bin', 'application/octet-stream') RETURNING id",
                    (owner_id, bytes.fromhex(staged.digest)),
                ).fetchone()["id"]
        finally:
            staged.discard()
    finally:
        stager.abort()


def drop_reference(blobs: BlobStore, image_id: int) -> str | None:
    """Delete an image and release its object, as DELETE /images/<id> does."""
    with blobs.db.transaction() as conn:
        row = conn.execute("DELETE FROM images WHERE id = %s RETURNING object_digest", (image_id,)).fetchone()
        if row is None:
            return None
        digest = bytes(row["object_digest"]).hex()
        blobs.release(conn, digest)
        return digest


def object_of(blobs: BlobStore, image_id: int) -> str:
    with blobs.db.transaction() as conn:
        return bytes(
            conn.execute("SELECT object_digest FROM images WHERE id = %s", (image_id,)).fetchone()["object_digest"]
        ).hex()


def table_counts(blobs: BlobStore) -> dict:
    with blobs.db.transaction() as conn:
        return {
            table: conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"]
            for table in ("objects", "chunks", "object_chunks", "images")
        }


def chunk_files(blobs: BlobStore) -> set[str]:
    return {listed.digest for listed in blobs.store.iterate()}


def staging_files(blobs: BlobStore) -> list[Path]:
    return [p for p in blobs.store.staging_dir.rglob("*") if p.is_file()]


def needed_chunks(blobs: BlobStore) -> set[str]:
    """Chunk digests the objects still referenced by images need."""
    with blobs.db.transaction() as conn:
        return {
            bytes(r["chunk_digest"]).hex()
            for r in conn.execute(
                "SELECT DISTINCT oc.chunk_digest FROM images i"
                " JOIN object_chunks oc ON oc.object_digest = i.object_digest"
            )
        }


def flip_byte(path: Path, offset: int = 100) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))
        handle.flush()
        os.fsync(handle.fileno())
