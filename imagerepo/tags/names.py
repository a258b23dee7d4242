"""Tag names: normalisation, and the request field types that apply it (see the package's
docstring for the rules)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Annotated

import pydantic

MAX_TAG_LENGTH = 50
MAX_TAGS_PER_IMAGE = 30
_PUNCTUATION = set(" -_.+#&'")


class TagNotFound(Exception):
    """A name that cannot be a tag, asked for as one (a valid name nobody uses is not this)."""

    def __init__(self) -> None:
        super().__init__("no such tag")


def normalise_tag(raw: str) -> str:
    """The stored form of a tag name; ValueError (with a message for the client) if invalid."""
    name = " ".join(unicodedata.normalize("NFKC", raw).split()).lower()
    if not name:
        raise ValueError("a tag cannot be empty")
    if len(name) > MAX_TAG_LENGTH:
        raise ValueError(f"a tag is at most {MAX_TAG_LENGTH} characters")
    bad = sorted({ch for ch in name if ch not in _PUNCTUATION and unicodedata.category(ch)[0] not in "LMN"})
    if bad:
        raise ValueError(f"a tag may hold letters, digits, spaces and - _ . + # & ' only, not {''.join(bad)!r}")
    return name


def name_fragment(raw: str) -> str:
    """A search fragment normalised like a name (no validity check: it is only compared)."""
    return " ".join(unicodedata.normalize("NFKC", raw).split()).lower()


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def split_tags(values: list[str]) -> list[str]:
    """Form fields and query parameters: repeatable, each comma-separated; empty pieces ignored."""
    pieces = [piece for value in values for piece in value.split(",") if piece.strip()]
    names = _unique(normalise_tag(piece) for piece in pieces)
    if len(names) > MAX_TAGS_PER_IMAGE:
        raise ValueError(f"at most {MAX_TAGS_PER_IMAGE} tags")
    return names


# A JSON list of names (PUT /images/<id>/tags): every element must be a valid name.
TagName = Annotated[str, pydantic.AfterValidator(normalise_tag)]
TagNames = Annotated[list[TagName], pydantic.Field(max_length=MAX_TAGS_PER_IMAGE), pydantic.AfterValidator(_unique)]
# Repeatable and/or comma-separated text (multipart fields, query parameters).
TagFields = Annotated[
    list[Annotated[str, pydantic.StringConstraints(max_length=2000)]],
    pydantic.Field(
        max_length=MAX_TAGS_PER_IMAGE, description="Tag names: repeat the field and/or separate names with commas"
    ),
    pydantic.AfterValidator(split_tags),
]
