"""Request bodies as a hostile or careless client sends them, against the real server (gunicorn
with gunicorn.conf.py): cut short, longer than announced, broken chunked framing, too large
for the route, too many text parts. Each is refused in the JSON error shape, and nothing is
stored or left staged."""

from __future__ import annotations

import hashlib
import json
import socket
import threading

import psycopg
import pytest
import requests

from http_helpers import BOUNDARY, MULTIPART_TYPE, bmp_bytes, multipart, signup
from raw_http import chunked, connect, error_code, exchange, head, read_response
from test_memory_blobstore import RssSampler

MiB = 1024 * 1024
IMAGE = bmp_bytes(300, 300, seed=9)  # 270 054 bytes: more than one 256 KiB chunk


def stored(config) -> dict:
    """What the upload left: rows, chunk files and staged files."""
    with psycopg.connect(config.database_url) as conn:
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("images", "objects", "chunks")}
    files = [p for p in config.blob_dir.rglob("*") if p.is_file() and not p.name.startswith(".healthz")]
    return {**counts, "files": len(files)}


NOTHING = {"images": 0, "objects": 0, "chunks": 0, "files": 0}


def text_part(name: str, value: str) -> bytes:
    return f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()


def batch_body(files: list[tuple[str, bytes]], fields: list[tuple[str, str]] = ()) -> bytes:
    parts = [text_part(name, value) for name, value in fields]
    for name, data in files:
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def upload_request(route: str, auth: dict) -> tuple[str, dict, bytes]:
    """(target, headers, complete body) of a well-formed upload of IMAGE on `route`."""
    if route == "raw":
        return "/images/raw?name=cut.bmp", {**auth, "Content-Type": "application/octet-stream"}, IMAGE
    headers = {**auth, "Content-Type": MULTIPART_TYPE}
    if route == "multipart":
        return "/images", headers, b"".join(multipart("cut.bmp", [IMAGE], {"description": "cut"}))
    return "/images/batch", headers, batch_body([("a.bmp", IMAGE), ("b.bmp", bmp_bytes(40, 40, seed=2))])


@pytest.mark.parametrize("route", ["raw", "multipart", "batch"])
@pytest.mark.parametrize("cut", ["in the file", "after the last byte"])
def test_a_body_shorter_than_its_content_length_is_refused_and_nothing_stays(server, config, route, cut):
    """The client announces the whole body, sends part of it and half-closes. "after the last
    byte": the body is complete but a few bytes short of what was announced, which even
    multipart cannot notice by itself."""
    target, headers, body = upload_request(route, signup(server.url, "alice"))
    sent = body[: len(body) // 2] if cut == "in the file" else body
    announced = len(body) + (0 if cut == "in the file" else 10)
    answer = exchange(server.port, head("POST", target, {**headers, "Content-Length": announced}) + sent)
    assert error_code(answer) == (400, "incomplete_body")
    assert stored(config) == NOTHING


@pytest.mark.parametrize("route", ["raw", "multipart", "batch"])
def test_a_chunked_body_cut_short_is_refused_and_nothing_stays(server, config, route):
    target, headers, body = upload_request(route, signup(server.url, "alice"))
    framed = chunked(body)
    cut = framed[: len(framed) - 5 - 70_000]  # inside the last data chunk, no last chunk
    answer = exchange(server.port, head("POST", target, {**headers, "Transfer-Encoding": "chunked"}) + cut)
    assert error_code(answer) == (400, "incomplete_body")
    assert stored(config) == NOTHING


def test_a_complete_chunked_upload_is_stored(server, config):
    target, headers, body = upload_request("raw", signup(server.url, "alice"))
    status, _, answer = exchange(
        server.port, head("POST", target, {**headers, "Transfer-Encoding": "chunked"}) + chunked(body)
    )
    assert status == 201 and json.loads(answer)["sha256"] == hashlib.sha256(IMAGE).hexdigest()


BAD_CHUNKED = {
    "bad chunk size": b"zz\r\nabc\r\n0\r\n\r\n",
    "missing CRLF after data": b"3\r\nabcXY",
    "bad extension": b"3;=x\r\nabc\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("kind", sorted(BAD_CHUNKED))
def test_malformed_chunked_bodies_are_400_on_every_body_route(server, kind):
    auth = signup(server.url, "alice")
    png = requests.post(
        server.url + "/images/raw?name=x.bmp", data=bmp_bytes(2, 2, seed=1), headers=auth, timeout=30
    ).json()
    routes = [
        ("POST", "/login", {"Content-Type": "application/json"}),
        ("POST", "/register", {"Content-Type": "application/json"}),
        ("POST", "/images", {**auth, "Content-Type": MULTIPART_TYPE}),
        ("POST", "/images/raw?name=x.png", auth),
        ("POST", "/images/batch", {**auth, "Content-Type": MULTIPART_TYPE}),
        ("PUT", f"/images/{png['id']}", {**auth, "Content-Type": "application/json"}),
    ]
    for method, target, headers in routes:
        answer = exchange(
            server.port, head(method, target, {**headers, "Transfer-Encoding": "chunked"}) + BAD_CHUNKED[kind]
        )
        assert error_code(answer) == (400, "malformed_body"), (method, target)
    assert "Traceback" not in server.log_path.read_text()


def test_bytes_past_content_length_are_the_next_request_never_part_of_this_body(server, config):
    """HTTP/1.1 ends a body at Content-Length: what follows on the connection is the next
    request, which the server cannot tell from a pipelined one. The upload stores exactly the
    announced bytes, the extra bytes are refused as a request, and the connection is closed."""
    target, headers, body = upload_request("raw", signup(server.url, "alice"))
    with connect(server.port) as sock:
        sock.sendall(head("POST", target, {**headers, "Content-Length": len(body)}) + body + b"trailing junk\r\n\r\n")
        status, _, answer = read_response(sock)
        assert status == 201 and json.loads(answer)["size"] == len(IMAGE)
        assert json.loads(answer)["sha256"] == hashlib.sha256(IMAGE).hexdigest()
        status, _, _ = read_response(sock)
        assert status == 400
        assert sock.recv(1) == b""
    assert stored(config)["images"] == 1


def test_a_json_route_refuses_a_large_body_before_reading_it(server):
    """A 94 MB body announced to /login is refused from its headers alone: the server answers
    without waiting for the body (which this client never sends)."""
    with connect(server.port, timeout=10) as sock:
        sock.sendall(head("POST", "/login", {"Content-Type": "application/json", "Content-Length": 94_000_000}))
        status, _, body = read_response(sock)
    assert (status, json.loads(body)["error"]["code"]) == (413, "too_large")


def test_a_json_route_refuses_a_large_chunked_body_at_the_limit(server):
    payload = json.dumps({"username": "alice", "password": "x" * 200_000}).encode()
    answer = exchange(
        server.port,
        head("POST", "/login", {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        + chunked(payload, piece=16 * 1024),
    )
    assert error_code(answer) == (413, "too_large")
    # Under the limit, the same route still works.
    signup(server.url, "bob")


def _send_ignoring_errors(sock: socket.socket, pieces) -> threading.Thread:
    """Stream `pieces` from a thread: the server may answer and close before the end."""

    def run():
        try:
            for piece in pieces:
                sock.sendall(piece)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    "fields",
    [
        [("tags", "x")] * 65,  # more text fields than any form needs
        [("description", "d" * 65 * 1024)],  # one field past its size
        [("tags", "t" * 60 * 1024)] * 5,  # 300 KiB of text in all
    ],
    ids=["65 fields", "one 65 KiB field", "300 KiB in five fields"],
)
def test_batch_text_fields_are_capped_in_number_and_size(server, config, fields):
    auth = signup(server.url, "alice")
    answer = requests.post(
        server.url + "/images/batch",
        data=batch_body([("a.bmp", IMAGE)], fields),
        headers={**auth, "Content-Type": MULTIPART_TYPE},
        timeout=60,
    )
    assert (answer.status_code, answer.json()["error"]["code"]) == (413, "too_large"), answer.text[:300]
    assert stored(config) == NOTHING


def test_900_text_parts_of_60_kib_cost_the_server_no_memory(server, config):
    """54 MB of text parts: refused once 256 KiB of text has arrived, never held."""
    auth = signup(server.url, "alice")
    part = text_part("tags", "t" * 60 * 1024)
    tail = batch_body([("a.bmp", IMAGE)])
    body_length = 900 * len(part) + len(tail)
    worker_pids = server.pids()[1:]
    with RssSampler(worker_pids) as rss, connect(server.port) as sock:
        before = rss.current()
        request = head(
            "POST",
            "/images/batch",
            {**auth, "Content-Type": MULTIPART_TYPE, "Content-Length": body_length},
        )
        sender = _send_ignoring_errors(sock, [request] + [part] * 900 + [tail])
        answer = read_response(sock)
        sender.join(30)
    assert error_code(answer) == (413, "too_large")
    assert rss.peak - before < 20 * MiB, f"server grew by {(rss.peak - before) / MiB:.0f} MiB"
    assert stored(config) == NOTHING
