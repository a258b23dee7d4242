"""Stalled clients against the real server (gunicorn with gunicorn.conf.py, 2 workers x 8
threads): a client that stops sending in its headers or in its body frees its thread within
the read timeout, so it cannot take the service down, and nothing is logged as a crash."""

from __future__ import annotations

import json
import time

import requests

from live_server import LiveServer
from raw_http import connect, head, read_response

READ_TIMEOUT = 2


def test_stalled_clients_free_their_threads_within_the_read_timeout(config):
    server = LiveServer(
        config.database_url,
        config.blob_dir,
        workers=2,
        threads=8,
        extra_env={"IMAGEREPO_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT)},
    ).start()
    stalled_in_body, stalled_in_headers = [], []
    try:
        # More than every thread of both workers: headers plus one byte of a 100-byte body...
        for _ in range(16):
            sock = connect(server.port, timeout=30)
            sock.sendall(head("POST", "/login", {"Content-Type": "application/json", "Content-Length": 100}) + b"{")
            stalled_in_body.append(sock)
        # ... and half a request's headers. The clients keep their connections open throughout.
        for _ in range(8):
            sock = connect(server.port, timeout=30)
            sock.sendall(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            stalled_in_headers.append(sock)
        stalled_at = time.monotonic()
        time.sleep(0.5)  # every stalled request is in a thread by now

        # All 24 may have landed on one worker: three rounds of 8 threads, each freed after the
        # read timeout. Asked again and again until well after every stall has timed out and
        # its connection has been closed: closing must not hold the worker up either.
        bound = 3 * READ_TIMEOUT + 3
        until = time.monotonic() + 4 * READ_TIMEOUT
        while time.monotonic() < until:
            started = time.monotonic()
            answer = requests.get(server.url + "/healthz", timeout=bound)
            assert answer.status_code == 200
            assert time.monotonic() - started < bound
            time.sleep(0.2)

        for sock in stalled_in_body:
            status, _, body = read_response(sock)
            assert (status, json.loads(body)["error"]["code"]) == (408, "request_timeout")
        for sock in stalled_in_body + stalled_in_headers:
            # Closed by the server (the body stallers after their answer, the others without one)...
            assert sock.recv(100) == b""
        # ... all of them by now, not one lingering close after another on the worker's main loop.
        assert time.monotonic() - stalled_at < 4 * READ_TIMEOUT + 3
    finally:
        for sock in stalled_in_body + stalled_in_headers:
            sock.close()
        server.stop()
    log = server.log_path.read_text()
    assert "Traceback" not in log and '" 500 ' not in log, log[-3000:]
    assert log.count('"POST /login HTTP/1.1" 408') == 16


def test_a_slow_but_steady_upload_is_not_cut(config):
    """The timeout bounds the wait for each byte, not the request: a body that keeps arriving,
    however slowly, is read to its end."""
    from http_helpers import bmp_bytes, signup

    server = LiveServer(
        config.database_url, config.blob_dir, extra_env={"IMAGEREPO_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT)}
    ).start()
    try:
        auth = signup(server.url, "alice")
        image = bmp_bytes(30, 30, seed=4)
        with connect(server.port) as sock:
            sock.sendall(head("POST", "/images/raw?name=slow.bmp", {**auth, "Content-Length": len(image)}))
            pieces = [image[i : i + len(image) // 4 + 1] for i in range(0, len(image), len(image) // 4 + 1)]
            for piece in pieces:  # 4-5 pieces, 1 s apart: longer than the timeout in all
                time.sleep(READ_TIMEOUT / 2)
                sock.sendall(piece)
            status, _, body = read_response(sock)
        assert status == 201 and json.loads(body)["size"] == len(image)
    finally:
        server.stop()
