"""Files on the user's side: uploads read a block at a time with a known length, and downloads
saved under a plain file name inside the output directory, never a path the server chose."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import requests

from .output import Progress
from .session import ClientError

READ_SIZE = 256 * 1024
DEFAULT_OUTPUT_DIR = "outputs"


class ProgressReader:
    """A file object for requests: a known length (so it sends Content-Length, not chunked),
    read a block at a time, each block counted on the progress line."""

    def __init__(self, path: Path, progress: Progress):
        self._file = open(path, "rb")
        self._size = os.fstat(self._file.fileno()).st_size
        self._progress = progress
        progress.reset()

    def __len__(self) -> int:
        return self._size

    def read(self, size: int = -1) -> bytes:
        block = self._file.read(READ_SIZE if size is None or size < 0 else size)
        self._progress.advance(len(block))
        if not block:
            self._file.close()
        return block

    def __iter__(self):
        while block := self.read(READ_SIZE):
            yield block

    def close(self) -> None:
        self._file.close()


def safe_filename(name: str | None, fallback: str) -> str:
    """A plain file name for a server-supplied name: no directories, no parent references,
    no control characters, nothing hidden; `fallback` when nothing usable is left."""
    text = unicodedata.normalize("NFC", str(name or ""))
    # Both separators: a name made on Windows, or crafted, must not become a path here.
    text = text.replace("\\", "/").split("/")[-1]
    text = "".join(ch for ch in text if ch.isprintable() and ch not in '<>:"|?*')
    text = text.strip().lstrip(".").strip()
    if not text or text in (".", ".."):
        return fallback
    encoded = text.encode("utf-8")
    if len(encoded) > 200:  # most file systems stop at 255 bytes; leave room for the temp suffix
        stem, dot, ext = text.rpartition(".")
        ext = ext if dot and len(ext) <= 10 else ""
        stem = (stem if dot else text).encode("utf-8")[: 200 - len(ext) - 1].decode("utf-8", "ignore")
        text = f"{stem}.{ext}" if ext else stem
    return text


def target_path(out_dir: Path, name: str | None, image_id: int) -> Path:
    filename = safe_filename(name, f"image-{image_id}")
    target = (out_dir / filename).resolve()
    if target.parent != out_dir.resolve():  # belt and braces: the name above cannot escape
        raise ClientError(f"refusing to write outside {out_dir}: {name!r}")
    return target


def etag_digest(response: requests.Response) -> str | None:
    etag = response.headers.get("ETag")
    if not etag:
        return None
    etag = etag.removeprefix("W/").strip('"')
    return etag.lower() if len(etag) == 64 else None
