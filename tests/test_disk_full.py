"""A full disk, for real: the server runs with its chunk store on a 3 MiB tmpfs mounted in a
mount namespace of its own (unshare(1); with a user namespace when not root), and
uploads larger than the room left. The answer is 507 in the JSON shape, nothing staged stays,
and the service goes on storing what fits."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import requests

from http_helpers import MULTIPART_TYPE, bmp_bytes, multipart, signup
from live_server import LiveServer

MOUNT_TMPFS = 'mount -t tmpfs -o size=3m tmpfs "$0" && exec "$@"'
# As root, a mount namespace is enough. Otherwise a user namespace too, where our uid is root;
# not for root, whose uid 0 would then lose access to files of other users (the embedded
# PostgreSQL's socket, owned by the user it runs as).
NAMESPACES = ["--mount"] if os.geteuid() == 0 else ["--user", "--map-root-user", "--mount"]
TMPFS = ["unshare", *NAMESPACES, "sh", "-c", MOUNT_TMPFS]


@pytest.fixture
def full_disk_server(config):
    config.blob_dir.mkdir(parents=True)
    server = LiveServer(config.database_url, config.blob_dir, wrapper=TMPFS + [str(config.blob_dir)]).start()
    # The tmpfs is visible only inside the server's mount namespace: look through its root.
    server.blob_dir = config.blob_dir
    server.store_view = Path(f"/proc/{server.process.pid}/root") / config.blob_dir.relative_to("/")
    try:
        yield server
    finally:
        server.stop()


def test_an_upload_the_disk_cannot_hold_is_507_and_leaves_nothing(full_disk_server):
    server = full_disk_server
    mounts = Path(f"/proc/{server.process.pid}/mounts").read_text().splitlines()
    assert any(line.split()[1:3] == [str(server.blob_dir), "tmpfs"] for line in mounts), "the store is on the tmpfs"
    auth = signup(server.url, "alice")
    big = bmp_bytes(1200, 1200, seed=3)  # 4.3 MB on a 3 MiB filesystem
    answers = [
        requests.post(server.url + "/images/raw?name=big.bmp", data=big, headers=auth, timeout=60),
        requests.post(
            server.url + "/images",
            data=b"".join(multipart("big.bmp", [big])),
            headers={**auth, "Content-Type": MULTIPART_TYPE},
            timeout=60,
        ),
        requests.post(
            server.url + "/images/batch",
            data=b"".join(multipart("big.bmp", [big])),
            headers={**auth, "Content-Type": MULTIPART_TYPE},
            timeout=60,
        ),
    ]
    for answer in answers:
        assert answer.status_code == 507, answer.text[:300]
        assert answer.json()["error"]["code"] == "insufficient_storage"
    assert [p for p in server.store_view.rglob("*") if p.is_file()] == []
    assert requests.get(server.url + "/images?mine=1", headers=auth, timeout=30).json()["images"] == []

    small = bmp_bytes(300, 300, seed=4)
    stored = requests.post(server.url + "/images/raw?name=small.bmp", data=small, headers=auth, timeout=60)
    assert stored.status_code == 201
    assert stored.json()["sha256"] == hashlib.sha256(small).hexdigest()
    content = requests.get(server.url + stored.json()["url"], headers=auth, timeout=30)
    assert content.content == small
    log = server.log_path.read_text()
    assert "Traceback" not in log, log[-3000:]
