"""Uploads (both routes, then again for dedup) against the upload limit, and downloads hot and
cold against the SHA-256 rate and the download limit (bench/baselines.py)."""

from __future__ import annotations

import contextlib
import hashlib
import time

from bench import baselines, clients
from bench.harness import MiB, check_image, mbps
from bench.servers import Gunicorn, RssSampler, log


def sha256_baseline(bench) -> None:
    data = bench.payload(bench.plan.sizes["large"])
    for _ in range(bench.plan.runs):
        bench.figures.add("sha256_MBps", baselines.sha256_rate(data), "MB/s")


def limits(bench, role: str, data: bytes) -> None:
    rate, _, digests, root = baselines.upload_limit(data, bench.workdir)
    bench.figures.add(f"upload_limit_{role}_MBps", rate, "MB/s")
    bench.figures.add(f"download_limit_{role}_MBps", baselines.download_limit(root, digests, len(data)), "MB/s")
    baselines.remove(root)


def uploads(bench, server: Gunicorn, token: str) -> dict[str, tuple[int, bytes]]:
    """Every size through both routes, then the same bytes again (dedup), each run interleaved
    with the upload limit so both see the same noise. Returns role -> (image id, bytes)."""
    stored = {}
    client = clients.Client(server.url, token)
    for run in range(bench.plan.runs):
        for role, size in bench.plan.sizes.items():
            data = bench.payload(size)
            limits(bench, role, data)
            for route in ("raw", "multipart"):
                if route == "multipart":
                    data = bench.payload(size)
                send = client.upload_raw if route == "raw" else client.upload_multipart
                sampler = RssSampler(server) if role == "large" else contextlib.nullcontext()
                profile = (
                    bench.profiler.phase(f"upload_{route}_large", server)
                    if role == "large" and run == 0
                    else contextlib.nullcontext()
                )
                with profile, sampler:
                    start = time.perf_counter()
                    image = send(data)
                    seconds = time.perf_counter() - start
                check_image(image, data)
                bench.figures.add(f"upload_{route}_{role}_MBps", mbps(size, seconds), "MB/s")
                if role == "large":
                    bench.figures.add("rss_growth_upload_large_MiB", sampler.growth / MiB, "MiB")
                start = time.perf_counter()
                again = send(data)
                seconds = time.perf_counter() - start
                check_image(again, data)
                bench.figures.add(f"reupload_{route}_{role}_MBps", mbps(size, seconds), "MB/s")
                stored.setdefault(role, (image["id"], data))
            # The limit again after the server's turn: the report pairs each run's server
            # figures with the mean of the limit just before and just after them, since the
            # shared disk's fsync rate drifts within seconds.
            limits(bench, role, bench.payload(size))
        log(
            f"upload run {run + 1}/{bench.plan.runs}: "
            + ", ".join(
                f"{role} raw {bench.figures.data[f'upload_raw_{role}_MBps']['runs'][-1]:.0f}"
                f" / multipart {bench.figures.data[f'upload_multipart_{role}_MBps']['runs'][-1]:.0f}"
                f" / limit {bench.figures.data[f'upload_limit_{role}_MBps']['runs'][-1]:.0f} MB/s"
                for role in bench.plan.sizes
            )
        )
    client.close()
    return stored


def downloads(bench, servers: dict[str, Gunicorn], stored: dict) -> None:
    """Each object from each server of `servers` (kind -> server), the kinds interleaved run by
    run so they see the same noise. `hot`: one keep-alive connection (so one worker) that has
    read each object once; `cold`: a server whose chunk cache is off, so every chunk is read and
    verified (read ahead for 8 chunks or more, the default); `cold_inline`: the same with
    IMAGEREPO_READ_AHEAD=0."""
    connections = {kind: clients.Client(server.url) for kind, server in servers.items()}
    for role, (image_id, data) in stored.items():
        path = f"/images/{image_id}/content"
        for kind, client in connections.items():
            # Checked once, untimed: the bytes come back exact.
            _, _, body = client.request("GET", path)
            if hashlib.sha256(body).digest() != hashlib.sha256(data).digest():
                raise RuntimeError(f"{kind} download of image {image_id} returned different bytes")
            del body
        for run in range(bench.plan.runs):
            for kind, client in connections.items():
                server = servers[kind]
                measure_rss = role == "large" and kind == "cold"  # hot: bench/scan.py, fresh servers
                sampler = RssSampler(server) if measure_rss else contextlib.nullcontext()
                profile = (
                    bench.profiler.phase(f"download_{kind}_large", server)
                    if role == "large" and run == 0
                    else contextlib.nullcontext()
                )
                with profile, sampler:
                    start = time.perf_counter()
                    got = client.download(path)
                    seconds = time.perf_counter() - start
                assert got == len(data), (got, len(data))
                bench.figures.add(f"download_{kind}_{role}_MBps", mbps(got, seconds), "MB/s")
                if measure_rss:
                    bench.figures.add(f"rss_growth_download_{kind}_large_MiB", sampler.growth / MiB, "MiB")
        log(
            f"download {role}: "
            + ", ".join(f"{kind} {bench.figures.median(f'download_{kind}_{role}_MBps'):.0f}" for kind in servers)
            + " MB/s"
        )
    for client in connections.values():
        client.close()
