"""The benchmark harness runs end to end on tiny sizes and reports every figure, so it cannot rot.
(The benchmark itself is not a test: `make bench`.)"""

import json
import os
import math
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


FIGURES = [
    "sha256_MBps",
    *(
        f"{kind}_{role}_MBps"
        for kind in (
            "upload_limit",
            "download_limit",
            "upload_raw",
            "upload_multipart",
            "reupload_raw",
            "reupload_multipart",
            "download_cold",
            "download_cold_inline",
            "download_hot",
        )
        for role in ("small", "medium", "large")
    ),
    "small_get_rps",
    "small_get_p50_ms",
    "small_get_p99_ms",
    "small_get_token_rps",
    "ceiling_rps",
    "ceiling_p50_ms",
    "ceiling_p99_ms",
    "list_first_p50_ms",
    "list_first_p95_ms",
    "list_deep_p50_ms",
    "list_deep_p95_ms",
    "search_first_p95_ms",
    "search_deep_p95_ms",
    "search_unfiltered_p95_ms",
    "rss_growth_upload_large_MiB",
    "rss_growth_download_cold_large_MiB",
    "rss_growth_scan_MiB",
    "scan_hot_hit_rate_pct",
]


def test_quick_benchmark_reports_every_figure_and_target(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(out)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    figures = report["figures"]
    assert sorted(figures) == sorted(FIGURES)
    for key, figure in figures.items():
        assert len(figure["runs"]) >= report["meta"]["runs"] >= 2, key  # RSS of uploads: per route too
        assert all(math.isfinite(v) for v in figure["runs"]), key
        assert figure["min"] <= figure["median"] <= figure["max"], key
        # Rates and latencies are positive; memory growth may be zero on tiny sizes.
        assert figure["min"] > 0 or key.startswith("rss_growth") and figure["min"] >= 0, (key, figure)
    assert len(report["targets"]) == 18
    assert all(isinstance(t["pass"], bool) for t in report["targets"])
    # The table is printed, with every target's verdict.
    assert result.stdout.count("| PASS |") + result.stdout.count("| FAIL |") == 18
    assert "100 KiB GET c=16 vs Flask ceiling" in result.stdout


def test_s3_limit_benchmark_reports_every_measure(tmp_path, seaweed):
    """bench/s3.py on tiny sizes against the test SeaweedFS (credentials from the AWS variables,
    as an operator would run it against their own store)."""
    out = tmp_path / "s3.json"
    env = {**os.environ, **seaweed.environment()}
    result = subprocess.run(
        [sys.executable, "-m", "bench.s3", "--chunks", "6", "--threads", "1,3", "--json", str(out)]
        + ["--endpoint", seaweed.endpoint, "--bucket", seaweed.bucket]
        + ["--service-size", str(1024 * 1024), "--service-runs", "1"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(out.read_text())
    measures = [
        f"{kind}_x{t}" for t in (1, 3) for kind in ("raw_put", "raw_get", "store_put", "store_reput", "store_get")
    ]
    assert sorted(k for k in figures if k.endswith(("x1", "x3"))) == sorted(measures)
    for name in measures:
        assert figures[name]["MiB_per_s"] > 0 and figures[name]["p50_ms"] > 0, name
        assert name in result.stdout
    # The service on S3 beside the limit, and one request per chunk.
    service = figures["service"]
    for name in ("upload_vs_raw_put", "cold_download_vs_raw_get", "cold_download_vs_raw_get_x8"):
        assert service[name] > 0, name
    assert service["requests_per_chunk"]["new_upload"] == {"PutObject": 1.0}
    assert service["requests_per_chunk"]["cold_read"] == {"GetObject": 1.0}
    assert "The service on S3" in result.stdout
