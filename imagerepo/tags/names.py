"""Tag names: normalisation, and the request field types that apply it (see the package's
docstring for the rules)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Annotated

import pydantic

MAX_TAG_LENGTH = 50
MAX_TAGS_PER_IMAGE = 30
# The middle dot is Catalan's (l·l), and what NFKC makes of ŀ.
_PUNCTUATION = set(" -_.+#&'·")


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
        raise ValueError(f"a tag may hold letters, digits, spaces and - _ . + # & ' · only, not {''.join(bad)!r}")
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


# The rules above as JSON Schema patterns, for the OpenAPI document: a name is 1 to 50 letters,
# marks, digits and - _ . + # & ' · with spaces inside (spaces around are dropped); a text field
# is names separated by commas, blank pieces ignored. (Other white space and NFKC forms are
# normalised as well; the pattern states the plain form.) The marks are spelled as the combining
# blocks rather than \p{M}: checkers that generate examples (schemathesis) read \p{M} as whole
# blocks, unassigned code points included, which are not marks.
_LETTERS = r"\p{L}\p{N}\u0300-\u036F\u0483-\u0489\u1DC0-\u1DFF\u20D0-\u20F0._+#&'·-"
_TAG_CHAR = rf"[{_LETTERS}]"
TAG_PATTERN = rf"{_TAG_CHAR}(?:[ {_LETTERS}]{{0,{MAX_TAG_LENGTH - 2}}}{_TAG_CHAR})?"
TAG_NAME_PATTERN = rf"^ *{TAG_PATTERN} *$"
# At most MAX_TAGS_PER_IMAGE pieces in one field; repeated fields, one name each.
TAG_FIELD_PATTERN = rf"^ *(?:{TAG_PATTERN})? *(?:, *(?:{TAG_PATTERN})? *){{0,{MAX_TAGS_PER_IMAGE - 1}}}$"
_TAG_PIECE_PATTERN = rf"^ *(?:{TAG_PATTERN})? *$"

# A JSON list of names (PUT /images/<id>/tags): every element must be a valid name.
TagName = Annotated[
    str,
    pydantic.AfterValidator(normalise_tag),
    pydantic.WithJsonSchema({"type": "string", "pattern": TAG_NAME_PATTERN}),
]
TagNames = Annotated[list[TagName], pydantic.Field(max_length=MAX_TAGS_PER_IMAGE), pydantic.AfterValidator(_unique)]
# Repeatable and/or comma-separated text (multipart fields, query parameters).
TagFields = Annotated[
    list[Annotated[str, pydantic.StringConstraints(max_length=2000)]],
    pydantic.Field(max_length=MAX_TAGS_PER_IMAGE),
    # One field or several: the same on the wire.
    pydantic.WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": 2000, "pattern": TAG_FIELD_PATTERN},
                {
                    "type": "array",
                    "maxItems": MAX_TAGS_PER_IMAGE,
                    "items": {"type": "string", "maxLength": 2000, "pattern": _TAG_PIECE_PATTERN},
                },
            ],
            "description": "Tag names: repeat the field and/or separate names with commas",
        }
    ),
    pydantic.AfterValidator(split_tags),
]
