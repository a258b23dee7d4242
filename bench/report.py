"""Figures (median, min, max of several runs), the issue's targets, the table and the JSON."""

from __future__ import annotations

import json
import statistics
from pathlib import Path


class Figures:
    def __init__(self):
        self.data: dict[str, dict] = {}

    def add(self, key: str, value: float, unit: str) -> None:
        entry = self.data.setdefault(key, {"unit": unit, "runs": []})
        entry["runs"].append(value)
        runs = entry["runs"]
        entry.update(median=statistics.median(runs), min=min(runs), max=max(runs))

    def median(self, key: str) -> float:
        return self.data[key]["median"]

    def __contains__(self, key: str) -> bool:
        return key in self.data


def ratio(figures: Figures, key: str, baseline: str) -> float:
    """Median of per-run ratios when the two were measured interleaved (same number of runs, or
    the baseline measured before and after each run), else the ratio of the medians."""
    measured, base = figures.data[key]["runs"], figures.data[baseline]["runs"]
    if len(base) == 2 * len(measured):
        base = [(base[2 * i] + base[2 * i + 1]) / 2 for i in range(len(measured))]
    elif len(base) * 2 == len(measured):  # two routes per run against one limit pair
        base = [b for b in base for _ in (0, 1)]
    if len(base) == len(measured):
        return statistics.median(m / b for m, b in zip(measured, base, strict=True))
    return figures.median(key) / figures.median(baseline)


def evaluate_targets(figures: Figures, sizes: dict[str, int]) -> list[dict]:
    """The targets (issue 16, and those of issue 5 it did not replace), each with the figure it
    judges, its same-run baseline and ratio where it has one, and PASS or FAIL. A target whose
    figures were not measured (`--only`) is left out."""
    targets = []

    def versus(name: str, key: str, baseline: str, floor: float) -> None:
        if key in figures and baseline in figures:
            value = ratio(figures, key, baseline)
            targets.append(
                {"target": name, "figure": key, "baseline": baseline, "rule": f">= {floor:.2f}", "ratio": value}
                | {"pass": bool(value >= floor)}
            )

    def bound(name: str, key: str, rule: str, ok) -> None:
        if key in figures:
            entry = figures.data[key]
            targets.append(
                {"target": name, "figure": key, "baseline": None, "rule": rule, "ratio": None}
                | {"pass": bool(ok(entry))}
            )

    medium, large = _size(sizes["medium"]), _size(sizes["large"])
    versus(
        f"#16 upload {medium} (multipart) >= 0.60 of upload limit",
        "upload_multipart_medium_MBps",
        "upload_limit_medium_MBps",
        0.60,
    )
    versus(
        f"#5 upload {medium} (raw) >= 0.60 of upload limit", "upload_raw_medium_MBps", "upload_limit_medium_MBps", 0.60
    )
    for route in ("raw", "multipart"):
        versus(
            f"#5 upload {large} ({route}) >= 0.60 of upload limit",
            f"upload_{route}_large_MBps",
            "upload_limit_large_MBps",
            0.60,
        )
    versus(f"#16 cold download {medium} >= 0.55 of SHA-256 rate", "download_cold_medium_MBps", "sha256_MBps", 0.55)
    versus(f"#5 cold download {large} >= 0.50 of SHA-256 rate", "download_cold_large_MBps", "sha256_MBps", 0.50)
    versus(f"#5 hot download {medium} faster than cold", "download_hot_medium_MBps", "download_cold_medium_MBps", 1.0)
    versus("#16 100 KiB GET with token >= 0.60 of framework ceiling (c=16)", "small_get_token_rps", "ceiling_rps", 0.60)
    versus("#16 100 KiB GET anonymous >= 0.70 of framework ceiling (c=16)", "small_get_rps", "ceiling_rps", 0.70)
    bound("#16 100 KiB GET p99 < 20 ms (c=16)", "small_get_p99_ms", "< 20 ms", lambda e: e["median"] < 20)
    for page in ("first", "deep"):
        bound(f"#5 GET /images {page} page p95 < 20 ms", f"list_{page}_p95_ms", "< 20 ms", lambda e: e["median"] < 20)
    for page in ("first", "deep"):
        key = f"search_{page}_p95_ms"
        bound(
            f"#16 search, a word in 10% of images, {page} page p95 < 20 ms", key, "< 20 ms", lambda e: e["median"] < 20
        )
    # Memory: judged on the worst run, a ceiling is about the peak, not the typical case.
    for key, what in (("rss_growth_upload_large_MiB", "upload"), ("rss_growth_download_cold_large_MiB", "download")):
        bound(f"#5 RSS growth during {large} {what} < 100 MiB (worst run)", key, "< 100 MiB", lambda e: e["max"] < 100)
    bound(
        f"#16 RSS growth during {large} upload + two downloads < 50 MiB (worst run)",
        "rss_growth_scan_MiB",
        "< 50 MiB",
        lambda e: e["max"] < 50,
    )
    bound(
        f"#16 hot set hit rate while {large} objects stream >= 90% (worst run)",
        "scan_hot_hit_rate_pct",
        ">= 90%",
        lambda e: e["min"] >= 90,
    )
    return targets


def _size(n: int) -> str:
    if n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MiB"
    if n % 1024 == 0 and n < 1024 * 1024:
        return f"{n // 1024} KiB"
    return f"{n / 1e6:g} MB"


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cell(figures: Figures, key: str) -> str:
    if key not in figures:
        return "-"
    entry = figures.data[key]
    if len(entry["runs"]) == 1:
        return _fmt(entry["median"])
    return f"{_fmt(entry['median'])} ({_fmt(entry['min'])}-{_fmt(entry['max'])})"


def rows(figures: Figures, sizes: dict[str, int]) -> list[tuple[str, str, str, str, str]]:
    """(measure, ImageRepo, baseline, ratio, unit) rows of the table."""
    out = []

    def row(label: str, key: str, baseline: str | None, unit: str):
        ratio_ = "-"
        if baseline and key in figures and baseline in figures:
            ratio_ = f"{ratio(figures, key, baseline):.2f}"
        out.append((label, _cell(figures, key), _cell(figures, baseline) if baseline else "-", ratio_, unit))

    roles = ("small", "medium", "large")
    for role in roles:
        for route in ("raw", "multipart"):
            row(
                f"upload {_size(sizes[role])} ({route}) vs upload limit",
                f"upload_{route}_{role}_MBps",
                f"upload_limit_{role}_MBps",
                "MB/s",
            )
    for role in roles:
        for route in ("raw", "multipart"):
            row(
                f"re-upload {_size(sizes[role])} ({route}, dedup) vs upload limit",
                f"reupload_{route}_{role}_MBps",
                f"upload_limit_{role}_MBps",
                "MB/s",
            )
    for role in roles:
        row(f"download cold {_size(sizes[role])} vs SHA-256", f"download_cold_{role}_MBps", "sha256_MBps", "MB/s")
        row(
            f"download cold {_size(sizes[role])} vs read+verify",
            f"download_cold_{role}_MBps",
            f"download_limit_{role}_MBps",
            "MB/s",
        )
        row(
            f"download cold {_size(sizes[role])}, in line vs default (read-ahead)",
            f"download_cold_inline_{role}_MBps",
            f"download_cold_{role}_MBps",
            "MB/s",
        )
        row(
            f"download hot {_size(sizes[role])} vs cold",
            f"download_hot_{role}_MBps",
            f"download_cold_{role}_MBps",
            "MB/s",
        )
    row("100 KiB GET c=16 vs Flask ceiling", "small_get_rps", "ceiling_rps", "req/s")
    row("100 KiB GET c=16 p50 (vs ceiling)", "small_get_p50_ms", "ceiling_p50_ms", "ms")
    row("100 KiB GET c=16 p99 (vs ceiling)", "small_get_p99_ms", "ceiling_p99_ms", "ms")
    row("100 KiB GET c=16 with token", "small_get_token_rps", "ceiling_rps", "req/s")
    for page in ("first", "deep"):
        row(f"GET /images {page} page p50", f"list_{page}_p50_ms", None, "ms")
        row(f"GET /images {page} page p95", f"list_{page}_p95_ms", None, "ms")
    for page in ("first", "deep"):
        row(
            f"search (word in 10%) {page} page p95 vs unfiltered",
            f"search_{page}_p95_ms",
            "search_unfiltered_p95_ms",
            "ms",
        )
    row(f"RSS growth, {_size(sizes['large'])} upload", "rss_growth_upload_large_MiB", None, "MiB")
    row(f"RSS growth, {_size(sizes['large'])} cold download", "rss_growth_download_cold_large_MiB", None, "MiB")
    row(f"RSS growth, {_size(sizes['large'])} upload + two downloads", "rss_growth_scan_MiB", None, "MiB")
    row(f"hot set hit rate while {_size(sizes['large'])} objects stream", "scan_hot_hit_rate_pct", None, "%")
    return out


def table(figures: Figures, sizes: dict[str, int], targets: list[dict]) -> str:
    header = ("measure", "ImageRepo median (min-max)", "baseline median (min-max)", "ratio", "unit")
    body = rows(figures, sizes)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    lines += ["", "| target | measured | same-run baseline | ratio | verdict |", "|---|---|---|---|---|"]
    for t in targets:
        baseline = f"{_cell(figures, t['baseline'])} ({t['baseline']})" if t["baseline"] else "-"
        ratio_ = f"{t['ratio']:.2f}" if t["ratio"] is not None else "-"
        verdict = "PASS" if t["pass"] else "FAIL"
        lines.append(f"| {t['target']} | {_cell(figures, t['figure'])} | {baseline} | {ratio_} | {verdict} |")
    return "\n".join(lines)


def write_json(path: Path, meta: dict, figures: Figures, targets: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "figures": figures.data, "targets": targets}, indent=2) + "\n")
