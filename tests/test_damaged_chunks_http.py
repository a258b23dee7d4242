"""A damaged chunk file on disk is not adopted by the next upload that brings the right bytes
(the real server over HTTP)."""

from __future__ import annotations

import hashlib

import pytest
import requests

from http_helpers import bmp_bytes, signup

CHUNK = 256 * 1024  # the server's default chunk size


@pytest.mark.parametrize("damage", ["zero-length", "flipped bit"])
def test_an_upload_sharing_a_damaged_chunk_replaces_it(server, config, damage):
    auth = signup(server.url, "alice")
    first = bmp_bytes(400, 400, seed=5)  # 480 054 bytes: two chunks
    second = first[:1000] + bytes([first[1000] ^ 0xFF]) + first[1001:]  # same second chunk
    shared = hashlib.sha256(first[CHUNK : 2 * CHUNK]).hexdigest()
    assert hashlib.sha256(second[CHUNK : 2 * CHUNK]).hexdigest() == shared

    one = requests.post(server.url + "/images/raw?name=one.bmp", data=first, headers=auth, timeout=30).json()
    path = config.blob_dir / shared[:2] / shared[2:4] / shared
    # As a crash with IMAGEREPO_FSYNC=0 leaves it, or as a disk returns it.
    path.write_bytes(b"" if damage == "zero-length" else first[CHUNK:][:-1] + bytes([first[-1] ^ 1]))

    two = requests.post(server.url + "/images/raw?name=two.bmp", data=second, headers=auth, timeout=30)
    assert two.status_code == 201
    for image, expected in ((two.json(), second), (one, first)):
        content = requests.get(server.url + f"/images/{image['id']}/content", headers=auth, timeout=30)
        assert content.status_code == 200 and content.content == expected
    assert path.read_bytes() == first[CHUNK:]


@pytest.mark.parametrize("damage", ["zero-length", "truncated", "flipped bit", "deleted"])
def test_re_uploading_the_exact_bytes_mends_a_damaged_chunk(server, config, damage):
    """The deduplicated path (the object exists already) checks every chunk file too: size
    always, bytes where the server cannot vouch for the file, and replaces a bad one."""
    auth = signup(server.url, "alice")
    data = bmp_bytes(400, 400, seed=6)  # two chunks
    second = hashlib.sha256(data[CHUNK:]).hexdigest()
    one = requests.post(server.url + "/images/raw?name=one.bmp", data=data, headers=auth, timeout=30).json()
    path = config.blob_dir / second[:2] / second[2:4] / second
    good = path.read_bytes()
    if damage == "deleted":
        path.unlink()
    else:
        path.write_bytes(
            {"zero-length": b"", "truncated": good[:-100], "flipped bit": good[:-1] + bytes([good[-1] ^ 1])}[damage]
        )
    with pytest.raises(requests.exceptions.ChunkedEncodingError):  # the download stops short
        requests.get(server.url + f"/images/{one['id']}/content", headers=auth, timeout=30)

    again = requests.post(server.url + "/images/raw?name=again.bmp", data=data, headers=auth, timeout=30)
    assert again.status_code == 201
    assert path.read_bytes() == good
    for image in (one, again.json()):
        content = requests.get(server.url + f"/images/{image['id']}/content", headers=auth, timeout=30)
        assert content.status_code == 200 and content.content == data
    staging = config.blob_dir / "tmp"
    assert not [p for p in staging.rglob("*") if p.is_file()], "no staged file is left behind"
