"""python -m bench.variants [--quick] [--json PATH]

What a 500 px variant costs, on the same source images: a 2000x1333 JPEG, a 24 megapixel
JPEG and a large PNG (photo-like: smooth gradients plus grain, so they compress like photos).
For each source, in this process, one at a time:

  * ImageRepo's pipeline (`imagerepo.variants.pipeline.render`: header and pixel check,
    libvips thumbnail with shrink-on-load, sRGB, metadata stripped, JPEG q80);
  * bare pyvips: `thumbnail_buffer` + `jpegsave_buffer` q80, the library's own limit;
  * Pillow: `open` + `draft` (its JPEG shrink-on-load, to twice the target like thumbnail's own
    reducing_gap) + `exif_transpose` + `thumbnail` + JPEG q80.

CPU time is `time.process_time()` (all threads of the process: libvips runs its own) per
variant, the median of several runs; wall time beside it. Then the peak RSS of a fresh child
process making one thumbnail of each source, by each library: growth is VmHWM (peak resident
set) minus VmRSS just before, after a warm-up on a tiny image so library start-up is not counted.

Progress goes to stderr, the table to stdout, figures to bench/results/variants.json.
`--child-rss PATH TYPE WIDTH LIB` is the child's mode (also used by tests/test_variants_memory.py).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = PROJECT_ROOT / "bench" / "results" / "variants.json"
TARGET_WIDTH = 500

# name, source type, width, height, runs (full; --quick divides)
SOURCES = [
    ("jpeg_2000x1333", "image/jpeg", 2000, 1333, 30),
    ("jpeg_24mp", "image/jpeg", 6000, 4000, 8),
    ("png_large", "image/png", 4000, 3000, 4),
]
QUICK_SCALE = 4  # --quick: sides / 4, runs / 4 (at least 2)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_source(path: Path, source_type: str, width: int, height: int) -> None:
    """A photo-like image made by libvips (streamed: a 24 MP source costs little memory)."""
    import pyvips

    x = pyvips.Image.xyz(width, height)
    red = x[0] * (255.0 / width)
    green = x[1] * (255.0 / height)
    blue = ((x[0] + x[1]) * (255.0 / (width + height))).invert() + 255
    grain = pyvips.Image.gaussnoise(width, height, mean=0, sigma=6)
    image = (red.bandjoin([green, blue]) + grain).cast("uchar").copy(interpretation="srgb")
    if source_type == "image/jpeg":
        image.jpegsave(str(path), Q=90)
    else:
        image.pngsave(str(path), compression=6)


def _vips_bare(data: bytes) -> bytes:
    import pyvips

    image = pyvips.Image.thumbnail_buffer(data, TARGET_WIDTH, height=10_000_000, size="down")
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    return image.jpegsave_buffer(Q=80, keep=pyvips.enums.ForeignKeep.NONE)


def _pillow(data: bytes) -> bytes:
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as image:
        height = max(1, round(image.height * TARGET_WIDTH / image.width))
        # JPEG only: decode at 1/2, 1/4 or 1/8, keeping at least twice the target for the
        # resampler (what thumbnail's own reducing_gap=2 does, and what libvips leaves too);
        # drafting straight to the target is faster and visibly worse (aliasing).
        image.draft("RGB", (TARGET_WIDTH * 2, height * 2))
        image = ImageOps.exif_transpose(image)
        image.thumbnail((TARGET_WIDTH, 10_000_000))
        out = io.BytesIO()
        image.convert("RGB").save(out, "JPEG", quality=80, optimize=True)
        return out.getvalue()


def _pipeline(data: bytes, source_type: str) -> bytes:
    from imagerepo.variants.pipeline import render_bytes
    from imagerepo.variants.transform import normalise

    return render_bytes(data, source_type, normalise(TARGET_WIDTH, 0, "inside", "jpeg", 80))[0]


LIBRARIES = {
    "pipeline": _pipeline,
    "pyvips": lambda data, source_type: _vips_bare(data),
    "pillow": lambda data, source_type: _pillow(data),
}


def cpu_per_variant(data: bytes, source_type: str, library: str, runs: int) -> dict:
    make = LIBRARIES[library]
    make(data, source_type)  # warm-up: library start-up and first-call costs are not counted
    cpu, wall = [], []
    for _ in range(runs):
        c0, w0 = time.process_time(), time.perf_counter()
        out = make(data, source_type)
        cpu.append((time.process_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
    return {"cpu_ms": statistics.median(cpu), "wall_ms": statistics.median(wall), "out_bytes": len(out)}


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def child_rss(path: str, source_type: str, width: int, library: str) -> dict:
    """In a fresh process: warm the library up on a tiny image, then make one `width` px JPEG
    variant of the file at `path`, reading it as a stream (the pipeline) or whole (the others)."""
    global TARGET_WIDTH
    TARGET_WIDTH = width
    from PIL import Image

    tiny = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(tiny, "JPEG")
    LIBRARIES[library](tiny.getvalue(), "image/jpeg")
    before = _status_kib("VmRSS")
    if library == "pipeline":
        from imagerepo.variants.pipeline import render
        from imagerepo.variants.transform import normalise

        sink = io.BytesIO()
        with open(path, "rb") as handle:
            info = render(handle, source_type, normalise(width, 0, "inside", "jpeg", 80), sink)
        size = (info.width, info.height)
    else:
        data = Path(path).read_bytes()
        before += len(data) // 1024  # the whole file in memory is the caller's, not the library's
        with Image.open(io.BytesIO(LIBRARIES[library](data, source_type))) as out:
            size = out.size
    peak = _status_kib("VmHWM")
    return {"before_MiB": before / 1024, "peak_MiB": peak / 1024, "growth_MiB": (peak - before) / 1024, "size": size}


def measure_rss(path: Path, source_type: str, width: int, library: str) -> dict:
    """Run `child_rss` in a new interpreter (a fork would inherit this process's peak)."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.variants", "--child-rss", str(path), source_type, str(width), library],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(result.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.variants", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sources, few runs: checks the harness")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--no-http", action="store_true", help="skip the phase against the real server")
    parser.add_argument("--child-rss", nargs=4, metavar=("PATH", "TYPE", "WIDTH", "LIB"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_rss:
        path, source_type, width, library = args.child_rss
        print(json.dumps(child_rss(path, source_type, int(width), library)))
        return 0

    figures: dict[str, dict] = {}
    made: list[tuple[str, str, Path]] = []
    http_runs: dict[str, int] = {}
    http: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-variants-") as workdir:
        for name, source_type, width, height, runs in SOURCES:
            if args.quick:
                width, height, runs = width // QUICK_SCALE, height // QUICK_SCALE, max(2, runs // QUICK_SCALE)
            path = Path(workdir) / f"{name}.{source_type.split('/')[1]}"
            log(f"{name}: making a {width}x{height} source")
            make_source(path, source_type, width, height)
            data = path.read_bytes()
            entry = figures[name] = {"source": f"{width}x{height} {source_type}", "source_bytes": len(data)}
            for library in LIBRARIES:
                log(f"{name}: {library}, {runs} variants of {TARGET_WIDTH} px")
                entry[library] = cpu_per_variant(data, source_type, library, runs)
            for library in LIBRARIES:
                log(f"{name}: {library}, peak RSS in a fresh process")
                entry[library].update(rss=measure_rss(path, source_type, TARGET_WIDTH, library))
            made.append((name, source_type, path))
            http_runs[name] = runs
        if not args.no_http:
            from bench import variants_http

            http = variants_http.measure(made, http_runs, Path(workdir))
    print(table(figures))
    if http:
        print()
        print(variants_http.table(http, figures))
    meta = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "libraries": _versions(),
        "quick": args.quick,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"meta": meta, "figures": figures, "http": http}, indent=2))
    log(f"figures written to {args.json}")
    return 0


def _versions() -> dict:
    import PIL
    import pyvips

    return {
        "libvips": ".".join(str(pyvips.version(i)) for i in range(3)),
        "pyvips": pyvips.__version__,
        "pillow": PIL.__version__,
    }


def table(figures: dict) -> str:
    lines = [
        "500 px JPEG q80 variant: CPU ms per variant (wall ms), peak RSS growth MiB",
        f"{'source':<16} {'bytes':>10} | {'pipeline':>16} {'pyvips':>16} {'pillow':>16} | {'RSS pipeline':>12} {'pyvips':>8} {'pillow':>8}",
    ]
    for name, entry in figures.items():
        cells = [f"{entry[lib]['cpu_ms']:7.1f} ({entry[lib]['wall_ms']:6.1f})" for lib in LIBRARIES]
        rss = [f"{entry[lib]['rss']['growth_MiB']:.1f}" for lib in LIBRARIES]
        lines.append(
            f"{name:<16} {entry['source_bytes']:>10} | {cells[0]:>16} {cells[1]:>16} {cells[2]:>16} | {rss[0]:>12} {rss[1]:>8} {rss[2]:>8}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
