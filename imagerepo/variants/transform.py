"""What a variant is: the transform request, its normal form, its key, and its limits.

A transform is parsed from query parameters into one canonical `Transform`, whose `key` (for
example `w=200,h=0,fit=inside,fmt=webp,q=80`) names the variant of a source object. Two
requests that must give the same bytes normalise to the same key, so they share one stored
variant: the format is always spelled out (its default depends on the source type), `fit` is
`inside` unless both sides are given, quality is 0 for the lossless PNG.

The limits (what stops one client from making a thousand variants of an image):
  * sides come from a fixed grid, `SIZES` (18 values from 32 to 3840 px, including seed 003's
    200 and 400 px thumbnail heights); anything else is refused (`BadTransform`, an API 422)
    rather than rounded, so the size asked for is the size delivered. The owner of an image
    may be allowed any side from 1 to `MAX_SIDE` (`any_size=True`); the per-image cap and the
    rate limit (phase 2, at the API) bound what that can cost;
  * quality is one of `QUALITIES` (50, 70, 80, 90); format one of jpeg, png, webp and avif
    where the libvips build can write it (the caller passes what the pipeline detected);
  * variants never enlarge: a side larger than the source gives the source's size, so the
    larger grid values cost no more than the full size;
  * every parameter appears at most once, as plain decimal digits without sign or leading
    zero; anything else is refused with a message naming the parameter.

Pure functions: no Flask, no database, no image library.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

# Allowed sides, in pixels: a roughly geometric grid (x1.25) plus the seed 003 thumbnail heights
# (200, 400) and the 500 px of the benchmark.
SIZES = (32, 64, 96, 128, 160, 200, 256, 320, 400, 500, 640, 800, 1024, 1280, 1600, 1920, 2560, 3840)
# The largest side an owner may ask for when any size is allowed.
MAX_SIDE = 4096
QUALITIES = (50, 70, 80, 90)
DEFAULT_QUALITY = 80

FITS = ("inside", "cover")
# Output formats in the order they are documented; avif only where the pipeline can write it.
ALL_FORMATS = ("jpeg", "png", "webp", "avif")
BASE_FORMATS = ("jpeg", "png", "webp")
LOSSLESS_FORMATS = ("png",)

CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "avif": "image/avif"}
EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "avif": "avif"}
_FORMAT_ALIASES = {"jpg": "jpeg"}

# The variant format when none is asked for: the source's own where it is an output format,
# else PNG (lossless, keeps alpha: GIF, BMP and TIFF may have it; DICOM is medical greyscale).
_DEFAULT_FORMAT = {"image/jpeg": "jpeg", "image/webp": "webp"}

# The query parameters that ask for a variant. `img_format` is seed 002's name for the format.
PARAMETERS = ("width", "height", "fit", "format", "quality", "img_format")
_NUMBER = re.compile(r"[1-9][0-9]{0,5}")

# Seed 003's plans give thumbnails 200 px (Basic) and 400 px (Premium) high.
THUMBNAIL_HEIGHTS = (200, 400)


class BadTransform(ValueError):
    """The transform parameters are not acceptable; the message says which and why."""

    def __init__(self, parameter: str, message: str):
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


@dataclasses.dataclass(frozen=True)
class Transform:
    """A normalised variant request. 0 for a side means "not constrained"."""

    width: int
    height: int
    fit: str
    format: str
    quality: int

    @property
    def key(self) -> str:
        return f"w={self.width},h={self.height},fit={self.fit},fmt={self.format},q={self.quality}"

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]

    @property
    def resizes(self) -> bool:
        return bool(self.width or self.height)

    @classmethod
    def from_key(cls, key: str) -> Transform:
        """The transform a stored key names (the inverse of `key`). Raises BadTransform."""
        fields = dict(part.partition("=")[::2] for part in key.split(","))
        if list(fields) != ["w", "h", "fit", "fmt", "q"]:
            raise BadTransform("key", f"not a transform key: {key!r}")
        try:
            found = cls(int(fields["w"]), int(fields["h"]), fields["fit"], fields["fmt"], int(fields["q"]))
        except ValueError:
            raise BadTransform("key", f"not a transform key: {key!r}") from None
        if found != normalise(found.width, found.height, found.fit, found.format, found.quality, any_size=True):
            raise BadTransform("key", f"not a normalised transform key: {key!r}")
        return found


def default_format(source_type: str) -> str:
    return _DEFAULT_FORMAT.get(source_type, "png")


def normalise(
    width: int,
    height: int,
    fit: str,
    fmt: str,
    quality: int,
    *,
    any_size: bool = False,
    formats: Iterable[str] = ALL_FORMATS,
) -> Transform:
    """The canonical transform for these values (0 = not given), or BadTransform."""
    for name, side in (("width", width), ("height", height)):
        if side == 0:
            continue
        if any_size:
            if not 1 <= side <= MAX_SIDE:
                raise BadTransform(name, f"must be between 1 and {MAX_SIDE}")
        elif side not in SIZES:
            raise BadTransform(name, f"must be one of {', '.join(map(str, SIZES))}")
    if fit not in FITS:
        raise BadTransform("fit", f"must be one of {', '.join(FITS)}")
    if fit == "cover" and not (width and height):
        raise BadTransform("fit", "cover needs both width and height")
    fmt = _FORMAT_ALIASES.get(fmt, fmt)
    if fmt not in formats:
        raise BadTransform("format", f"must be one of {', '.join(f for f in ALL_FORMATS if f in formats)}")
    if fmt in LOSSLESS_FORMATS:
        quality = 0
    elif quality not in QUALITIES:
        raise BadTransform("quality", f"must be one of {', '.join(map(str, QUALITIES))}")
    return Transform(width, height, fit, fmt, quality)


def parse(
    args: Iterable[tuple[str, str]],
    source_type: str,
    *,
    any_size: bool = False,
    formats: Iterable[str] = BASE_FORMATS,
) -> Transform | None:
    """The transform asked for by query parameters (name, value pairs, repeats included), or
    None when none of `PARAMETERS` is present (the original bytes are wanted). Other parameters
    are ignored: the route validates them. Raises BadTransform."""
    formats = tuple(formats)
    given: dict[str, str] = {}
    for name, value in args:
        if name not in PARAMETERS:
            continue
        if name in given:
            raise BadTransform(name, "given more than once")
        given[name] = value
    if not given:
        return None
    if "format" in given and "img_format" in given:
        raise BadTransform("img_format", "give format or img_format, not both")
    if "img_format" in given and _FORMAT_ALIASES.get(given["img_format"], given["img_format"]) not in ("jpeg", "png"):
        raise BadTransform("img_format", "must be jpeg or png")
    width = _number(given, "width")
    height = _number(given, "height")
    fmt = given.get("format", given.get("img_format", default_format(source_type)))
    quality = _number(given, "quality") if "quality" in given else DEFAULT_QUALITY
    if quality not in QUALITIES:
        # Checked even where the format then ignores it (PNG), so a request's validity does
        # not depend on the source's type.
        raise BadTransform("quality", f"must be one of {', '.join(map(str, QUALITIES))}")
    fit = given.get("fit", "inside")
    return normalise(width, height, fit, fmt, quality, any_size=any_size, formats=formats)


def _number(given: dict[str, str], name: str) -> int:
    raw = given.get(name)
    if raw is None:
        return 0
    if not _NUMBER.fullmatch(raw):
        raise BadTransform(name, "must be a positive whole number")
    return int(raw)


def background_transforms(source_type: str) -> list[Transform]:
    """The variants made after upload, off the request path: seed 003's thumbnail heights in the
    default format, and seed 002's full-size PNG <-> JPEG twin."""
    fmt = default_format(source_type)
    made = [normalise(0, h, "inside", fmt, DEFAULT_QUALITY) for h in THUMBNAIL_HEIGHTS]
    twin = {"image/jpeg": "png", "image/png": "jpeg"}.get(source_type)
    if twin:
        made.append(normalise(0, 0, "inside", twin, DEFAULT_QUALITY))
    return made
