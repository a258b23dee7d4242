"""Helpers for blob-store tests over HTTP: an account on a live server, BMP images built as
streams (so a test never holds a big file in memory), multipart bodies made from generators."""

from __future__ import annotations

import hashlib
import random
import struct
from typing import Iterable, Iterator

import requests

PASSWORD = "correct horse battery"


def signup(base_url: str, name: str) -> dict:
    """Register and log in; the Authorization header for the new account."""
    requests.post(
        base_url + "/register", json={"name": name, "email": f"{name}@example.com", "password": PASSWORD}, timeout=30
    ).raise_for_status()
    response = requests.post(base_url + "/login", json={"username": name, "password": PASSWORD}, timeout=30)
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def bmp_header(width: int, height: int) -> bytes:
    row = (width * 3 + 3) // 4 * 4
    pixels = row * height
    return (
        b"BM"
        + struct.pack("<IHHI", 54 + pixels, 0, 0, 54)
        + struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, pixels, 2835, 2835, 0, 0)
    )


def bmp_size(width: int, height: int) -> int:
    return 54 + (width * 3 + 3) // 4 * 4 * height


def bmp_stream(width: int, height: int, seed: int, piece: int = 1024 * 1024) -> Iterator[bytes]:
    """A 24-bit BMP of pseudo-random pixels, generated piece by piece (same seed, same bytes)."""
    rng = random.Random(seed)
    yield bmp_header(width, height)
    remaining = bmp_size(width, height) - 54
    while remaining:
        size = min(piece, remaining)
        yield rng.randbytes(size)
        remaining -= size


def bmp_bytes(width: int, height: int, seed: int) -> bytes:
    return b"".join(bmp_stream(width, height, seed))


def digest_of(pieces: Iterable[bytes]) -> tuple[str, int]:
    whole, size = hashlib.sha256(), 0
    for data in pieces:
        whole.update(data)
        size += len(data)
    return whole.hexdigest(), size


BOUNDARY = "imagerepo-blob-test-boundary"


def multipart(filename: str, pieces: Iterable[bytes], fields: dict | None = None) -> Iterator[bytes]:
    """A multipart/form-data body with the file in field `file`, streamed from `pieces`."""
    for key, value in (fields or {}).items():
        yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    yield from pieces
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


MULTIPART_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def upload(session, base_url: str, headers: dict, filename: str, pieces: Iterable[bytes], timeout=120):
    return session.post(
        base_url + "/images",
        headers={**headers, "Content-Type": MULTIPART_TYPE},
        data=multipart(filename, pieces),
        timeout=timeout,
    )
