"""Small real image files for the image API tests, made with Pillow (and a hand-built DICOM)."""

from __future__ import annotations

import io
import os
import struct
import zlib

from PIL import Image

FORMATS = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}


def image_bytes(fmt: str = "PNG", size=(3, 2), color="red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, fmt)
    return buffer.getvalue()


def noise_bmp(width: int, height: int, seed: bytes = b"") -> bytes:
    """An uncompressed image of random pixels: about width*height*3 bytes that share no chunk
    with anything else (unless the same seed is used)."""
    pixels = (
        os.urandom(width * height * 3)
        if not seed
        else ((seed * (width * height * 3 // len(seed) + 1))[: width * height * 3])
    )
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), pixels).save(buffer, "BMP")
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header promises a huge canvas (a decompression bomb's calling card)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IEND", b"")


def _explicit_le(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
        return struct.pack("<HH", group, element) + vr + b"\0\0" + struct.pack("<I", len(value)) + value
    return struct.pack("<HH", group, element) + vr + struct.pack("<H", len(value)) + value


def _implicit_le(group: int, element: int, value: bytes) -> bytes:
    return struct.pack("<HHI", group, element, len(value)) + value


def dicom_bytes(rows: int = 4, columns: int = 5, implicit: bool = False) -> bytes:
    """A minimal DICOM Part 10 file: preamble, DICM, file meta group, Rows/Columns, pixels."""
    syntax = b"1.2.840.10008.1.2\0" if implicit else b"1.2.840.10008.1.2.1\0"
    meta = (
        _explicit_le(0x0002, 0x0001, b"OB", b"\0\1")
        + _explicit_le(0x0002, 0x0002, b"UI", b"1.2.840.10008.5.1.4.1.1.7\0")
        + _explicit_le(0x0002, 0x0010, b"UI", syntax)
    )
    meta = _explicit_le(0x0002, 0x0000, b"UL", struct.pack("<I", len(meta))) + meta
    pixels = bytes(rows * columns)
    if implicit:
        dataset = (
            _implicit_le(0x0008, 0x0060, b"OT")
            + _implicit_le(0x0028, 0x0010, struct.pack("<H", rows))
            + _implicit_le(0x0028, 0x0011, struct.pack("<H", columns))
            + _implicit_le(0x7FE0, 0x0010, pixels)
        )
    else:
        dataset = (
            _explicit_le(0x0008, 0x0060, b"CS", b"OT")
            + _explicit_le(0x0028, 0x0010, b"US", struct.pack("<H", rows))
            + _explicit_le(0x0028, 0x0011, b"US", struct.pack("<H", columns))
            + _explicit_le(0x7FE0, 0x0010, b"OW", pixels)
        )
    return b"\0" * 128 + b"DICM" + meta + dataset


SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def upload(client, headers, data: bytes, name: str = "picture.png", **fields):
    form = {"file": (io.BytesIO(data), name), **{k: str(v) for k, v in fields.items()}}
    return client.post("/images", headers=headers, data=form, content_type="multipart/form-data")


def uploaded(client, headers, data: bytes | None = None, name: str = "picture.png", **fields) -> dict:
    response = upload(client, headers, data if data is not None else image_bytes(), name, **fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def quick_user(app, name: str) -> dict:
    """A user made straight in the database with a token minted by the app, shaped like the
    conftest `alice`/`bob` fixtures. Registration and login (scrypt, on purpose slow) are tested
    in test_auth.py; the image tests need many users fast."""
    from flask_jwt_extended import create_access_token

    from imagerepo.auth import user_out

    with app.app_context():
        svc = app.extensions["imagerepo"]
        with svc.db.transaction() as conn:
            row = conn.execute(
                "INSERT INTO users (name, email, password_hash) VALUES (%s, %s, 'pbkdf2:sha256:1$x$y')"
                " RETURNING id, name, email, is_admin, is_disabled, created_at",
                (name, f"{name}@example.com"),
            ).fetchone()
        token = create_access_token(identity=str(row["id"]), additional_claims={"name": name})
        user = user_out(row).model_dump(mode="json")
    return {"user": user, "headers": {"Authorization": f"Bearer {token}"}}
