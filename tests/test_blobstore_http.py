"""Corruption over HTTP, on the real server: a flipped byte in a chunk file is never served as a
complete, good-looking body. A bad first chunk is a 5xx JSON error before any byte is sent; a bad
later chunk breaks the body off short of its Content-Length, so no client can take it as whole."""

from __future__ import annotations

import http.client
import json
import urllib.parse

import pytest
import requests

from blob_helpers import flip_byte, make_blobs, sha256
from http_helpers import bmp_bytes, signup, upload
from live_server import LiveServer

CHUNK = 16 * 1024


@pytest.fixture
def corrupt_server(config):
    env = {"IMAGEREPO_CHUNK_SIZE": str(CHUNK)}
    server = LiveServer(config.database_url, config.blob_dir, workers=1, threads=4, extra_env=env).start()
    try:
        yield server
    finally:
        server.stop()


def raw_get(url: str, headers: dict) -> tuple[int, dict, bytes, bool]:
    """Status, headers, the bytes that arrived, and whether the body was complete (no client
    library in between to hide a short body)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers)
        response = connection.getresponse()
        try:
            body, complete = response.read(), True
        except http.client.IncompleteRead as short:
            body, complete = short.partial, False
        return response.status, dict(response.getheaders()), body, complete
    finally:
        connection.close()


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_flipped_byte_is_never_served_as_a_good_body(config, corrupt_server, where):
    headers = signup(corrupt_server.url, "corrupt")
    data = bmp_bytes(100, 300, seed=7)  # 90 KB, 6 chunks
    response = upload(requests.Session(), corrupt_server.url, headers, "c.bmp", [data])
    assert response.status_code == 201, response.text
    image = response.json()
    index = {"first": 0, "middle": 2, "last": len(data) // CHUNK}[where]
    bad = sha256(data[index * CHUNK : (index + 1) * CHUNK])
    blobs = make_blobs(config, chunk_size=CHUNK)
    try:
        flip_byte(blobs.store.path_for(bad), offset=10)

        status, answer_headers, body, complete = raw_get(corrupt_server.url + image["url"], headers)
        if where == "first":
            assert status >= 500
            assert answer_headers["Content-Type"].startswith("application/json")
            assert json.loads(body)["error"]["code"]
        else:
            assert status == 200
            assert not complete and len(body) < int(answer_headers["Content-Length"])
            assert body == data[: len(body)], "what was sent before the bad chunk is right"
            assert len(body) <= index * CHUNK
        # A range that starts in the bad chunk fails before its body starts.
        start = index * CHUNK + 5
        status, answer_headers, body, _ = raw_get(
            corrupt_server.url + image["url"], {**headers, "Range": f"bytes={start}-{start + 100}"}
        )
        assert status >= 500 and answer_headers["Content-Type"].startswith("application/json")
        # A range that avoids it is served, exact.
        if index > 0:
            status, _, body, complete = raw_get(
                corrupt_server.url + image["url"], {**headers, "Range": f"bytes=0-{CHUNK - 1}"}
            )
            assert status == 206 and complete and body == data[:CHUNK]
        # The read that found the chunk wrong moved its file aside (quarantine/): fsck reports it
        # missing, and the next upload of those bytes writes it again.
        report = blobs.check(verify_content=True)
        assert report.missing_chunks == [bad] and report.problems == 1
        # The server logged the digest for the operator.
        assert bad in corrupt_server.log_path.read_text()
    finally:
        blobs.db.close()
