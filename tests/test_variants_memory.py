"""Memory of making a thumbnail, measured in a fresh process (bench.variants' child mode): a
50 megapixel JPEG becomes a 200 px thumbnail without a full-size decode, and a large PNG is
streamed through the resampler instead of being decoded whole."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import variant_samples as samples
from PIL import Image

PROJECT_ROOT = Path(__file__).resolve().parent.parent


MiB = 1024 * 1024


def peak_growth(path, source_type: str, width: int) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "bench.variants", "--child-rss", str(path), source_type, str(width), "pipeline"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_50_megapixel_jpeg_thumbnail_never_decodes_full_size(tmp_path):
    width, height = 8660, 5774  # 50.0 megapixels: 143 MiB as RGB, decoded
    path = tmp_path / "big.jpg"
    samples.photo(width, height).save(path, "JPEG", quality=85)
    found = peak_growth(path, "image/jpeg", 200)
    assert found["size"] == [200, 133]
    full_decode_mib = width * height * 3 / MiB
    # Shrink-on-load decodes at 1/8 (1083x722, 2.2 MiB); libvips' buffers and threads add a
    # few MiB. A full-size decode could not stay under a quarter of the frame.
    assert found["growth_MiB"] < full_decode_mib / 4, found


def test_a_large_png_is_streamed_not_decoded_whole(tmp_path):
    """PNG has no shrink-on-load: libvips streams it through the resampler a strip at a time,
    so memory follows the width, not the height. Four times the rows must cost far less than
    the extra rows' decoded size (Pillow, which decodes whole, grows by all of it)."""
    width = 4000
    found = {}
    for height in (1500, 6000):
        path = tmp_path / f"tall-{height}.png"
        Image.effect_noise((width, height), 30).convert("RGB").save(path, "PNG", compress_level=1)
        found[height] = peak_growth(path, "image/png", 500)
    assert found[6000]["size"] == [500, 750]
    extra_rows_mib = width * (6000 - 1500) * 3 / MiB  # 51.5 MiB
    assert found[6000]["growth_MiB"] - found[1500]["growth_MiB"] < extra_rows_mib / 4, found
    assert found[6000]["growth_MiB"] < width * 6000 * 3 / MiB / 2, found
