"""A download whose image is deleted and collected while it streams ends short, and the server
says what happened: the content was freed, not "referenced but missing" (which would send an
operator hunting for a damaged disk). Against the real server, with `gc` run by the operator."""

from __future__ import annotations

import time

import requests

from http_helpers import bmp_bytes, signup
from live_server import live_server
from test_cli_blobstore import cli


def test_an_image_deleted_and_collected_mid_download_is_logged_as_freed(config):
    data = bmp_bytes(2600, 2600, seed=8)  # about 20 MB: more than the socket buffers hold
    # A small cache keeps this object out of it, so every chunk is read from disk as it is sent.
    env = {"IMAGEREPO_CACHE_BYTES": str(1024 * 1024)}
    with live_server(config.database_url, config.blob_dir, extra_env=env) as server:
        auth = signup(server.url, "alice")
        image = requests.post(server.url + "/images/raw?name=big.bmp", data=data, headers=auth, timeout=60).json()
        got = bytearray()
        with requests.get(server.url + f"/images/{image['id']}/content", headers=auth, stream=True, timeout=60) as r:
            assert r.status_code == 200
            body = r.iter_content(64 * 1024)
            got += next(body)
            assert requests.delete(server.url + f"/images/{image['id']}", headers=auth, timeout=30).status_code == 202
            code, report, stderr = cli(config, "gc", "--grace", "0")
            assert code == 0 and report["chunks_freed"] > 0, stderr
            try:
                for piece in body:
                    got += piece
            except requests.exceptions.RequestException:
                pass
        assert len(got) < len(data), "the download ended short (the bytes are gone)"
        assert bytes(got) == data[: len(got)], "what was sent is right"
        time.sleep(0.5)
        log = server.log_path.read_text()
    assert "referenced but missing" not in log
    assert "was freed while being read: its images were deleted and collected" in log
