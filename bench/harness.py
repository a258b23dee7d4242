"""The state one benchmark run shares between its measures: the plan (sizes, runs), the work
directory, the figures, the payload factory, the environment of every server it starts."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import platform
from pathlib import Path

import psutil

from bench import clients
from bench.payloads import PngFactory
from bench.report import Figures
from bench.servers import JWT_SECRET, Profiler

MiB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Plan:
    sizes: dict[str, int]
    small_get_bytes: int
    runs: int
    load_seconds: float
    concurrency: int
    list_rows: int
    list_samples: int
    hot_images: int  # the hot set of the scan-resistance measure (bench/scan.py)
    scan_cache_bytes: int | None  # its server's IMAGEREPO_CACHE_BYTES (None: the default)
    quick: bool = False  # a smoke test: never installs anything (wrk)


FULL = Plan(
    sizes={"small": 1 * MiB, "medium": 20 * MiB, "large": 150_000_000},
    small_get_bytes=100 * 1024,
    runs=3,
    load_seconds=5,
    concurrency=16,
    list_rows=100_000,
    list_samples=200,
    hot_images=100,
    scan_cache_bytes=None,
)
QUICK = Plan(
    sizes={"small": 64 * 1024, "medium": 512 * 1024, "large": 2 * MiB},
    small_get_bytes=100 * 1024,
    runs=2,
    load_seconds=1,
    concurrency=16,
    list_rows=2_000,
    list_samples=20,
    hot_images=20,
    scan_cache_bytes=8 * MiB,  # its size gate (1 MiB) then keeps the 2 MiB "large" image out
    quick=True,
)


def machine() -> dict:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_GiB": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def mbps(nbytes: int, seconds: float) -> float:
    return nbytes / 1e6 / seconds


class Bench:
    def __init__(self, plan: Plan, workdir: Path, profiler: Profiler):
        self.plan = plan
        self.workdir = workdir
        self.profiler = profiler
        self.figures = Figures()
        self.factory = PngFactory(max(plan.sizes.values()))
        self.variant = 0
        self.notes: list[str] = []
        self.load_generator = "none"

    def payload(self, size: int) -> bytes:
        self.variant += 1
        return self.factory.make(size, self.variant)

    def server_env(self, database_url: str, blob_dir: Path, **extra) -> dict:
        return {
            "DATABASE_URL": database_url,
            "IMAGEREPO_ENV": "production",
            "IMAGEREPO_JWT_SECRET": JWT_SECRET,
            "IMAGEREPO_BLOB_DIR": str(blob_dir),
            "IMAGEREPO_WORKERS": str(os.cpu_count() or 2),
            "IMAGEREPO_THREADS": "8",
            "IMAGEREPO_MAX_UPLOAD_BYTES": str(max(self.plan.sizes.values()) + MiB),
            **{k: str(v) for k, v in extra.items()},
        }


def cache_size(plan: Plan) -> str:
    return f"{plan.scan_cache_bytes // MiB} MiB" if plan.scan_cache_bytes else "default, 256 MiB"


def accounts(url: str) -> tuple[list[int], list[str]]:
    client = clients.Client(url)
    users, tokens = [], []
    for name in ("bench_alice", "bench_bob"):
        user = client.json(
            "POST",
            "/register",
            {"name": name, "email": f"{name}@example.com", "password": "benchmark password"},
            expect=201,
        )
        users.append(user["id"])
        tokens.append(
            client.json("POST", "/login", {"username": name, "password": "benchmark password"})["access_token"]
        )
    client.close()
    return users, tokens


def check_image(image: dict, data: bytes) -> None:
    if image.get("size") != len(data) or image.get("sha256") != hashlib.sha256(data).hexdigest():
        raise RuntimeError(f"upload answered {image}, expected size {len(data)}")
