"""The variant pipeline on real images made in the test: orientation, metadata stripping,
alpha, first frames, colour, sizes, bombs, hostile bytes and DICOM."""

from __future__ import annotations

import io

import pytest
import variant_samples as samples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from imagesamples import png_claiming
from PIL import Image

from imagerepo.variants.errors import VariantTooLarge, VariantUnsupported
from imagerepo.variants.pipeline import render, render_bytes, supported_formats
from imagerepo.variants.transform import Transform, parse


def transform(query: str, source_type: str = "image/jpeg") -> Transform:
    pairs = [tuple(part.split("=", 1)) for part in query.split("&")]
    return parse(pairs, source_type, formats=supported_formats())


def variant(data: bytes, source_type: str, query: str) -> tuple[Image.Image, bytes]:
    out, info = render_bytes(data, source_type, transform(query, source_type))
    image = Image.open(io.BytesIO(out))
    image.load()
    assert (info.width, info.height) == image.size
    assert info.size == len(out)
    assert info.content_type == Image.MIME[image.format]
    return image, out


def near(pixel, expected, tolerance=40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


# -- orientation and metadata -------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["jpeg", "webp", "png", "avif"])
def test_exif_orientation_is_applied_and_every_tag_is_stripped(fmt):
    # Stored 600x400 with orientation 6: shown rotated 90 degrees clockwise, 400x600, with the
    # red block (stored top-left) at the top right.
    source = samples.photo_jpeg(600, 400, orientation=6)
    assert Image.open(io.BytesIO(source)).getexif()[0x0112] == 6
    image, out = variant(source, "image/jpeg", f"width=200&format={fmt}")
    assert image.size == (200, 300)
    rgb = image.convert("RGB")
    assert near(rgb.getpixel((195, 5)), (255, 0, 0)), "the red block must be at the top right"
    assert not near(rgb.getpixel((5, 5)), (255, 0, 0))
    assert not image.getexif(), "no EXIF at all"
    assert not set(image.info) & {"exif", "xmp", "icc_profile", "XML:com.adobe.xmp"}
    for secret in (samples.CAMERA_MAKE.encode(), b"Exif\0\0", b"GPS"):
        assert secret not in out


def test_full_size_conversion_strips_gps_too():
    source = samples.photo_jpeg(320, 240, orientation=8)
    image, out = variant(source, "image/jpeg", "format=png")
    assert image.size == (240, 320)
    assert samples.CAMERA_MAKE.encode() not in out and not image.getexif()


def test_png_text_chunks_are_not_copied():
    image, out = variant(samples.alpha_png(), "image/png", "width=200")
    assert b"secret note" not in out and "Comment" not in image.info


# -- alpha ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["png", "webp", "avif"])
def test_alpha_is_kept_where_the_format_has_it(fmt):
    image, _ = variant(samples.alpha_png(300, 200), "image/png", f"width=200&format={fmt}")
    assert image.size == (200, 133)
    rgba = image.convert("RGBA")
    assert near(rgba.getpixel((20, 60)), (0, 0, 255, 255))
    assert rgba.getpixel((180, 60))[3] == 0


def test_jpeg_flattens_alpha_onto_white():
    image, _ = variant(samples.alpha_png(300, 200), "image/png", "width=200&format=jpeg")
    assert image.mode == "RGB"
    assert near(image.getpixel((20, 60)), (0, 0, 255))
    assert near(image.getpixel((180, 60)), (255, 255, 255), tolerance=3)


# -- animations -----------------------------------------------------------------------------------
@pytest.mark.parametrize("source_fmt, source_type", [("GIF", "image/gif"), ("WEBP", "image/webp")])
@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_animations_give_their_first_frame_only(source_fmt, source_type, fmt):
    source = samples.animation(source_fmt, 120, 80)
    assert Image.open(io.BytesIO(source)).n_frames == 3
    image, _ = variant(source, source_type, f"width=64&format={fmt}")
    assert image.size == (64, 43)
    assert getattr(image, "n_frames", 1) == 1
    assert near(image.convert("RGB").getpixel((32, 20)), samples.FRAME_COLOURS[0])


# -- colour -------------------------------------------------------------------------------------------
def test_cmyk_jpeg_becomes_srgb():
    image, _ = variant(samples.cmyk_jpeg(), "image/jpeg", "width=128")
    assert image.mode == "RGB"
    red, green, blue = image.getpixel((64, 30))
    assert red > 180 and green < 90 and blue < 90


def test_16_bit_png_becomes_8_bit_with_its_ramp():
    image, _ = variant(samples.png16(256, 64), "image/png", "width=128")
    assert image.mode in ("L", "RGB")
    grey = image.convert("L")
    assert grey.getpixel((2, 10)) < 10 and grey.getpixel((125, 10)) > 245


# -- sizes -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "query, size",
    [
        ("width=200", (200, 133)),
        ("height=200", (300, 200)),
        ("width=200&height=200", (200, 133)),
        ("width=200&height=200&fit=cover", (200, 200)),
        ("width=96&height=200&fit=cover", (96, 200)),
        ("width=3840", (600, 400)),  # never enlarged
        ("width=3840&height=3840&fit=cover", (600, 400)),
        ("format=webp", (600, 400)),
    ],
)
def test_sizes(query, size):
    image, _ = variant(samples.photo_jpeg(600, 400), "image/jpeg", query)
    assert image.size == size


def test_cover_crops_the_centre():
    # 600x400 with a red block 120 px wide at the top left: scaled to 300x200, the block is
    # 60 px wide; a centred 200x200 crop cuts 50 px off each side, leaving 10 px of it.
    image, _ = variant(samples.photo_jpeg(600, 400), "image/jpeg", "width=200&height=200&fit=cover")
    assert near(image.getpixel((4, 20)), (255, 0, 0))
    assert not near(image.getpixel((16, 20)), (255, 0, 0))


def test_file_input_gives_the_same_bytes_as_bytes_input(tmp_path):
    source = samples.photo_jpeg(800, 600)
    path = tmp_path / "source.jpg"
    path.write_bytes(source)
    query = transform("width=200&format=webp")
    with open(path, "rb") as handle:
        streamed = io.BytesIO()
        info = render(handle, "image/jpeg", query, streamed)
    assert streamed.getvalue() == render_bytes(source, "image/jpeg", query)[0]
    assert (info.width, info.height) == (200, 150)


@pytest.mark.parametrize("fmt, source_type", [("TIFF", "image/tiff"), ("BMP", "image/bmp")])
def test_tiff_and_bmp_sources(fmt, source_type):
    out = io.BytesIO()
    samples.photo(400, 300).save(out, fmt)
    image, _ = variant(out.getvalue(), source_type, "width=200")
    assert image.format == "PNG" and image.size == (200, 150)
    assert near(image.getpixel((5, 5)), (255, 0, 0))


# -- refusals ---------------------------------------------------------------------------------------
def test_decompression_bombs_are_refused_before_decoding():
    bomb = samples.png_bomb(20_000, 20_000)
    assert len(bomb) < 200_000
    with pytest.raises(VariantTooLarge, match="20000x20000 pixels, more than the limit"):
        render_bytes(bomb, "image/png", transform("width=200", "image/png"))
    # A header alone (no pixel data) is refused too, one way or the other.
    with pytest.raises((VariantTooLarge, VariantUnsupported)):
        render_bytes(png_claiming(20_000, 20_000), "image/png", transform("width=200", "image/png"))


def test_a_jpeg_header_promising_too_many_pixels_is_refused():
    source = bytearray(samples.photo_jpeg(64, 48))
    sof = source.index(b"\xff\xc0")  # baseline frame header: length(2) precision(1) height(2) width(2)
    source[sof + 5 : sof + 9] = (60000).to_bytes(2, "big") + (60000).to_bytes(2, "big")
    with pytest.raises(VariantTooLarge):
        render_bytes(bytes(source), "image/jpeg", transform("width=200"))


def test_bytes_that_are_not_their_stored_type_are_refused():
    png = samples.alpha_png()
    with pytest.raises(VariantUnsupported, match="not what its type says"):
        render_bytes(png, "image/jpeg", transform("width=200"))
    with pytest.raises(VariantUnsupported):
        render_bytes(b"GIF89a" + bytes(20), "image/gif", transform("width=200", "image/gif"))
    with pytest.raises(VariantUnsupported):
        render_bytes(b"<svg/>", "image/svg+xml", transform("width=200", "image/svg+xml"))


def test_a_truncated_jpeg_gives_a_variant_or_a_clear_refusal():
    source = samples.photo_jpeg(600, 400)
    for cut in (200, len(source) // 2, len(source) - 10):
        try:
            image, _ = variant(source[:cut], "image/jpeg", "width=200")
        except VariantUnsupported:
            continue
        assert image.size == (200, 133)


_FUZZ_SOURCE = samples.photo_jpeg(96, 64, quality=70)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_FUZZ_SOURCE) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_corrupted_jpegs_never_escape_as_anything_but_domain_errors(edits):
    data = bytearray(_FUZZ_SOURCE)
    for position, value in edits:
        data[position] = value
    try:
        render_bytes(bytes(data), "image/jpeg", transform("width=64&format=webp"))
    except (VariantUnsupported, VariantTooLarge):
        pass


# -- DICOM --------------------------------------------------------------------------------------------
def test_dicom_preview_applies_rescale_and_window():
    image, out = variant(samples.dicom_ct(128, 256), "application/dicom", "width=256")
    assert image.format == "PNG" and image.mode == "L" and image.size == (256, 128)
    row = [image.getpixel((x, 64)) for x in range(256)]
    # Stored values rise 0..4095 across 256 columns (16 per column); the window maps stored
    # 768..1280 (columns 48..80) onto black..white.
    assert max(row[:44]) == 0 and min(row[84:]) == 255
    assert 100 <= row[64] <= 156
    assert b"Test^Patient" not in out


def test_dicom_monochrome1_is_inverted():
    image, _ = variant(samples.dicom_ct(64, 256, photometric="MONOCHROME1"), "application/dicom", "format=png")
    assert image.getpixel((2, 10)) == 255 and image.getpixel((250, 10)) == 0


def test_dicom_multiframe_previews_the_first_frame():
    image, _ = variant(samples.dicom_ct(64, 256, frames=3), "application/dicom", "format=png")
    assert image.getpixel((2, 10)) == 0, "the first frame's dark end, not the uniform later frames"


def test_dicom_rgb_and_rle():
    image, _ = variant(samples.dicom_rgb(), "application/dicom", "width=64&format=jpeg")
    assert image.size == (64, 43) and near(image.getpixel((30, 20)), (0, 200, 0))
    image, _ = variant(samples.dicom_rle(64, 128), "application/dicom", "width=64")
    assert image.size == (64, 32)
    assert image.getpixel((1, 5)) < 10 and image.getpixel((62, 5)) > 245


def test_dicom_that_cannot_be_decoded_is_a_clear_refusal():
    with pytest.raises(VariantUnsupported, match="cannot be decoded here .*1.2.840.10008.1.2.4.80"):
        render_bytes(samples.dicom_jpeg_ls(), "application/dicom", transform("width=64", "application/dicom"))
    with pytest.raises(VariantUnsupported, match="no image"):
        render_bytes(samples.dicom_without_pixels(), "application/dicom", transform("width=64", "application/dicom"))
    with pytest.raises(VariantUnsupported, match="could not be read|no image"):
        render_bytes(
            b"\0" * 128 + b"DICM" + b"\xff" * 40, "application/dicom", transform("width=64", "application/dicom")
        )


def test_dicom_bomb_is_refused_from_its_header():
    with pytest.raises(VariantTooLarge):
        render_bytes(
            samples.dicom_claiming(30_000, 30_000), "application/dicom", transform("width=64", "application/dicom")
        )
