"""The client side: uploads and downloads over plain http.client (bodies sent from memory
views and read into one reused buffer, so the client costs little CPU next to the server),
sequential latency sampling, and a load generator for concurrent small GETs: wrk when it is
installed (the harness installs it with apt-get when root), else a multi-process Python one."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import re
import shutil
import statistics
import subprocess
import time
import urllib.parse
import uuid

_PIECE = 1024 * 1024


class HttpError(RuntimeError):
    pass


def _connection(base_url: str) -> http.client.HTTPConnection:
    parts = urllib.parse.urlsplit(base_url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)


def _pieces(data: bytes):
    view = memoryview(data)
    for offset in range(0, len(data), _PIECE):
        yield view[offset : offset + _PIECE]


class Client:
    """One keep-alive connection to one server (so repeated requests reach the same worker)."""

    def __init__(self, base_url: str, token: str | None = None):
        self.base_url = base_url
        self.token = token
        self.conn = _connection(base_url)
        self._buffer = bytearray(_PIECE)

    def close(self) -> None:
        self.conn.close()

    def _headers(self, extra: dict | None = None) -> dict:
        headers = dict(extra or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _send(self, method: str, path: str, body=None, headers: dict | None = None) -> http.client.HTTPResponse:
        if body is not None and not isinstance(body, bytes):
            # A streamed body cannot be sent twice: start it on a fresh connection rather than
            # on one the server may have closed as idle (gunicorn's keepalive is 5 s).
            self.conn.close()
            self.conn.request(method, path, body=body, headers=self._headers(headers))
            return self.conn.getresponse()
        try:
            self.conn.request(method, path, body=body, headers=self._headers(headers))
            return self.conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            self.conn.close()  # the idle keep-alive connection was closed by the server: once more
            self.conn.request(method, path, body=body, headers=self._headers(headers))
            return self.conn.getresponse()

    def request(
        self, method: str, path: str, body=None, headers: dict | None = None, expect: int | tuple = 200
    ) -> tuple[int, dict, bytes]:
        response = self._send(method, path, body, headers)
        payload = response.read()
        if response.status not in ((expect,) if isinstance(expect, int) else expect):
            raise HttpError(f"{method} {path} -> {response.status}: {payload[:500]!r}")
        return response.status, dict(response.getheaders()), payload

    def json(self, method: str, path: str, body=None, expect: int | tuple = 200) -> dict:
        data = None if body is None else json.dumps(body).encode()
        _, _, payload = self.request(method, path, data, {"Content-Type": "application/json"}, expect)
        return json.loads(payload)

    def upload_multipart(self, data: bytes, filename: str = "bench.png", is_private: bool = False) -> dict:
        boundary = "bench-" + uuid.uuid4().hex
        fields = "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in (("description", "benchmark upload"), ("isPrivate", int(is_private)))
        )
        head = (
            fields + f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        headers = {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + len(data) + len(tail)),
        }
        _, _, payload = self.request(
            "POST", "/images", body=_chain(head, data, tail), headers=headers, expect=(200, 201)
        )
        return json.loads(payload)

    def upload_raw(self, data: bytes, filename: str = "bench.png") -> dict:
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
        _, _, payload = self.request(
            "POST",
            f"/images/raw?name={urllib.parse.quote(filename)}",
            body=_pieces(data),
            headers=headers,
            expect=(200, 201),
        )
        return json.loads(payload)

    def download(self, path: str) -> int:
        """GET `path`, reading the body into one reused buffer; returns the byte count."""
        response = self._send("GET", path)
        if response.status != 200:
            raise HttpError(f"GET {path} -> {response.status}: {response.read()[:500]!r}")
        view = memoryview(self._buffer)
        total = 0
        while True:
            n = response.readinto(view)
            if not n:
                break
            total += n
        return total


def _chain(head: bytes, data: bytes, tail: bytes):
    yield head
    yield from _pieces(data)
    yield tail


def latencies(client: Client, path: str, count: int) -> list[float]:
    """Seconds per request, one request at a time on one keep-alive connection."""
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        client.request("GET", path)
        samples.append(time.perf_counter() - start)
    return samples


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1] if q < 100 else ordered[-1]


# -- concurrent load ------------------------------------------------------------------------


def ensure_wrk(log, install: bool = True) -> str | None:
    found = shutil.which("wrk")
    if found:
        return found
    import os

    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk is missing; installing it with apt-get (Debian package 'wrk')")
        result = subprocess.run(
            ["apt-get", "install", "-y", "wrk"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        if result.returncode != 0:
            log(f"apt-get install wrk failed ({result.stderr.strip()[-200:]}); using the Python load generator")
        return shutil.which("wrk")
    log("wrk is missing and cannot be installed here; using the Python load generator")
    return None


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _wrk_seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(
    wrk: str, url: str, connections: int, seconds: float, threads: int = 2, headers: dict | None = None, log=None
) -> dict:
    # A long timeout: a slow answer belongs in the latency figures, not among dropped requests.
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "--latency"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(command + [url], check=True, capture_output=True, text=True).stdout
    result = {"requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}
    for label, key in (("50%", "p50_ms"), ("99%", "p99_ms")):
        value = re.search(rf"^\s+{re.escape(label)}\s+(\S+)", output, re.M).group(1)
        result[key] = _wrk_seconds(value) * 1000
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if errors or (socket_errors and any(int(n) for n in socket_errors.groups()[:3])):
        raise HttpError(f"wrk saw failures against {url}:\n{output}")
    result["timeouts"] = int(socket_errors.group(4)) if socket_errors else 0
    if result["timeouts"] and log:
        log(f"wrk: {result['timeouts']} requests to {url} took over 10 s")
    return result


def _python_worker(args) -> tuple[list[float], float]:
    url, headers, connections, seconds = args
    import threading

    parts = urllib.parse.urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    samples: list[float] = []
    lock = threading.Lock()
    began = time.monotonic()
    deadline = began + seconds

    def loop():
        conn = _connection(url)
        mine = []
        buffer = bytearray(_PIECE)
        while time.monotonic() < deadline:
            start = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            while response.readinto(buffer):
                pass
            if response.status != 200:
                raise HttpError(f"GET {url} -> {response.status}")
            mine.append(time.perf_counter() - start)
        with lock:
            samples.extend(mine)

    workers = [threading.Thread(target=loop) for _ in range(connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return samples, time.monotonic() - began


def run_python_load(url: str, connections: int, seconds: float, headers: dict | None = None) -> dict:
    """`connections` keep-alive connections spread over two processes (the GIL would make one
    process the bottleneck); each connection sends its next request when the last one ends."""
    processes = 2
    shares = [connections // processes + (1 if i < connections % processes else 0) for i in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = pool.map(_python_worker, [(url, headers or {}, n, seconds) for n in shares])
    samples = [s for part, _ in results for s in part]
    return {
        "requests_per_second": sum(len(part) / elapsed for part, elapsed in results),
        "p50_ms": percentile(samples, 50) * 1000,
        "p99_ms": percentile(samples, 99) * 1000,
    }
