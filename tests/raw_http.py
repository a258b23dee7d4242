"""HTTP/1.1 requests written byte by byte on a socket, for what `requests` will not send: bodies
shorter or longer than their Content-Length, broken chunked framing, stalls."""

from __future__ import annotations

import http.client
import json
import socket


def head(method: str, target: str, headers: dict) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def connect(port: int, timeout: float = 60) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_response(sock: socket.socket) -> tuple[int, dict, bytes]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def exchange(port: int, data: bytes, half_close: bool = True, timeout: float = 60) -> tuple[int, dict, bytes]:
    """Send `data`, optionally end our side (as a client that gives up mid-body does), and
    read one response."""
    with connect(port, timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return read_response(sock)


def error_code(status_and_body: tuple[int, dict, bytes]) -> tuple[int, str]:
    status, _, body = status_and_body
    payload = json.loads(body)
    assert set(payload) == {"error"} and isinstance(payload["error"]["message"], str), payload
    return status, payload["error"]["code"]


def chunked(data: bytes, piece: int = 64 * 1024) -> bytes:
    """`data` in Transfer-Encoding: chunked framing, with its last chunk."""
    out = bytearray()
    for start in range(0, len(data), piece):
        part = data[start : start + piece]
        out += b"%x\r\n" % len(part) + part + b"\r\n"
    return bytes(out + b"0\r\n\r\n")
