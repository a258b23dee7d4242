"""A preview image from a DICOM file's pixel data, with pydicom (and numpy).

Only the first frame is decoded. Greyscale frames go through the modality LUT (rescale slope
and intercept: stored values to Hounsfield units and the like) and the first VOI LUT or window,
the display mapping the modality chose, then are scaled to 0..255 (MONOCHROME1 is inverted,
since its 0 is white). Colour frames are RGB (pydicom converts YBR), palette colour through
its LUT. Pixel data pydicom cannot decode with what is installed (JPEG lossless or JPEG-LS
without pylibjpeg, for instance), or a file without any, is `VariantUnsupported` with the
transfer syntax named; more pixels than the limit is `VariantTooLarge`, checked from the
header before anything is decoded.
"""

from __future__ import annotations

import logging
import warnings
from typing import BinaryIO

import numpy
import pydicom
import pyvips
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, pixel_array

from .errors import VariantTooLarge, VariantUnsupported

log = logging.getLogger(__name__)


def first_frame(reader: BinaryIO, max_pixels: int) -> pyvips.Image:
    """The first frame of the DICOM file `reader` as an 8-bit grey or sRGB libvips image."""
    # pydicom warns about every oddity of a malformed file; those files end as a clear
    # VariantUnsupported here, so the warnings would only be noise in the server's log.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _first_frame(reader, max_pixels)


def _first_frame(reader: BinaryIO, max_pixels: int) -> pyvips.Image:
    try:
        header = pydicom.dcmread(reader, stop_before_pixels=True)
    except Exception as err:  # pydicom's many ways of saying "this is not a DICOM file I can read"
        raise VariantUnsupported(f"the DICOM file could not be read: {err}") from None
    rows, columns = header.get("Rows"), header.get("Columns")
    if not rows or not columns:
        raise VariantUnsupported("the DICOM file has no image (no Rows/Columns)")
    if rows * columns > max_pixels:
        raise VariantTooLarge(f"the DICOM image has {columns}x{rows} pixels, more than the limit of {max_pixels}")
    syntax = header.file_meta.get("TransferSyntaxUID", "unknown") if hasattr(header, "file_meta") else "unknown"
    reader.seek(0)
    try:
        pixels = pixel_array(reader, index=0)
    except Exception as err:
        log.info("pydicom cannot decode pixel data (transfer syntax %s): %s", syntax, err)
        name = getattr(syntax, "name", "") or str(syntax)
        raise VariantUnsupported(
            f"this DICOM file's pixel data cannot be decoded here (transfer syntax {name} {syntax})"
        ) from None
    photometric = str(header.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    try:
        frame = _display(pixels, header, photometric)
    except VariantUnsupported:
        raise
    except Exception as err:  # inconsistent tags (a LUT that does not fit the data, ...)
        raise VariantUnsupported(f"this DICOM file's pixel data cannot be displayed: {err}") from None
    height, width = frame.shape[:2]
    bands = 1 if frame.ndim == 2 else frame.shape[2]
    image = pyvips.Image.new_from_memory(numpy.ascontiguousarray(frame).tobytes(), width, height, bands, "uchar")
    return image.copy(interpretation="b-w" if bands == 1 else "srgb")


def _display(pixels: numpy.ndarray, header, photometric: str) -> numpy.ndarray:
    """The frame as uint8 values a screen shows."""
    if photometric.startswith("MONOCHROME"):
        if pixels.ndim != 2:
            raise VariantUnsupported(f"unexpected greyscale pixel array of shape {pixels.shape}")
        values = apply_voi_lut(apply_modality_lut(pixels, header), header).astype(numpy.float64)
        scaled = _to_bytes(values)
        return 255 - scaled if photometric == "MONOCHROME1" else scaled
    if photometric == "PALETTE COLOR":
        pixels, maximum = apply_color_lut(pixels, header), 65535  # LUT entries are 16-bit
    elif pixels.ndim == 3 and pixels.shape[2] == 3:
        maximum = (1 << int(header.get("BitsStored", 8))) - 1
    else:
        raise VariantUnsupported(f"photometric interpretation {photometric} is not supported")
    if pixels.dtype == numpy.uint8:
        return pixels
    return numpy.round(numpy.clip(pixels, 0, maximum) * (255.0 / maximum)).astype(numpy.uint8)


def _to_bytes(values: numpy.ndarray) -> numpy.ndarray:
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return numpy.zeros(values.shape, dtype=numpy.uint8)
    return numpy.round((values - low) * (255.0 / (high - low))).astype(numpy.uint8)
