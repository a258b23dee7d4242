"""A damaged chunk file on disk is not adopted by the next upload that brings the right bytes
(the real server over HTTP)."""

from __future__ import annotations

import hashlib
import os

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


def test_bit_rot_in_a_file_the_server_wrote_is_mended_by_the_next_upload(server, config):
    """Bit rot changes neither inode, size nor mtime, so the process that wrote the file would
    trust it; the download that finds it wrong moves it aside, and the next upload writes it."""
    auth = signup(server.url, "alice")
    data = bmp_bytes(400, 400, seed=7)  # two chunks
    second = hashlib.sha256(data[CHUNK:]).hexdigest()
    one = requests.post(server.url + "/images/raw?name=one.bmp", data=data, headers=auth, timeout=30).json()
    path = config.blob_dir / second[:2] / second[2:4] / second
    before = os.stat(path)
    with open(path, "r+b") as handle:
        handle.seek(5000)
        byte = handle.read(1)
        handle.seek(5000)
        handle.write(bytes([byte[0] ^ 0x04]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_ino == before.st_ino

    with pytest.raises(requests.exceptions.ChunkedEncodingError):  # never wrong bytes: cut short
        requests.get(server.url + f"/images/{one['id']}/content", headers=auth, timeout=30)
    quarantined = list((config.blob_dir / "quarantine").iterdir())
    assert len(quarantined) == 1 and quarantined[0].name.startswith(second), "moved aside, kept"

    again = requests.post(server.url + "/images/raw?name=again.bmp", data=data, headers=auth, timeout=30)
    assert again.status_code == 201
    for image in (one, again.json()):
        content = requests.get(server.url + f"/images/{image['id']}/content", headers=auth, timeout=30)
        assert content.status_code == 200 and content.content == data
