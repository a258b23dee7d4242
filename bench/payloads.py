"""Image payloads for the benchmark: real, decodable PNGs of incompressible pixels.

A PNG whose IDAT holds zlib *stored* blocks of random pixels is a valid image of (almost)
exactly the size asked for, that any parser (Pillow's open, verify and load) accepts, and
that no compressor can shrink. Variants come from one random pool read at different offsets,
so every variant's 256 KiB chunks differ from every other's (no accidental chunk dedup) while
generating them costs a copy, not fresh randomness.
"""

from __future__ import annotations

import os
import struct
import zlib

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_WIDTH = 4096  # RGB pixels per row: 12 KiB rows keep the overhead per row (one filter byte) tiny
_ROW = _WIDTH * 3
# Every variant starts this many bytes further into the pool; odd, so no two variants share
# a chunk boundary alignment.
_VARIANT_STEP = 4099
_MAX_VARIANTS = 64


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


class PngFactory:
    """Builds PNGs of about `size` bytes; `make(size, variant)` is deterministic per variant."""

    def __init__(self, max_size: int):
        self._pool = os.urandom(max_size + _VARIANT_STEP * _MAX_VARIANTS + _ROW)

    def make(self, size: int, variant: int = 0) -> bytes:
        if variant >= _MAX_VARIANTS:
            raise ValueError(f"at most {_MAX_VARIANTS} variants")
        # Rows cost one filter byte each, stored deflate blocks 5 bytes per 64 KiB; a padding
        # chunk (ancillary, so parsers skip it) makes up the rest to the exact size asked for.
        per_row = _ROW + 1 + 5 * (_ROW + 1) / 65535
        height = max(1, int((size - 200) / per_row))
        start = variant * _VARIANT_STEP
        pixels = memoryview(self._pool)[start : start + height * _ROW]
        raw = bytearray((_ROW + 1) * height)
        for row in range(height):  # filter byte 0 (None) then the row's pixels
            raw[row * (_ROW + 1) + 1 : (row + 1) * (_ROW + 1)] = pixels[row * _ROW : (row + 1) * _ROW]
        header = struct.pack(">IIBBBBB", _WIDTH, height, 8, 2, 0, 0, 0)
        parts = [_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", zlib.compress(raw, 0))]
        end = _chunk(b"IEND", b"")
        missing = size - sum(map(len, parts)) - len(end)
        if missing >= 12:
            parts.append(_chunk(b"pdNg", bytes(missing - 12)))
        return b"".join(parts + [end])
