"""Making a variant: the source image's bytes in, the variant's bytes out, with libvips.

One pipeline for every raster source, the way imgproxy and thumbor do it: `thumbnail_source`
opens the image lazily and, for JPEG and WebP, decodes it already shrunk (libjpeg's DCT
scaling, libwebp's scaled decode), so a 50 megapixel JPEG becomes a 200 px thumbnail without
a full-size frame ever being in memory; PNG, GIF and TIFF are streamed through the resampler a
strip at a time. Along the way the EXIF orientation is applied, colour is converted to sRGB
(from the embedded ICC profile, or CMYK/16-bit/float), only the first frame of an animation is
read, and JPEG output has its alpha flattened onto white while PNG, WebP and AVIF keep it. The
output carries no metadata at all (`keep=none`): no EXIF (so no GPS), no XMP, IPTC, ICC or
comments.

Two sources libvips cannot read here go through a decoder of their own, then the same resize
and save: BMP (not in the pyvips-binary build; Pillow decodes it whole, bounded by the pixel
limit) and DICOM (pydicom decodes the first frame's pixel data, applies the modality and VOI
LUTs and scales it to 8 bits; a transfer syntax it cannot decode is `VariantUnsupported`).

Before any pixel is decoded the header is read and the image refused (`VariantTooLarge`) if it
has more pixels than uploads may (Pillow's MAX_IMAGE_PIXELS), and the libvips loader chosen
for the bytes must be the one for the type they were stored as.

Domain errors only (no HTTP): VariantUnsupported (the API answers 415), VariantTooLarge (422).
The input is bytes or a seekable binary file (read a block at a time, never held whole for
JPEG/PNG/WebP/GIF/TIFF); the output is written to any object with `write` (a blob store
stager, a file) or returned as bytes by `render_bytes`.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import logging
from typing import BinaryIO

import pyvips
from PIL import Image as PILImage

from .errors import VariantError, VariantTooLarge, VariantUnsupported
from .transform import Transform

log = logging.getLogger(__name__)

# The same limit as uploads (imagerepo.imagetypes): about 89 megapixels.
MAX_PIXELS: int = PILImage.MAX_IMAGE_PIXELS or 89_478_485  # Pillow's default when unset
# libvips' largest coordinate: a side that does not constrain the thumbnail.
_UNBOUNDED = 10_000_000

# Source content type -> the libvips loader that must be the one to read it.
_LOADERS = {
    "image/jpeg": "jpegload",
    "image/png": "pngload",
    "image/gif": "gifload",
    "image/webp": "webpload",
    "image/tiff": "tiffload",
}
PILLOW_DECODED = ("image/bmp",)
DICOM_TYPE = "application/dicom"

_SAVE_OPTIONS = {
    "jpeg": lambda q: {"Q": q, "optimize_coding": True},
    "png": lambda q: {"compression": 6},
    "webp": lambda q: {"Q": q, "effort": 4},
    "avif": lambda q: {"Q": q, "compression": "av1", "effort": 2},
}
_SUFFIXES = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "avif": ".avif"}
# Metadata that would make a saver write an animation, or a viewer rotate again.
_FRAME_FIELDS = ("n-pages", "page-height", "delay", "loop", "gif-delay", "gif-loop", "orientation")

# Untrusted loaders (ones not fuzzed for hostile input) are off for the whole process; operation
# caching is off too, since a variant is made once and the cache would only pin memory.
pyvips.block_untrusted_set(True)
pyvips.cache_set_max(0)
# pyvips hands libvips' progress chatter ("thumbnailing source", "reducev: 13 point mask", ...)
# to Python logging at INFO: 14 lines per variant in the server's log, and ~2 ms of formatting.
logging.getLogger("pyvips").setLevel(logging.WARNING)


@dataclasses.dataclass(frozen=True)
class VariantInfo:
    content_type: str
    width: int
    height: int
    size: int  # bytes written


@functools.cache
def supported_formats() -> tuple[str, ...]:
    """The output formats this libvips build can write: jpeg, png, webp, and avif when its
    HEIF saver has an AV1 encoder (pyvips-binary has one; a system libvips may not)."""
    formats = ["jpeg", "png", "webp"]
    try:
        pyvips.Image.black(8, 8, bands=3).write_to_buffer(".avif", compression="av1")
        formats.append("avif")
    except pyvips.Error:
        log.info("this libvips cannot write AVIF; variants are jpeg, png and webp")
    return tuple(formats)


def render(source: bytes | BinaryIO, source_type: str, transform: Transform, sink) -> VariantInfo:
    """Make the variant `transform` of `source` (stored as `source_type`) and write it to
    `sink.write`. Raises VariantUnsupported, VariantTooLarge."""
    if transform.format not in supported_formats():
        raise VariantUnsupported(f"this server cannot write {transform.format}")
    # libvips reads a streamed source lazily, until the save: the Python callbacks behind it
    # must stay alive until then (pyvips does not hold them; losing them is a crash).
    keepalive: list = []
    if source_type == DICOM_TYPE:
        from . import dicom  # pydicom and numpy cost ~15 MiB and 0.3 s to import: only when needed

        image = _resize(dicom.first_frame(_file(source), MAX_PIXELS), transform)
    elif source_type in PILLOW_DECODED:
        image = _resize(_pillow_image(_file(source)), transform)
    elif source_type in _LOADERS:
        image = _thumbnail(source, _LOADERS[source_type], transform, keepalive)
    else:
        raise VariantUnsupported(f"variants of {source_type} are not supported")
    try:
        image = _normalise(image, transform)
        return _save(image, transform, sink)
    except pyvips.Error as err:
        raise _undecodable(err) from None
    finally:
        del image
        keepalive.clear()


def render_bytes(source: bytes | BinaryIO, source_type: str, transform: Transform) -> tuple[bytes, VariantInfo]:
    out = io.BytesIO()
    info = render(source, source_type, transform, out)
    return out.getvalue(), info


# -- raster sources through libvips -----------------------------------------------------------
def _thumbnail(source: bytes | BinaryIO, loader: str, transform: Transform, keepalive: list) -> pyvips.Image:
    try:
        header = pyvips.Image.new_from_source(_vips_source(source, keepalive), "", access="sequential")
    except pyvips.Error as err:
        raise _undecodable(err) from None
    found = header.get("vips-loader")
    if not found.startswith(loader):
        # Pillow and libvips disagree about what these bytes are: refuse rather than let a
        # loader other than the stored type's parse them.
        raise VariantUnsupported(f"the image's bytes are not what its type says ({found})")
    _check_pixels(header.width, header.height)
    width, height, crop = _box(transform)
    try:
        return pyvips.Image.thumbnail_source(
            _vips_source(source, keepalive), width, height=height, size="down", crop=crop, option_string=""
        )
    except pyvips.Error as err:
        raise _undecodable(err) from None


def _vips_source(source: bytes | BinaryIO, keepalive: list) -> pyvips.Source:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return pyvips.Source.new_from_memory(source)
    source.seek(0)
    custom = pyvips.SourceCustom()
    custom.on_read(source.read)
    custom.on_seek(source.seek)
    keepalive.append(custom)
    return custom


def _box(transform: Transform) -> tuple[int, int, str]:
    """thumbnail's (width, height, crop) for the transform; _UNBOUNDED for a free side."""
    crop = "centre" if transform.fit == "cover" else "none"
    return transform.width or _UNBOUNDED, transform.height or _UNBOUNDED, crop


def _resize(image: pyvips.Image, transform: Transform) -> pyvips.Image:
    width, height, crop = _box(transform)
    try:
        return image.thumbnail_image(width, height=height, size="down", crop=crop)
    except pyvips.Error as err:
        raise _undecodable(err) from None


# -- sources libvips does not read ------------------------------------------------------------
def _file(source: bytes | BinaryIO) -> BinaryIO:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(source)
    source.seek(0)
    return source


def _pillow_image(reader: BinaryIO) -> pyvips.Image:
    try:
        with PILImage.open(reader, formats=["BMP"]) as image:
            _check_pixels(image.width, image.height)
            mode = "RGBA" if "A" in image.mode or "transparency" in image.info else "RGB"
            pixels = image.convert(mode)
    except VariantError:
        raise
    except Exception as err:  # Pillow's many ways of saying "these are not valid BMP bytes"
        raise VariantUnsupported(f"the image could not be decoded: {err}") from None
    bands = len(mode)
    return pyvips.Image.new_from_memory(pixels.tobytes(), pixels.width, pixels.height, bands, "uchar").copy(
        interpretation="srgb"
    )


# -- common tail ------------------------------------------------------------------------------
def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise VariantTooLarge(f"the image has {width}x{height} pixels, more than the limit of {MAX_PIXELS}")


def _normalise(image: pyvips.Image, transform: Transform) -> pyvips.Image:
    """8-bit sRGB (or 8-bit grey), alpha flattened for JPEG, frame metadata dropped."""
    grey = image.bands - (1 if image.hasalpha() else 0) == 1
    wanted = "b-w" if grey else "srgb"
    if image.interpretation != wanted or image.format != "uchar":
        image = image.colourspace(wanted)
    if image.format != "uchar":
        image = image.cast("uchar")
    if transform.format == "jpeg" and image.hasalpha():
        image = image.flatten(background=[255] * (image.bands - 1))
    image = image.copy()
    for field in _FRAME_FIELDS:
        if image.get_typeof(field):
            image.remove(field)
    return image


def _save(image: pyvips.Image, transform: Transform, sink) -> VariantInfo:
    written = 0

    def write(data: bytes) -> int:
        nonlocal written
        sink.write(data)
        written += len(data)
        return len(data)

    target = pyvips.TargetCustom()
    target.on_write(write)
    options = _SAVE_OPTIONS[transform.format](transform.quality)
    image.write_to_target(target, _SUFFIXES[transform.format], keep=pyvips.enums.ForeignKeep.NONE, **options)
    return VariantInfo(transform.content_type, image.width, image.height, written)


def _undecodable(err: pyvips.Error) -> VariantUnsupported:
    detail = (err.detail or str(err)).strip().splitlines()
    log.info("libvips refused a variant source: %s", " / ".join(detail))
    return VariantUnsupported(f"the image could not be decoded: {detail[0] if detail else 'unknown error'}")
