"""What an upload is, decided by its bytes: the accepted image types, their dimensions.

Raster formats are recognised by Pillow, restricted to the accepted formats and with its
decompression-bomb guard on (it reads the header only; pixels are never decoded). DICOM Part 10
files are recognised by `DICM` at byte 128 and their Rows/Columns tags read from the first
bytes. Everything else, SVG included (it can carry scripts), is refused.
"""

from __future__ import annotations

import dataclasses
import logging
import struct
import typing
import warnings

from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

# Pillow format name -> the Content-Type the bytes are served with.
PILLOW_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}
DICOM_TYPE = "application/dicom"
AcceptedType = typing.Literal[
    "image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff", "application/dicom"
]
ACCEPTED_TYPES: tuple[str, ...] = typing.get_args(AcceptedType)

# The extensions a saved file may keep for each served type; the first is used otherwise.
EXTENSIONS = {
    "image/jpeg": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "image/png": (".png",),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
    "image/bmp": (".bmp", ".dib"),
    "image/tiff": (".tiff", ".tif"),
    "application/dicom": (".dcm", ".dicom"),
}


def download_name(name: str, content_type: str) -> str:
    """`name` with an extension that matches the type the bytes were sniffed as: a GIF named
    `x.html` (a GIF/HTML polyglot) is saved as `x.gif`, never opened as a page from disk. A
    fitting extension (any case) is kept; any other last extension is replaced; none is added."""
    allowed = EXTENSIONS.get(content_type)
    if not allowed:
        return name
    stem, dot, extension = name.rpartition(".")
    if dot and stem and "." + extension.lower() in allowed:
        return name
    return ((stem if dot and stem else name) or "image") + allowed[0]


# Pillow's default MAX_IMAGE_PIXELS (about 89 megapixels) is kept; past it an image is refused
# instead of merely warned about, so a small file cannot promise a gigapixel canvas.
_BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)


class UnsupportedImage(Exception):
    """Not one of the accepted image types (whatever its name or declared type says)."""

    def __init__(self) -> None:
        super().__init__("not an accepted image type (JPEG, PNG, GIF, WebP, BMP, TIFF or DICOM)")


class TooManyPixels(Exception):
    """The header promises more than Pillow's MAX_IMAGE_PIXELS (a decompression bomb)."""


@dataclasses.dataclass(frozen=True)
class ImageKind:
    content_type: str
    width: int | None
    height: int | None


def sniff(head: bytes, open_reader) -> ImageKind:
    """The type and size of the upload whose first bytes are `head`; `open_reader()` gives a
    seekable file over all of it. Raises UnsupportedImage or TooManyPixels."""
    if is_dicom(head):
        width, height = dicom_dimensions(head)
        return ImageKind(DICOM_TYPE, width, height)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with open_reader() as reader, Image.open(reader, formats=list(PILLOW_TYPES)) as image:
                # An opened image always has a format, one of those asked for.
                return ImageKind(PILLOW_TYPES[image.format or ""], image.width, image.height)
    except _BOMB_ERRORS as err:
        raise TooManyPixels(f"the image has too many pixels: {err}") from None
    except UnidentifiedImageError:
        pass
    except Exception as err:  # a parser choking on hostile bytes is still just "not an image"
        log.info("image parser refused an upload: %s: %s", type(err).__name__, err)
    raise UnsupportedImage()


def is_dicom(head: bytes) -> bool:
    return len(head) >= 132 and head[128:132] == b"DICM"


# Explicit-VR value representations whose length is a 4-byte field after 2 reserved bytes.
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_IMPLICIT_LE = "1.2.840.10008.1.2"
_EXPLICIT_BE = "1.2.840.10008.1.2.2"
_DEFLATED = "1.2.840.10008.1.2.1.99"
_ROWS, _COLUMNS = (0x0028, 0x0010), (0x0028, 0x0011)


def _element(data: bytes, pos: int, explicit: bool, endian: str):
    """(tag, value offset, value length) of the data element at `pos`."""
    group, element = struct.unpack_from(endian + "HH", data, pos)
    if explicit:
        vr = data[pos + 4 : pos + 6]
        if vr in _LONG_VRS:
            (length,) = struct.unpack_from(endian + "I", data, pos + 8)
            return (group, element), pos + 12, length
        (length,) = struct.unpack_from(endian + "H", data, pos + 6)
        return (group, element), pos + 8, length
    (length,) = struct.unpack_from(endian + "I", data, pos + 4)
    return (group, element), pos + 8, length


def dicom_dimensions(head: bytes) -> tuple[int | None, int | None]:
    """(width, height) from the Columns/Rows tags, when they sit in `head` before anything that
    cannot be skipped cheaply (an undefined-length sequence); else (None, None)."""
    try:
        pos, transfer_syntax = 132, ""
        # The file meta group (0002) is always explicit VR little endian.
        while pos + 8 <= len(head):
            tag, value_at, length = _element(head, pos, True, "<")
            if tag[0] != 0x0002:
                break
            if tag == (0x0002, 0x0010):
                transfer_syntax = head[value_at : value_at + length].rstrip(b"\0 ").decode("ascii", "replace")
            pos = value_at + length
        if transfer_syntax == _DEFLATED:
            return None, None
        explicit = transfer_syntax != _IMPLICIT_LE
        endian = ">" if transfer_syntax == _EXPLICIT_BE else "<"
        found: dict[tuple[int, int], int] = {}
        while pos + 8 <= len(head) and len(found) < 2:
            tag, value_at, length = _element(head, pos, explicit, endian)
            if length == 0xFFFFFFFF or tag > _COLUMNS:
                break
            if tag in (_ROWS, _COLUMNS) and length == 2 and value_at + 2 <= len(head):
                (found[tag],) = struct.unpack_from(endian + "H", head, value_at)
            pos = value_at + length
        return found.get(_COLUMNS), found.get(_ROWS)
    except (struct.error, ValueError):
        return None, None
