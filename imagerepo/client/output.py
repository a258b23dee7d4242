"""What the user sees: progress on stderr, and results as text for people or JSON (--json)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class Progress:
    """Bytes and percent on stderr: redrawn in place on a terminal, one line at the end otherwise."""

    def __init__(self, label: str, total: int | None, enabled: bool):
        self.label = label
        self.total = total
        self.done = 0
        self.enabled = enabled
        self.live = enabled and sys.stderr.isatty()
        self._last_draw = 0.0

    def _line(self) -> str:
        if self.total:
            pct = 100 * self.done / self.total
            return f"{self.label}: {human_bytes(self.done)} / {human_bytes(self.total)} ({pct:.0f}%)"
        return f"{self.label}: {human_bytes(self.done)}"

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.live and now - self._last_draw > 0.1:
            self._last_draw = now
            sys.stderr.write("\r" + self._line() + "\x1b[K")
            sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write(("\r" if self.live else "") + self._line() + ("\x1b[K" if self.live else "") + "\n")
            sys.stderr.flush()

    def reset(self) -> None:
        self.done = 0


def emit(args, data: Any, human: Callable[[Any], str]) -> None:
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=False))
    else:
        text = human(data)
        if text:
            print(text)


_INFO_FIELDS = (
    "id",
    "name",
    "creator",
    "description",
    "contentType",
    "size",
    "width",
    "height",
    "isPrivate",
    "locked",
    "accessKey",
    "sha256",
    "createdAt",
    "updatedAt",
    "url",
)


def describe_image(image: dict) -> str:
    rows = []
    for key in _INFO_FIELDS + tuple(k for k in image if k not in _INFO_FIELDS):
        if key not in image or image[key] is None:
            continue
        value = image[key]
        if key == "size":
            value = f"{value} bytes ({human_bytes(value)})"
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        rows.append((key, value))
    width = max(len(k) for k, _ in rows) if rows else 0
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def image_table(images: list[dict]) -> str:
    if not images:
        return "no images"
    header = ("ID", "NAME", "SIZE", "TYPE", "PRIVATE", "CREATOR", "CREATED")
    rows = [header] + [
        (
            str(i.get("id", "")),
            _clip(str(i.get("name", "")), 40),
            human_bytes(i.get("size") or 0),
            str(i.get("contentType") or ""),
            "yes" if i.get("isPrivate") else "no",
            str(i.get("creator", "")),
            str(i.get("createdAt") or "")[:19].replace("T", " "),
        )
        for i in images
    ]
    widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
