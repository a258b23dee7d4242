"""An upload without a valid token is refused before a byte of its body is read: the real server
answers 401 while the client has sent only the headers of a large body."""

from __future__ import annotations

import socket
from urllib.parse import urlparse

import pytest

from http_helpers import MULTIPART_TYPE

BODY_BYTES = 50 * 1024 * 1024


def _answer_to_headers_only(url: str, path: str, content_type: str, authorization: str | None) -> bytes:
    """Send the request line and headers of a large POST, no body, and read the answer."""
    parsed = urlparse(url)
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {parsed.netloc}",
        f"Content-Type: {content_type}",
        f"Content-Length: {BODY_BYTES}",
    ]
    if authorization:
        lines.append(f"Authorization: {authorization}")
    with socket.create_connection((parsed.hostname, parsed.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        # A server that read the body first would wait here for 50 MiB that never come.
        answer = b""
        while b"\r\n\r\n" not in answer:
            piece = sock.recv(4096)
            if not piece:
                break
            answer += piece
    return answer


@pytest.mark.parametrize(
    "path, content_type",
    [
        ("/images/raw?name=a.png", "application/octet-stream"),
        ("/images", MULTIPART_TYPE),
        ("/images/batch", MULTIPART_TYPE),
    ],
)
@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token"], ids=["anonymous", "bad-token"])
def test_upload_without_a_valid_token_is_refused_before_its_body(server, path, content_type, authorization):
    answer = _answer_to_headers_only(server.url, path, content_type, authorization)
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
