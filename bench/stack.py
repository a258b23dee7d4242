"""Downloads through the production stack (`imagerepo serve`: nginx -> gunicorn) with and without
X-Accel-Redirect, beside gunicorn alone and beside nginx serving the same bytes as a static file
(the limit for anything nginx sends), same run, same machine, same images.

    .venv/bin/python -m bench.stack            # ~3 min: 5 sizes x 4 paths x 3 runs of 5 s
    .venv/bin/python -m bench.stack --quick    # ~30 s: 3 sizes, 1 run of 1 s (checks the harness)

Every path serves the same public images from one database and one chunk store, anonymous GETs
of the content URL with wrk (c=16, keep-alive) on the same cores. Runs interleave the paths, so
drift on this shared machine hits them alike; each figure is the median of the runs. Beside
throughput, the CPU time the serving processes spent per request (gunicorn's and nginx's,
masters and workers), which other load on the machine barely moves. Figures go
to bench/results/stack.json. Needs nginx (`make nginx`) and wrk (installed with apt-get as root).
"""

from __future__ import annotations

import argparse
import contextlib
import grp
import json
import os
import pwd
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

from bench import clients
from bench.payloads import PngFactory
from bench.servers import JWT_SECRET, PROJECT_ROOT, Gunicorn, _free_port, database, log
from imagerepo.stack import find_nginx

KiB, MiB = 1024, 1024 * 1024
METRICS_TOKEN = "bench-scrape-" + "q" * 32
# One chunk (256 KiB) or less: X-Accel applies. Over it: the app sends the bytes either way.
FULL_SIZES = {"16 KiB": 16 * KiB, "100 KiB": 100 * KiB, "250 KiB": 250 * KiB, "1 MiB": MiB, "20 MiB": 20 * MiB}
QUICK_SIZES = {"16 KiB": 16 * KiB, "100 KiB": 100 * KiB, "1 MiB": MiB}
PATHS = ("gunicorn", "stack", "stack+accel", "nginx static")
CONCURRENCY = 16


class Stack:
    """`python -m imagerepo serve` on a port of its own."""

    def __init__(self, env: dict, log_path: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "IMAGEREPO_PUBLIC_PORT": str(self.port)}
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> Stack:
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "imagerepo", "serve"], cwd=PROJECT_ROOT, env=self.env, stdout=out, stderr=out
            )
        _wait_healthy(self.url, self.process, timeout, self.log_path)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)


class NginxStatic:
    """nginx serving a directory of files, nothing else: what sending these bytes costs nginx."""

    def __init__(self, root: Path, runtime: Path):
        self.root, self.runtime = root, runtime
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> NginxStatic:
        self.runtime.mkdir()
        user = ""
        if os.geteuid() == 0:  # as the stack does: workers drop to nobody (files are 0644)
            account = pwd.getpwnam("nobody")
            user = f"user {account.pw_name} {grp.getgrgid(account.pw_gid).gr_name};"
        conf = self.runtime / "nginx.conf"
        conf.write_text(
            f"daemon off; worker_processes auto; pid {self.runtime}/nginx.pid; error_log stderr warn; {user}\n"
            "events { worker_connections 4096; }\n"
            f"http {{ access_log off; client_body_temp_path {self.runtime}/body; proxy_temp_path {self.runtime}/proxy;"
            f" fastcgi_temp_path {self.runtime}/f; uwsgi_temp_path {self.runtime}/u; scgi_temp_path {self.runtime}/s;"
            " default_type image/png; sendfile on; keepalive_timeout 15s;"
            f" server {{ listen 127.0.0.1:{self.port}; location / {{ root {self.root}; }}"
            " location = /ready { return 204; } } }\n"
        )
        self.process = subprocess.Popen(
            [find_nginx(), "-p", f"{self.runtime}/", "-c", str(conf), "-e", "stderr"], start_new_session=True
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                requests.get(self.url + "/ready", timeout=1)
                return self
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("nginx (static) did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            self.process.wait(20)


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if requests.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become healthy:\n{log_path.read_text()[-3000:]}")


def _cpu_seconds(root_pid: int) -> float:
    """User + system CPU of a process and everything under it (gunicorn master and workers,
    nginx master and workers): what serving costs, whatever else the machine is doing."""
    total = 0.0
    root = psutil.Process(root_pid)
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def _via_nginx_bytes(stack: Stack) -> float:
    text = requests.get(stack.url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10).text
    for line in text.splitlines():
        if line.startswith('imagerepo_download_bytes_total{via="nginx"}'):
            return float(line.rpartition(" ")[2])
    return 0.0


def _signup(url: str) -> str:
    password = "bench password 1234"
    requests.post(
        url + "/register", json={"name": "stackbench", "email": "s@example.com", "password": password}, timeout=30
    ).raise_for_status()
    response = requests.post(url + "/login", json={"username": "stackbench", "password": password}, timeout=30)
    response.raise_for_status()
    return response.json()["access_token"]


def measure(sizes: dict[str, int], runs: int, seconds: float, workdir: Path) -> dict:
    wrk = clients.ensure_wrk(log)
    if wrk is None:
        raise SystemExit("bench.stack needs wrk (apt-get install wrk)")
    static_root = workdir / "static"
    static_root.mkdir(mode=0o755)
    workdir.chmod(0o711)  # nginx's workers (nobody, as root) reach the static files, nothing else
    blob_dir = workdir / "blobs"
    base_env = {
        "IMAGEREPO_ENV": "production",
        "IMAGEREPO_JWT_SECRET": JWT_SECRET,
        "IMAGEREPO_BLOB_DIR": str(blob_dir),
        "IMAGEREPO_WORKERS": str(os.cpu_count() or 2),
        "IMAGEREPO_THREADS": "8",
        "IMAGEREPO_GC_INTERVAL_SECONDS": "0",
        "IMAGEREPO_MAX_UPLOAD_BYTES": str(max(sizes.values()) + MiB),
        "IMAGEREPO_METRICS_TOKEN": METRICS_TOKEN,
    }
    results: dict = {name: {path: [] for path in PATHS} for name in sizes}
    with database() as database_url:
        env = {**base_env, "DATABASE_URL": database_url}
        servers = {
            "gunicorn": Gunicorn("imagerepo:create_app()", env, workdir / "gunicorn.log"),
            "stack": Stack({**env, "IMAGEREPO_ACCEL_REDIRECT": "0"}, workdir / "stack.log"),
            "stack+accel": Stack({**env, "IMAGEREPO_ACCEL_REDIRECT": "1"}, workdir / "stack-accel.log"),
            "nginx static": NginxStatic(static_root, workdir / "static-nginx"),
        }
        try:
            for path, server in servers.items():
                log(f"starting {path}")
                server.start()
            token = _signup(servers["gunicorn"].url)
            factory = PngFactory(max(sizes.values()))
            urls: dict[str, dict[str, str]] = {}
            for n, (name, size) in enumerate(sizes.items()):
                data = factory.make(size, variant=n)
                response = requests.post(
                    servers["gunicorn"].url + "/images/raw",
                    params={"name": f"{n}.png"},
                    headers={"Authorization": f"Bearer {token}"},
                    data=data,
                    timeout=120,
                )
                response.raise_for_status()
                (static_root / f"{n}.png").write_bytes(data)
                (static_root / f"{n}.png").chmod(0o644)
                content = response.json()["url"]
                urls[name] = {path: servers[path].url + content for path in PATHS[:3]}
                urls[name]["nginx static"] = f"{servers['nginx static'].url}/{n}.png"
                for path, url in urls[name].items():  # byte-exact everywhere, caches warm
                    got = requests.get(url, timeout=120).content
                    if got != data:
                        raise RuntimeError(f"{path} answered {len(got)} wrong bytes for {url}")
            accel_before = _via_nginx_bytes(servers["stack+accel"])
            for run in range(runs):
                for name, size in sizes.items():
                    for path in PATHS:
                        cpu_before = _cpu_seconds(servers[path].process.pid)
                        figures = clients.run_wrk(wrk, urls[name][path], CONCURRENCY, seconds, log=log)
                        served = figures["requests_per_second"] * max(1, round(seconds))
                        figures["cpu_ms_per_request"] = (
                            (_cpu_seconds(servers[path].process.pid) - cpu_before) * 1000 / served
                        )
                        figures["mb_per_second"] = figures["requests_per_second"] * size / 1e6
                        results[name][path].append(figures)
                        log(f"run {run + 1}/{runs} {name} {path}: {figures['requests_per_second']:.0f} req/s")
            accel_bytes = _via_nginx_bytes(servers["stack+accel"]) - accel_before
        finally:
            for server in servers.values():
                server.stop()
    return {"results": results, "bytes_sent_by_nginx_via_accel": accel_bytes}


def summarise(results: dict, sizes: dict[str, int]) -> list[dict]:
    rows = []
    for name, size in sizes.items():
        row: dict = {"size": name, "bytes": size}
        for path in PATHS:
            runs = results[name][path]
            row[path] = {
                key: statistics.median(r[key] for r in runs)
                for key in ("requests_per_second", "mb_per_second", "p50_ms", "p99_ms", "cpu_ms_per_request")
            }
            row[path]["range_rps"] = [
                min(r["requests_per_second"] for r in runs),
                max(r["requests_per_second"] for r in runs),
            ]
        base = row["gunicorn"]["requests_per_second"]
        limit = row["nginx static"]["requests_per_second"]
        for path in ("stack", "stack+accel"):
            row[path]["vs_gunicorn"] = row[path]["requests_per_second"] / base
            row[path]["vs_nginx_static"] = row[path]["requests_per_second"] / limit
        row["gunicorn"]["vs_nginx_static"] = base / limit
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| size | gunicorn alone | stack (nginx -> gunicorn) | stack + X-Accel | nginx static (limit) | stack / gunicorn | stack+X-Accel / gunicorn | CPU ms per request: gunicorn / stack / +X-Accel / static |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cell = {
            path: f"{row[path]['requests_per_second']:,.0f} req/s ({row[path]['mb_per_second']:,.0f} MB/s)"
            for path in PATHS
        }
        lines.append(
            f"| {row['size']} | {cell['gunicorn']} | {cell['stack']} | {cell['stack+accel']} | {cell['nginx static']}"
            f" | {row['stack']['vs_gunicorn']:.2f} | {row['stack+accel']['vs_gunicorn']:.2f}"
            f" | {' / '.join(format(row[path]['cpu_ms_per_request'], '.2f') for path in PATHS)} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 sizes, 1 run of 1 s")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--sizes", help="comma-separated sizes in KiB instead of the default set, e.g. 100,20480")
    parser.add_argument("--json", type=Path, default=PROJECT_ROOT / "bench" / "results" / "stack.json")
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    if args.sizes:
        sizes = {f"{int(kib)} KiB": int(kib) * KiB for kib in args.sizes.split(",")}
    runs = args.runs or (1 if args.quick else 3)
    seconds = args.seconds or (1 if args.quick else 5)
    workdir = Path(tempfile.mkdtemp(prefix="imagerepo-bench-stack-"))
    try:
        measured = measure(sizes, runs, seconds, workdir)
    except BaseException:
        log(f"failed; the servers' logs are kept in {workdir}")
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    rows = summarise(measured["results"], sizes)
    print(table(rows))
    print(
        f"\nbytes nginx sent through X-Accel-Redirect during the runs: {measured['bytes_sent_by_nginx_via_accel']:,.0f}"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    meta = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "runs": runs, "seconds": seconds}
    args.json.write_text(json.dumps({"meta": meta, "rows": rows, **measured}, indent=1))
    log(f"figures in {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
