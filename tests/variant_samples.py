"""Real source images for the variant tests, made here: photo-like JPEGs with EXIF orientation
and GPS (Pillow's Exif API), PNGs with alpha, animations, and DICOM files built with pydicom."""

from __future__ import annotations

import io

import numpy
from PIL import Image, ImageDraw
from PIL.ExifTags import GPS, IFD, Base
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEGLSLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

CAMERA_MAKE = "VariantTestCam"
GPS_LATITUDE = (48.0, 51.0, 24.05)


def photo(width: int, height: int, seed: int = 1) -> Image.Image:
    """A photo-like RGB picture (noise over gradients: it compresses like a photo), with a pure
    red block in its top-left corner so orientation can be checked."""
    noise = Image.effect_noise((width, height), 40 + seed)
    gradient = Image.linear_gradient("L").resize((width, height))
    image = Image.merge("RGB", (gradient, noise, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    ImageDraw.Draw(image).rectangle((0, 0, width // 5, height // 5), fill=(255, 0, 0))
    return image


def exif_with_gps(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[Base.Make] = CAMERA_MAKE
    exif[Base.Model] = "Model X"
    exif[Base.Orientation] = orientation
    exif.get_ifd(IFD.Exif)[Base.DateTimeOriginal] = "2024:05:01 12:00:00"
    gps = exif.get_ifd(IFD.GPSInfo)
    gps[GPS.GPSLatitudeRef] = "N"
    gps[GPS.GPSLatitude] = GPS_LATITUDE
    gps[GPS.GPSLongitudeRef] = "E"
    gps[GPS.GPSLongitude] = (2.0, 17.0, 40.0)
    return exif


def photo_jpeg(width: int = 600, height: int = 400, orientation: int = 1, quality: int = 90) -> bytes:
    out = io.BytesIO()
    photo(width, height).save(out, "JPEG", quality=quality, exif=exif_with_gps(orientation))
    return out.getvalue()


def alpha_png(width: int = 300, height: int = 200) -> bytes:
    """Left half opaque blue, right half fully transparent."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((0, 0, width // 2 - 1, height - 1), fill=(0, 0, 255, 255))
    out = io.BytesIO()
    image.save(out, "PNG", pnginfo=_png_text("Comment", "secret note"))
    return out.getvalue()


def _png_text(key: str, value: str):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(key, value)
    return info


FRAME_COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


def animation(fmt: str, width: int = 120, height: int = 80) -> bytes:
    """Three frames: red, green, blue."""
    frames = [Image.new("RGB", (width, height), colour) for colour in FRAME_COLOURS]
    out = io.BytesIO()
    frames[0].save(out, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def cmyk_jpeg(width: int = 200, height: int = 100) -> bytes:
    out = io.BytesIO()
    Image.new("CMYK", (width, height), (0, 255, 255, 0)).save(out, "JPEG", quality=95)  # red in CMYK
    return out.getvalue()


def png16(width: int = 256, height: int = 64) -> bytes:
    ramp = numpy.tile(numpy.linspace(0, 65535, width, dtype=numpy.uint16), (height, 1))
    out = io.BytesIO()
    Image.fromarray(ramp).save(out, "PNG")
    return out.getvalue()


# -- DICOM ---------------------------------------------------------------------------------------
def _dataset(rows: int, columns: int, syntax=ExplicitVRLittleEndian) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.PatientName = "Test^Patient"
    ds.Rows, ds.Columns = rows, columns
    return ds


def _grey(ds: Dataset, bits: int, photometric: str = "MONOCHROME2") -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16 if bits > 8 else 8
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0


def _bytes(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def ramp(rows: int, columns: int, top: int) -> numpy.ndarray:
    """Values rising from 0 (left) to `top` (right)."""
    return numpy.tile(numpy.linspace(0, top, columns).round().astype(numpy.uint16), (rows, 1))


def dicom_ct(rows: int = 128, columns: int = 256, photometric: str = "MONOCHROME2", frames: int = 1) -> bytes:
    """12-bit CT-like ramp 0..4095 with rescale (slope 1, intercept -1024: -1024..3071 HU) and a
    window of centre 0 HU, width 512: so stored values below 768 show black, above 1280 white.
    Extra frames are uniform (all 4095), so a preview that shows them is obvious."""
    ds = _dataset(rows, columns)
    _grey(ds, 12, photometric)
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.WindowCenter, ds.WindowWidth = 0, 512
    data = ramp(rows, columns, 4095)
    if frames > 1:
        ds.NumberOfFrames = frames
        data = numpy.concatenate([data[None], numpy.full((frames - 1, rows, columns), 4095, numpy.uint16)])
    ds.PixelData = data.tobytes()
    return _bytes(ds)


def dicom_rgb(rows: int = 64, columns: int = 96) -> bytes:
    ds = _dataset(rows, columns)
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    pixels = numpy.zeros((rows, columns, 3), numpy.uint8)
    pixels[..., 1] = 200  # green
    ds.PixelData = pixels.tobytes()
    return _bytes(ds)


def dicom_rle(rows: int = 64, columns: int = 128) -> bytes:
    """RLE Lossless, which pydicom decodes (and encodes) on its own."""
    ds = _dataset(rows, columns)
    _grey(ds, 8)
    ds.compress(RLELossless, ramp(rows, columns, 255).astype(numpy.uint8))
    return _bytes(ds)


def dicom_jpeg_ls(rows: int = 64, columns: int = 64) -> bytes:
    """JPEG-LS Lossless pixel data, which pydicom cannot decode without plugins we do not ship."""
    ds = _dataset(rows, columns, JPEGLSLossless)
    _grey(ds, 8)
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xf7" + bytes(64) + b"\xff\xd9"])
    return _bytes(ds)


def dicom_without_pixels() -> bytes:
    ds = _dataset(16, 16)
    del ds.Rows, ds.Columns
    return _bytes(ds)


def dicom_claiming(rows: int, columns: int) -> bytes:
    """A header promising rows x columns pixels with a tiny body."""
    ds = _dataset(rows, columns)
    _grey(ds, 8)
    ds.PixelData = bytes(16)
    return _bytes(ds)


def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid 1-bit greyscale PNG of width x height black pixels: about 50 KB on disk, 400
    megapixels (1.2 GB as RGB) once decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = bytes(1 + (width + 7) // 8)  # filter byte 0, then zero bits
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
